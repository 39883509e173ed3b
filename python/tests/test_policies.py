"""Today's recipes against torchvision v2 itself: every policy op replayed with torchvision's
`_apply_image_or_video_transform` at several sizes and both interpolations; every policy's
printed parameters replayed on real photos; and the policies' choices of ops and magnitudes
compared with torchvision's own draws by a chi-square test."""

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import augloader

v2 = pytest.importorskip("torchvision.transforms.v2")
from torchvision.transforms.v2 import InterpolationMode  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "bench" / "corpus"
LIMIT = 2.0  # grey levels of mean absolute difference


def photos():
    """Real photos from the benchmark corpus (a textured synthetic image without it)."""
    paths = sorted(CORPUS.glob("class0[0-2]/*.jpg"))[:3] if CORPUS.is_dir() else []
    if paths:
        return [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    base = np.stack([xx, yy, (xx + yy) // 2], -1) + rng.integers(0, 60, (240, 320, 3))
    return [(base % 256).astype(np.uint8)]


def chw(a):
    return torch.from_numpy(np.array(a)).permute(2, 0, 1).contiguous()


def mad(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def tv_apply(x, op, magnitude, interpolation="nearest", fill=None):
    t = v2.TrivialAugmentWide(fill=fill)
    mode = InterpolationMode(interpolation)
    return t._apply_image_or_video_transform(x, op, 0.0 if magnitude is None else magnitude,
                                             interpolation=mode, fill=t._fill)


OPS = [
    ("Identity", [None]), ("ShearX", [0.3, -0.17, 0.99]), ("ShearY", [-0.3, 0.5]),
    ("TranslateX", [-32.0, 13.7, 100.2]), ("TranslateY", [31.0, -9.4]),
    ("Rotate", [30.0, -13.5, 90.0, 135.0, -180.0]), ("Brightness", [0.9, -0.5, 0.33]),
    ("Color", [-0.9, 0.6]), ("Contrast", [0.9, -0.7]), ("Sharpness", [0.9, -0.9, 0.2]),
    ("Posterize", [8.0, 4.0, 2.0, 0.0]), ("Solarize", [1.0, 0.5, 0.0, 0.27]),
    ("AutoContrast", [None]), ("Equalize", [None]), ("Invert", [None]),
]
SIZES = [(37, 53), (96, 96), (120, 200)]


@pytest.mark.parametrize("op,magnitudes", OPS, ids=[o for o, _ in OPS])
def test_every_op_replays_in_torchvision(op, magnitudes):
    worst = 0.0
    for photo in photos():
        for h, w in SIZES:
            img = np.asarray(Image.fromarray(photo).resize((w, h), Image.BILINEAR))
            for m in magnitudes:
                for interp in ("nearest", "bilinear"):
                    for fill in (None, (10, 200, 30)):
                        ours = augloader.apply_op(img, op, m, interpolation=interp, fill=fill)
                        ref = tv_apply(chw(img), op, m, interp, list(fill) if fill else None)
                        d = mad(ours, ref.permute(1, 2, 0).numpy())
                        worst = max(worst, d)
                        assert d <= LIMIT, (op, m, (h, w), interp, fill, d)
    print(f"{op}: worst mean absolute difference {worst:.4f}")


def replay(photo, p):
    """torchvision replay of `augloader.augment`'s printed parameters."""
    x = chw(photo)
    g = p["geometry"]
    if g["op"] == "crop_resize":
        x = F.resized_crop(x, *g["crop"], size=g["size"], antialias=True)
    elif g["op"] == "resize_crop":
        x = F.crop(F.resize(x, g["resize"], antialias=True), *g["crop"])
    if p["flip"]:
        x = F.horizontal_flip(x)
    interp = "bilinear" if "augmix" in p else "nearest"
    for step in p.get("policy", []):
        x = tv_apply(x, step["op"], step["magnitude"], interp)
    if "augmix" in p:
        a = p["augmix"]
        mix = a["mix"] * x.float()
        for wt, chain in zip(a["weights"], a["chains"]):
            aug = x
            for step in chain:
                aug = tv_apply(aug, step["op"], step["magnitude"], interp)
            mix = mix + wt * aug.float()
        x = mix.to(torch.uint8)
    return x


@pytest.mark.parametrize("policy", list(augloader.POLICIES))
def test_printed_policy_parameters_replay_in_torchvision(policy):
    seen, worst = Counter(), 0.0
    for k, photo in enumerate(photos()):
        for index in range(40):
            out, p = augloader.augment(photo, "inception-train", seed=k, index=index, size=160,
                                       jitter=0, auto_augment=policy)
            steps = p.get("policy") or [s for c in p.get("augmix", {}).get("chains", []) for s in c]
            seen.update(s["op"] for s in steps)
            ref = replay(photo, p).permute(1, 2, 0).numpy()
            d = mad(out, ref)
            worst = max(worst, d)
            assert d <= LIMIT, (policy, k, index, p, d)
    print(f"{policy}: worst {worst:.4f}, ops {dict(seen)}")
    assert len(seen) >= 8, seen  # the draws reached most of the ops


def test_random_erasing_replays_and_random_values_are_normal():
    photo = photos()[0]
    boxes = 0
    for index in range(60):
        out, p = augloader.augment(photo, "tv2-train", index=index, random_erase=1.0)
        ref = replay(photo, {**p, "policy": p.get("policy", [])})
        if p.get("erase"):
            (i, j, h, w), = p["erase"]
            mean = torch.tensor([round(m * 255) for m in (0.485, 0.456, 0.406)], dtype=torch.uint8)
            ref = F.erase(ref, i, j, h, w, mean.view(3, 1, 1).expand(3, h, w))
            boxes += 1
        assert mad(out, ref.permute(1, 2, 0).numpy()) <= LIMIT
    assert boxes >= 50  # p = 1: only a box that never fits in 10 tries is skipped
    # value="random": outside the box as value 0; inside, N(0, 1) in normalised units.
    out, p = augloader.augment(photo, "tv2-train", index=3, random_erase=1.0,
                               random_erase_value="random")
    zero, _ = augloader.augment(photo, "tv2-train", index=3, random_erase=1.0)
    (i, j, h, w), = p["erase"]
    assert p["erase_value"] == "random"
    inside = np.zeros(out.shape[:2], bool)
    inside[i:i + h, j:j + w] = True
    assert np.array_equal(out[~inside], zero[~inside])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    z = (out[inside].astype(np.float64) / 255 - mean) / std
    z = z[(out[inside] > 0) & (out[inside] < 255)]  # clipped values are not normal
    assert abs(z.mean()) < 0.1 and 0.85 < z.std() < 1.1, (z.mean(), z.std())


def record_torchvision(policy, n, size=(64, 48)):
    """(op, magnitude) of each op torchvision's policy applies, over `n` draws."""
    t = {"randaugment": lambda: v2.RandAugment(),
         "ta-wide": lambda: v2.TrivialAugmentWide(),
         "autoaugment-imagenet": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET),
         "autoaugment-cifar10": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10),
         "autoaugment-svhn": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.SVHN),
         "augmix": lambda: v2.AugMix()}[policy]()
    got = []

    def record(image, transform_id, magnitude, interpolation, fill):
        got.append((transform_id, magnitude))
        return image

    t._apply_image_or_video_transform = record
    torch.manual_seed(0)
    x = torch.zeros(3, size[1], size[0], dtype=torch.uint8)
    for _ in range(n):
        t(x)
    return got


def record_ours(policy, n, size=(64, 48)):
    x = np.zeros((size[1], size[0], 3), np.uint8)
    got = []
    for i in range(n):
        _, p = augloader.augment(x, "decode", index=i, auto_augment=policy)
        steps = p.get("policy") or [s for c in p.get("augmix", {}).get("chains", []) for s in c]
        # torchvision passes 0.0 where an op takes no magnitude.
        got += [(s["op"], 0.0 if s["magnitude"] is None else s["magnitude"]) for s in steps]
    return got


def chi_square_p(a: Counter, b: Counter) -> float:
    """p-value of a chi-square test that two samples of categories share one distribution
    (categories with few counts pooled; Wilson-Hilferty's approximation of the tail)."""
    keys = sorted(set(a) | set(b), key=str)
    na, nb = sum(a.values()), sum(b.values())
    rows, pool = [], [0, 0]
    for k in keys:
        if a[k] + b[k] < 10:
            pool[0] += a[k]
            pool[1] += b[k]
        else:
            rows.append((a[k], b[k]))
    if sum(pool) > 0:
        rows.append(tuple(pool))
    stat = 0.0
    for x, y in rows:
        tot = x + y
        for obs, n in ((x, na), (y, nb)):
            exp = tot * n / (na + nb)
            stat += (obs - exp) ** 2 / exp
    dof = max(len(rows) - 1, 1)
    z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


@pytest.mark.parametrize("policy", list(augloader.POLICIES))
def test_policies_choose_ops_and_magnitudes_as_torchvision(policy):
    n = 1500
    ours, theirs = record_ours(policy, n), record_torchvision(policy, n)
    key = lambda om: (om[0], round(om[1], 3))  # noqa: E731
    ops_p = chi_square_p(Counter(o for o, _ in ours), Counter(o for o, _ in theirs))
    full_p = chi_square_p(Counter(map(key, ours)), Counter(map(key, theirs)))
    print(f"{policy}: {len(ours)} vs {len(theirs)} ops, p(ops) {ops_p:.3f}, "
          f"p(op, magnitude) {full_p:.3f}")
    assert abs(len(ours) - len(theirs)) < 6 * math.sqrt(len(theirs)) + 10
    assert ops_p > 1e-3 and full_p > 1e-3


@pytest.mark.parametrize("kernel,sigma", [((3, 3), (0.8, 0.8)), ((5, 9), (1.5, 3.0)), ((23, 23), (4.0, 4.0))])
def test_gaussian_blur_and_grayscale_replay_in_torchvision(kernel, sigma):
    from augloader import _augloader

    for photo in photos():
        for h, w in SIZES:
            img = np.ascontiguousarray(np.asarray(Image.fromarray(photo).resize((w, h))))
            ours = np.asarray(_augloader.apply_pixel_op(img.tobytes(), h, w, "gaussian_blur",
                                                         kernel, sigma))
            ref = F.gaussian_blur(chw(img), list(kernel), list(sigma)).permute(1, 2, 0).numpy()
            assert mad(ours, ref) <= LIMIT, (kernel, sigma, (h, w), mad(ours, ref))
            gray = np.asarray(_augloader.apply_pixel_op(img.tobytes(), h, w, "grayscale"))
            ref = F.rgb_to_grayscale(chw(img), num_output_channels=3).permute(1, 2, 0).numpy()
            assert mad(gray, ref) <= LIMIT
