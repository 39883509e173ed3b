#!/usr/bin/env python3
"""Replays augloader's printed augmentation parameters with torchvision.transforms.v2.functional.

usage: torchvision_replay.py AUGLOADER_BIN WORKDIR INPUT [INPUT ...]   (PNG or JPEG)
For each preset, seed and input: runs `augloader augment`, replays its JSON parameters on the
same input with torchvision (decoded in full by Pillow), and compares the two images. Prints one JSON line per case and
exits 1 if any mean absolute difference exceeds 2 grey levels."""
import json, os, subprocess, sys

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

LIMIT = 2.0
CASES = [
    ("resnet-train", []),
    ("inception-train", []),
    ("inception-train", ["--hue", "0.1"]),
    ("cifar-train", []),
    ("eval", []),
    ("cifar-eval", []),
]


def load(path):
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).contiguous()


def replay(x, p):
    g = p["geometry"]
    if g["op"] == "resize_crop":
        x = F.resize(x, g["resize"], antialias=True)
        x = F.crop(x, *g["crop"])
    elif g["op"] == "crop_resize":
        x = F.resized_crop(x, *g["crop"], size=g["size"], antialias=True)
    elif g["op"] == "pad_crop":
        x = F.pad(x, [g["pad"]] * 4, fill=0)
        x = F.crop(x, *g["crop"])
    assert list(x.shape[1:]) == p["output_size"], (x.shape, p["output_size"])
    if p["flip"]:
        x = F.horizontal_flip(x)
    j = p.get("jitter")
    if j:
        for op in j["order"]:
            if op == 0 and j["brightness"] is not None:
                x = F.adjust_brightness(x, j["brightness"])
            elif op == 1 and j["contrast"] is not None:
                x = F.adjust_contrast(x, j["contrast"])
            elif op == 2 and j["saturation"] is not None:
                x = F.adjust_saturation(x, j["saturation"])
            elif op == 3 and j["hue"] is not None:
                x = F.adjust_hue(x, j["hue"])
    l = p.get("lighting")
    if l:
        # fb.resnet.torch Lighting on the [0, 1] image, back to uint8.
        off = torch.tensor(l["rgb"], dtype=torch.float32).view(3, 1, 1)
        x = (x.float() / 255 + off).mul(255).round().clamp(0, 255).to(torch.uint8)
    fill = torch.tensor(p["cutout_fill"], dtype=torch.uint8).view(3, 1, 1)
    for t, left, h, w in p["cutout"]:
        x = F.erase(x, t, left, h, w, fill.expand(3, h, w))
    return x


def main():
    binary, work, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    worst = 0.0
    worst_by_kind = {}
    for name, extra in CASES:
        for k, path in enumerate(inputs):
            if name.startswith("cifar"):
                if not path.endswith(".png"):
                    continue
                small = os.path.join(work, f"cifar_{k}.png")
                Image.open(path).convert("RGB").resize((32, 32), Image.BILINEAR).save(small)
                path = small
            for seed in range(3):
                out = os.path.join(work, f"{name}_{k}_{seed}.png")
                cmd = [binary, "augment", "--in", path, "--out", out, "--pipeline", name,
                       "--seed", str(seed), "--epoch", "1", "--index", str(k)] + extra
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr}")
                params = json.loads(run.stdout)
                ours = load(out)
                ref = replay(load(path), params)
                assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
                diff = (ours.int() - ref.int()).abs().float()
                mad = diff.mean().item()
                worst = max(worst, mad)
                base = os.path.basename(path)
                kind = base.split(".")[-1] + ("-big" if "big" in base else "")
                if "detail" in base:
                    kind = base.split(".")[0].replace("input_", "")
                worst_by_kind[kind] = max(worst_by_kind.get(kind, 0.0), round(mad, 4))
                print(json.dumps({"pipeline": name, "extra": extra, "input": os.path.basename(path), "seed": seed,
                                  "mad": round(mad, 4), "max": int(diff.max().item())}))
    print(json.dumps({"worst_mad": round(worst, 4), "by_input": worst_by_kind, "limit": LIMIT}))
    sys.exit(0 if worst <= LIMIT else 1)


if __name__ == "__main__":
    main()
