#!/usr/bin/env python3
"""Writes the decode fixtures in this folder (committed; rerun only to change them).
Each is a 40x30 gradient so a decoder's output can be compared with Pillow's."""
import io, struct, zlib
import numpy as np
from PIL import Image

h, w = 30, 40
y, x = np.mgrid[0:h, 0:w]
rgb = np.stack([x * 6, y * 8, (x + y) * 3], -1).astype(np.uint8)
im = Image.fromarray(rgb, "RGB")
im.save("baseline.jpg", quality=95)
im.save("progressive.jpg", quality=95, progressive=True)
im.convert("L").save("gray.jpg", quality=95)
im.convert("CMYK").save("cmyk.jpg", quality=95)
im.save("rgb.png")
im.convert("RGBA").save("rgba.png")
im.convert("L").save("gray.png")
Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save("gray16.png")
# 16-bit RGB PNG written by hand (Pillow cannot write it).
raw = b"".join(b"\0" + (rgb[r].astype(">u2") * 257).tobytes() for r in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
open("rgb16.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
im.save("rgb.bmp")
im.save("lossless.webp", lossless=True)
im.save("lossy.webp", quality=90)
# Reference pixels (RGB8 as Pillow decodes them) for the lossless formats.
# A decompression bomb: a valid PNG header declaring 20000 x 20000 with a tiny body.
open("bomb.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                             + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
# A JPEG whose SOF0 header declares 15000 x 15000.
b = bytearray(open("baseline.jpg", "rb").read())
i = b.index(b"\xff\xc0")
b[i + 5:i + 9] = struct.pack(">HH", 15000, 15000)
open("bomb.jpg", "wb").write(bytes(b))
# Truncated and corrupt files.
full = open("baseline.jpg", "rb").read()
open("truncated.jpg", "wb").write(full[: len(full) // 3])
png = open("rgb.png", "rb").read()
open("truncated.png", "wb").write(png[: len(png) // 2])
bad = bytearray(png); bad[40:60] = b"\xAA" * 20
open("corrupt.png", "wb").write(bytes(bad))
open("empty.jpg", "wb").write(b"")
open("notimage.jpg", "wb").write(b"GIF89a this is not a supported format")
im.save("image.gif")
im.save("image.tiff")
