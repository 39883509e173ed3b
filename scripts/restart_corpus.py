#!/usr/bin/env python3
"""Copies an ImageFolder of JPEGs, re-encoded with restart markers (as many cameras write them),
keeping each file's quantisation tables and chroma subsampling (Pillow, quality="keep").

usage: restart_corpus.py SRC DST [BLOCKS]   (a restart marker every BLOCKS MCUs; default 4)
"""
import os
import sys

from PIL import Image


def main():
    src, dst = sys.argv[1], sys.argv[2]
    blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    n = 0
    for root, _, files in os.walk(src):
        for name in sorted(files):
            path = os.path.join(root, name)
            out = os.path.join(dst, os.path.relpath(path, src))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with Image.open(path) as im:
                if im.format != "JPEG":
                    continue
                im.save(out, "JPEG", quality="keep", restart_marker_blocks=blocks)
            n += 1
    print(f"{n} JPEGs -> {dst} (restart interval {blocks} MCUs)")


if __name__ == "__main__":
    main()
