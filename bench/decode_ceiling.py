#!/usr/bin/env python3
"""One core's JPEG decode rate through Pillow (libjpeg-turbo) over an ImageFolder, bytes in
memory, whole images: the rate a decode-bound loader approaches per core.

usage: decode_ceiling.py ROOT
"""
import glob
import io
import json
import os
import sys
import time

from PIL import Image


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*", "*")))
    blobs = [open(f, "rb").read() for f in files]

    def decode_all():
        for b in blobs:
            Image.open(io.BytesIO(b)).convert("RGB").load()

    decode_all()  # warm-up
    t0 = time.perf_counter()
    decode_all()
    dt = time.perf_counter() - t0
    print(json.dumps({"decoder": "pillow", "images": len(blobs), "seconds": round(dt, 3),
                      "images_per_sec_per_core": round(len(blobs) / dt, 1)}))


if __name__ == "__main__":
    main()
