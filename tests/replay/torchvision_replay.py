#!/usr/bin/env python3
"""Replays augloader's printed augmentation parameters with torchvision.transforms.v2.functional.

usage: torchvision_replay.py AUGLOADER_BIN WORKDIR INPUT [INPUT ...]   (PNG or JPEG)
For each preset, seed and input: runs `augloader augment`, replays its JSON parameters on the
same input with torchvision (decoded in full by Pillow), and compares the two images. Policy ops
("policy": torchvision's op names and signed magnitudes; "augmix": weights, mix and chains) go
through torchvision v2's own `_apply_image_or_video_transform`; erased boxes ("erase",
"erase_value" in normalised units) through `F.erase` with the pixel that normalises to the value. Prints one JSON line per case and
exits 1 if any mean absolute difference exceeds 2 grey levels."""
import json, os, subprocess, sys

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

LIMIT = 2.0
CASES = [
    ("resnet-train", []),
    ("inception-train", []),
    ("inception-train", ["--hue", "0.1"]),
    ("cifar-train", []),
    ("eval", []),
    ("cifar-eval", []),
    ("tv2-train", []),
    ("tv2-eval", []),
    ("deit-train", []),
    ("inception-train", ["--auto-augment", "augmix", "--jitter", "0"]),
    ("inception-train", ["--auto-augment", "autoaugment-imagenet", "--jitter", "0",
                         "--random-erase", "1", "--random-erase-value", "0.5,-1,2"]),
    ("cifar-train", ["--auto-augment", "autoaugment-cifar10", "--cutout", "0"]),
]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def policy_op(x, step, interpolation):
    """One printed policy op through torchvision v2's own dispatch."""
    t = v2.TrivialAugmentWide()
    m = 0.0 if step["magnitude"] is None else step["magnitude"]
    return t._apply_image_or_video_transform(x, step["op"], m,
                                             interpolation=InterpolationMode(interpolation),
                                             fill=t._fill)


def replay_policy(x, p):
    """The policy after the flip: its ops in order, or AugMix's mixture (bilinear, truncated)."""
    for step in p.get("policy", []):
        x = policy_op(x, step, "nearest")
    a = p.get("augmix")
    if a:
        mix = a["mix"] * x.float()
        for wt, chain in zip(a["weights"], a["chains"]):
            aug = x
            for step in chain:
                aug = policy_op(aug, step, "bilinear")
            mix = mix + wt * aug.float()
        x = mix.to(torch.uint8)
    return x


def replay_erase(x, p, mean, std):
    """RandomErasing after Normalize: the erased value v (normalised units) is the pixel
    round((mean + v * std) * 255)."""
    v = p.get("erase_value")
    for t, left, h, w in p.get("erase", []):
        vals = v["channels"]
        px = [min(255, max(0, round((m + c * s) * 255))) for m, c, s in zip(mean, vals, std)]
        fill = torch.tensor(px, dtype=torch.uint8).view(3, 1, 1)
        x = F.erase(x, t, left, h, w, fill.expand(3, h, w))
    return x


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
    x = replay_policy(x, p.get("_policy", {}))
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


def replay_all(x, p, name):
    """Geometry, flip, jitter, lighting, Cutout, with the policy after the flip and erasing
    last (the order of the pipeline)."""
    q = dict(p)
    after_flip = {"policy": q.pop("policy", []), "augmix": q.pop("augmix", None)}
    q["_policy"] = after_flip
    x = replay(x, q)
    return replay_erase(x, p, *STATS.get(name, (MEAN, STD)))


STATS = {"cifar-train": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))}


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
                ref = replay_all(load(path), params, name)
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
