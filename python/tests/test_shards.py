"""Tar shards (WebDataset layout) from Python: shards made by tarfile read like the folder, and
shards written by `augloader shard` read back in the webdataset package."""

import io
import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import augloader


def folder_samples(root: Path):
    """(path, label) of ROOT's ImageFolder in its order: classes sorted, then files sorted."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    return [(f, c) for c, name in enumerate(classes) for f in sorted((root / name).iterdir())]


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def batches(loader):
    return [(np.asarray(x).copy(), np.asarray(y).copy()) for x, y in loader]


def test_tarfile_shards_give_the_folder_samples(dataset, tmp_path):
    samples = folder_samples(dataset / "train")
    out = tmp_path / "shards"
    out.mkdir()
    for n, part in enumerate((samples[:30], samples[30:])):
        with tarfile.open(out / f"train-{n:06}.tar", "w") as tar:
            for i, (path, label) in enumerate(part):
                key = f"s{n}_{i:05}"
                add(tar, f"{key}.jpg", path.read_bytes())
                add(tar, f"{key}.cls", str(label).encode())
    pattern = str(out / "train-{000000..000001}.tar")
    for shuffle in (False, True):
        kw = dict(pipeline="inception-train", size=32, batch_size=8, workers=2, seed=4, shuffle=shuffle)
        a = batches(augloader.Loader(dataset, **kw))
        b = batches(augloader.Loader(pattern, **kw))
        assert len(a) == len(b) == 9
        for (xa, ya), (xb, yb) in zip(a, b):
            assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    # Worker counts do not change the batches.
    one = batches(augloader.Loader(pattern, pipeline="eval", size=32, batch_size=8, workers=1))
    three = batches(augloader.Loader(pattern, pipeline="eval", size=32, batch_size=8, workers=3))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(one, three))


def test_shards_written_by_augloader_read_back_in_webdataset(dataset, tmp_path, cli):
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "shards"
    subprocess.run([cli, "shard", "--data", str(dataset), "--out", str(out), "--per-shard", "20"],
                   check=True, capture_output=True)
    classes = (out / "classes.txt").read_text().split()
    assert classes == ["class0", "class1", "class2"]
    for split, count in (("train", 72), ("val", 18)):
        urls = sorted(str(p) for p in out.glob(f"{split}-*.tar"))
        seen = []
        for s in wds.WebDataset(urls, shardshuffle=False):
            meta = json.loads(s["json"])
            label = int(s["cls"])
            source = dataset / meta["source"]
            assert label == meta["label"] == classes.index(source.parent.name)
            assert s["jpg"] == source.read_bytes()
            seen.append(meta["source"])
        assert len(seen) == len(set(seen)) == count
        # The same shards through augloader: the same labels, in the same order.
        loader = augloader.Loader(out, split=split, pipeline="eval", size=32, batch_size=16, shuffle=False)
        labels = np.concatenate([np.asarray(y) for _, y in loader])
        wds_labels = [int(s["cls"]) for s in wds.WebDataset(urls, shardshuffle=False)]
        assert labels.tolist() == wds_labels


def test_restart_markers_keep_the_pixels_and_the_batches(dataset, tmp_path):
    from PIL import Image

    def pixels(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    samples = folder_samples(dataset / "train")
    out = tmp_path / "restart"
    out.mkdir()
    with tarfile.open(out / "train-000000.tar", "w") as tar:
        for i, (path, label) in enumerate(samples):
            data = path.read_bytes()
            marked = augloader.add_restart_markers(data, interval=1)
            # A DRI segment before the scan, and the same pixels in Pillow.
            assert b"\xff\xdd\x00\x04\x00\x01" in marked[: marked.index(b"\xff\xda")]
            assert np.array_equal(pixels(marked), pixels(data))
            add(tar, f"s{i:05}.jpg", marked)
            add(tar, f"s{i:05}.cls", str(label).encode())
    # Window decodes of the marked files (cut to the intervals around each crop) give the
    # folder's batches byte for byte.
    for pipeline in ("resnet-train", "inception-train", "eval"):
        kw = dict(pipeline=pipeline, size=24, batch_size=8, workers=2, seed=5)
        a = batches(augloader.Loader(dataset, **kw))
        b = batches(augloader.Loader(str(out), **kw))
        assert len(a) == len(b) > 0
        assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(a, b))
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    for bad in (png.getvalue(), b"\xff\xd8\xff\xdb truncated", b""):
        with pytest.raises(ValueError):
            augloader.add_restart_markers(bad)
    with pytest.raises(ValueError):
        augloader.add_restart_markers(samples[0][0].read_bytes(), interval=0)


def test_restart_markers_never_change_pixels_of_progressive_files_cut_short(tmp_path):
    """A progressive JPEG that ends after its first scans (valid: libjpeg smooths the blocks it
    has) is either re-encoded to the same pixels, as Pillow decodes them, or refused."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.stack([xx * 2, yy * 2, (xx + yy)], -1) + rng.integers(0, 60, (96, 128, 3))
    path = tmp_path / "p.jpg"
    Image.fromarray((img % 256).astype(np.uint8)).save(path, quality=90, progressive=True)
    data = path.read_bytes()
    scans = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    assert len(scans) > 3
    refused = 0
    for k in range(2, len(scans)):
        cut = data[: scans[k]] + b"\xff\xd9"
        want = np.asarray(Image.open(io.BytesIO(cut)).convert("RGB"))
        try:
            out = augloader.add_restart_markers(cut, 1)
        except ValueError as e:
            assert "change" in str(e)
            refused += 1
            continue
        got = np.asarray(Image.open(io.BytesIO(out)).convert("RGB"))
        assert np.array_equal(got, want), f"cut after {k} scans: pixels changed"
    assert refused > 0  # libjpeg smooths cut-short progressive files: the refusal is exercised
    full = augloader.add_restart_markers(data, 1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(full)).convert("RGB")),
                          np.asarray(Image.open(path).convert("RGB")))
