#!/usr/bin/env python3
"""A small real dataset: scikit-learn's bundled handwritten digits (1797 scans of 8x8 pixels,
10 classes, UCI), upscaled to 32x32 grey PNGs in an ImageFolder (OUT/train, OUT/val; every fifth
image of each class goes to val).
usage: digits.py OUT"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

out = Path(sys.argv[1])
digits = load_digits()
seen = {}
for image, label in zip(digits.images, digits.target):
    n = seen[label] = seen.get(label, -1) + 1
    split = "val" if n % 5 == 4 else "train"
    d = out / split / str(label)
    d.mkdir(parents=True, exist_ok=True)
    grey = Image.fromarray((image * (255 / 16)).round().astype(np.uint8))
    grey.resize((32, 32), Image.BILINEAR).convert("RGB").save(d / f"{n:04}.png")
print(f"{len(digits.images)} digits in {out}")
