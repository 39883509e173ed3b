#!/usr/bin/env bash
# Installs WHEEL into a fresh virtual environment (its only dependency, numpy, from the registry;
# no torch) and loads a batch from a generated folder: what a user on another machine does first.
# usage: scripts/check_wheel.sh WHEEL
set -euo pipefail
wheel="$(realpath "$1")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv" || python3 -m virtualenv --quiet "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
cd "$tmp"
"$tmp/venv/bin/python" - <<'PY'
import os, zlib, struct
import numpy as np
import augloader

def png(path, h, w, seed):
    # A PNG written by hand (no Pillow in this venv): filter byte 0 per row, zlib-compressed.
    px = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    raw = b"".join(b"\0" + px[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

for c in range(2):
    os.makedirs(f"data/train/c{c}", exist_ok=True)
    for i in range(4):
        png(f"data/train/c{c}/{i}.png", 40 + i, 50, 10 * c + i)
images, labels = next(iter(augloader.Loader("data", batch_size=8, size=32)))
assert images.shape == (8, 3, 32, 32) and images.dtype == np.uint8 and sorted(labels) == [0] * 4 + [1] * 4
print(f"check_wheel: {os.path.basename(augloader.__file__)} from a fresh venv loaded a batch {images.shape}")
PY
