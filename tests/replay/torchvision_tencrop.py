#!/usr/bin/env python3
"""Checks augloader's TTA crops against torchvision's FiveCrop/TenCrop, pixel for pixel.

usage: torchvision_tencrop.py DIR
DIR holds input.png and augloader's views five_K.png (K = 0..4) and ten_K.png (K = 0..9), cut
from input.png without resampling. torchvision.transforms.v2.FiveCrop / TenCrop (224) must give
identical images in the same order."""
import sys

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2


def load(p):
    return torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)


d = sys.argv[1]
x = load(f"{d}/input.png")
bad = 0
for name, tf, n in [("five", v2.FiveCrop(224), 5), ("ten", v2.TenCrop(224), 10)]:
    ref = tf(x)
    assert len(ref) == n
    for k in range(n):
        ours = load(f"{d}/{name}_{k}.png")
        same = ours.shape == ref[k].shape and torch.equal(ours, ref[k])
        print(f"{name}[{k}]: {'equal' if same else 'DIFFERENT'}")
        bad += not same
sys.exit(1 if bad else 0)
