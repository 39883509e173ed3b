"""Shared fixtures: small ImageFolder datasets of JPEGs made with Pillow."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_folder(root: Path, classes: int, per_class: int, size: int = 40, seed: int = 0) -> Path:
    """ROOT/train and ROOT/val ImageFolders of textured JPEGs of varied sizes."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", max(1, per_class // 4))):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = size + int(rng.integers(0, 12)), size + int(rng.integers(0, 12))
                yy, xx = np.mgrid[0:h, 0:w]
                base = np.stack([xx * 5 + c * 60, yy * 4, (xx + yy) * 3 + i], axis=-1)
                img = (base + rng.integers(0, 40, (h, w, 3))) % 256
                Image.fromarray(img.astype(np.uint8)).save(d / f"{i:03}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """3 classes x 24 training images (72: divisible by 2, 4 and 8 ranks x 3)."""
    return make_folder(tmp_path_factory.mktemp("data"), classes=3, per_class=24)


@pytest.fixture
def broken_dataset(tmp_path) -> Path:
    """A dataset with one truncated JPEG."""
    root = make_folder(tmp_path / "data", classes=2, per_class=8)
    bad = root / "train" / "class1" / "003.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    return root


@pytest.fixture(scope="session")
def cli() -> str:
    """The augloader binary (AUGLOADER_BIN, set by scripts/test.sh), or skip."""
    path = os.environ.get("AUGLOADER_BIN") or shutil.which("augloader")
    if not path:
        pytest.skip("AUGLOADER_BIN not set")
    return path
