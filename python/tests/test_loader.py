"""The Python loader: determinism, identity with `augloader augment`, resume (also elastic),
errors, the GIL, memory and shutdown."""

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import augloader


def collect(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def test_batches_are_tensors_sharing_memory_and_equal_across_worker_counts(dataset):
    one = augloader.Loader(dataset, batch_size=8, workers=1, seed=3, return_indices=True)
    four = augloader.Loader(dataset, batch_size=8, workers=4, prefetch_factor=3, seed=3, return_indices=True)
    a, b = collect(one), collect(four)
    assert len(a) == len(one) == 9
    for (xa, ya, ia), (xb, yb, ib) in zip(a, b):
        assert xa.dtype == torch.uint8 and xa.shape == (8, 3, 224, 224)
        assert ya.dtype == torch.int64 and ia.dtype == torch.int64
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
    # Each epoch is a permutation of the dataset; labels are the samples' classes.
    idx = torch.cat([i for _, _, i in a]).tolist()
    assert sorted(idx) == list(range(72))
    labels = dict(enumerate(lbl for _, lbl in one.samples))
    assert [labels[i] for i in idx] == torch.cat([y for _, y, _ in a]).tolist()
    # No copy: the tensor views the buffer numpy wraps.
    x, _ = next(iter(augloader.Loader(dataset, batch_size=4, workers=1)))
    assert x.numpy().base is not None and not x.numpy().flags.owndata


def test_each_sample_equals_augment_and_the_command_line(dataset, cli, tmp_path):
    loader = augloader.Loader(dataset, batch_size=6, workers=2, seed=5, return_indices=True, size=64)
    loader.set_epoch(2)
    images, _, indices = next(iter(loader))
    paths = [p for p, _ in loader.samples]
    for k in (0, 5):
        i = int(indices[k])
        ours, params = augloader.augment(paths[i], "resnet-train", seed=5, epoch=2, index=i, size=64)
        assert np.array_equal(images[k].permute(1, 2, 0).numpy(), ours)
        out = tmp_path / f"{k}.png"
        printed = subprocess.run(
            [cli, "augment", "--in", paths[i], "--out", out, "--seed", "5", "--epoch", "2",
             "--index", str(i), "--size", "64"],
            check=True, capture_output=True, text=True,
        ).stdout
        assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), ours)
        assert json.loads(printed) == params


def test_augment_takes_arrays_and_names_bad_files(tmp_path):
    img = (np.arange(50 * 60 * 3) % 251).astype(np.uint8).reshape(50, 60, 3)
    out, params = augloader.augment(img, "eval", size=32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert params["input_size"] == [50, 60]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(augloader.LoadError, match="bad.jpg"):
        augloader.augment(bad)


def test_resume_mid_epoch_equals_an_uninterrupted_run(dataset):
    def make():
        return augloader.Loader(dataset, batch_size=8, workers=2, seed=1, return_indices=True, size=32)

    full = make()
    full.set_epoch(1)
    whole = collect(full)
    first = make()
    first.set_epoch(1)
    it = iter(first)
    for _ in range(4):
        next(it)
    state = json.loads(json.dumps(first.state_dict()))
    del it, first
    resumed = make()
    resumed.load_state_dict(state)
    rest = collect(resumed)
    assert len(rest) == len(whole) - 4
    for a, b in zip(whole[4:], rest):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert resumed.epoch == 2  # the next iteration starts epoch 2


def run_ranks(dataset, world, state=None, steps=None):
    """Iterates `world` loaders in lockstep (as DDP ranks would); returns each rank's indices
    and images by sample, and rank 0's state."""
    loaders = [
        augloader.Loader(dataset, batch_size=3, workers=1, seed=9, rank=r, world_size=world,
                         return_indices=True, size=32)
        for r in range(world)
    ]
    for l in loaders:
        if state is not None:
            l.load_state_dict(state)
        else:
            l.set_epoch(4)
    its = [iter(l) for l in loaders]
    seen = [[] for _ in range(world)]
    pixels = {}
    step = 0
    while steps is None or step < steps:
        batches = [next(it, None) for it in its]
        if batches[0] is None:
            assert all(b is None for b in batches), "ranks got different batch counts"
            break
        for r, (x, _, idx) in enumerate(batches):
            seen[r].extend(idx.tolist())
            for k, i in enumerate(idx.tolist()):
                pixels[i] = x[k].clone()
        step += 1
    return seen, pixels, loaders[0].state_dict()


@pytest.mark.parametrize("before,after", [(4, 2), (4, 8), (2, 3)])
def test_state_from_one_topology_resumes_on_another(dataset, before, after):
    # 72 samples, batches of 3: the rest after 2 steps divides among `after` ranks.
    seen, pixels, state = run_ranks(dataset, before, steps=2)
    assert all(len(s) == 6 for s in seen)
    seen2, pixels2, _ = run_ranks(dataset, after, state=state)
    assert len({len(s) for s in seen2}) == 1, "equal lengths on every rank"
    done = [i for s in seen for i in s]
    rest = [i for s in seen2 for i in s]
    assert sorted(done + rest) == list(range(72)), "the epoch covered exactly once"
    # Every sample is augmented as the uninterrupted run augments it.
    _, reference, _ = run_ranks(dataset, 1)
    for i, x in list(pixels.items()) + list(pixels2.items()):
        assert torch.equal(x, reference[i])


def test_errors_name_the_file_and_skip_accounts_for_them(broken_dataset):
    with pytest.raises(augloader.LoadError, match="003.jpg"):
        for _ in augloader.Loader(broken_dataset, batch_size=4, workers=2):
            pass
    loader = augloader.Loader(broken_dataset, batch_size=4, workers=2, on_error="skip")
    n = sum(len(y) for _, y in loader)
    assert n == 16
    assert [s[1] for s in loader.skipped] == [p for p, _ in loader.samples if p.endswith("class1/003.jpg")]
    with pytest.raises(augloader.LoadError, match="nowhere"):
        augloader.Loader(broken_dataset / "nowhere")


@pytest.mark.parametrize(
    "kwargs",
    [dict(batch_size=0), dict(workers=-1), dict(pipeline="nope"), dict(jitter=-1.0), dict(size=0),
     dict(scale_max=10**5), dict(size=-1), dict(size="x"), dict(flip="often"),
     dict(seed=-1), dict(workers=10**6), dict(prefetch_factor=2**64), dict(seed=2**64),
     dict(split="test"), dict(on_error="ignore"), dict(rank=2, world_size=2),
     dict(dtype="int32"), dict(normalize=True), dict(dtype="float32", normalize=(1, 2)),
     dict(dtype="float32", normalize=((0, 0, 0), (1, 0, 1))), dict(device="tpu")],
)
def test_bad_arguments_are_value_errors(dataset, kwargs):
    with pytest.raises(ValueError):
        augloader.Loader(dataset, **kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [(dict(size=-5), r"size=-5.*0\.\."), (dict(workers=-1), r"workers must be an integer in 0\.\.1024"),
     (dict(batch_size=-1), r"batch_size must be an integer in 1\.\."),
     (dict(jitter=-1.0), "jitter")],
)
def test_range_errors_say_the_valid_range(dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        augloader.Loader(dataset, **kwargs)


@pytest.mark.parametrize(
    "name,hint",
    [("num_workers", "workers="), ("prefetch", "prefetch_factor="), ("pin_memory", "device="),
     ("persistent_workers", "threads"), ("collate_fn", "dtype="), ("colour", "unknown keyword"),
     ("jiter", "did you mean 'jitter'")],
)
def test_dataloader_keywords_name_the_equivalent(dataset, name, hint):
    with pytest.raises(TypeError, match=hint):
        augloader.Loader(dataset, **{name: 1})


def test_a_python_thread_runs_while_the_loader_works(dataset):
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        start = counter[0]
        t0 = time.perf_counter()
        for _ in augloader.Loader(dataset, batch_size=8, workers=2, pipeline="resnet-train"):
            pass
        elapsed = time.perf_counter() - t0
    finally:
        stop.set()
        t.join()
    # With the GIL held while Rust waited, the thread would barely run.
    assert counter[0] - start > 20_000 * elapsed, (counter[0] - start, elapsed)


def threads():
    return len(os.listdir("/proc/self/task"))


def test_breaking_out_and_deleting_join_the_workers(dataset):
    # Other threads of the process may end meanwhile, none may start: at most `before` after.
    before = threads()
    loader = augloader.Loader(dataset, batch_size=4, workers=4)
    for _ in loader:
        assert threads() >= before + 3
        break
    assert threads() <= before
    it = iter(loader)
    next(it)
    assert threads() >= before + 3
    del it, loader
    assert threads() <= before


def test_peak_memory_is_flat_over_epochs(dataset):
    loader = augloader.Loader(dataset, batch_size=8, workers=2, size=128)
    peaks = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        for _ in loader:
            pass
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    assert peaks[2] - peaks[0] < 20 * 1024, peaks  # KiB


def test_numpy_without_torch(dataset):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, augloader\n"
        f"x, y, i = next(iter(augloader.Loader({str(dataset)!r}, batch_size=4, workers=1, return_indices=True)))\n"
        "assert isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.shape == (4, 3, 224, 224)\n"
        "assert y.dtype == np.int64 and i.dtype == np.int64\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_metadata(dataset):
    loader = augloader.Loader(dataset, split="val", batch_size=5)
    assert loader.classes == ["class0", "class1", "class2"]
    assert len(loader.samples) == 18 and loader.samples[0][1] == 0
    assert Path(loader.samples[0][0]).is_file()
    assert np.allclose(loader.mean, (0.485 * 255, 0.456 * 255, 0.406 * 255))
    assert len(loader) == 4
    assert "resnet-train" in augloader.PIPELINES


def test_tta_views_equal_torchvision_ten_crop(dataset):
    from torchvision.transforms import v2

    loader = augloader.Loader(dataset, split="val", batch_size=4, workers=2, tta="10crop", size=32)
    x, y = next(iter(loader))
    assert x.shape == (4, 10, 3, 32, 32) and x.dtype == torch.uint8 and len(y) == 4
    # The same views as torchvision: shorter side to 37 (antialiased), TenCrop(32).
    path = loader.samples[0][0]
    img = v2.functional.pil_to_tensor(Image.open(path).convert("RGB"))
    ref = v2.TenCrop(32)(v2.Resize(37, antialias=True)(img))
    for k in range(10):
        diff = (x[0, k].int() - ref[k].int()).abs().float().mean().item()
        assert diff < 1.0, (k, diff)
    with pytest.raises(ValueError, match="several sizes"):
        augloader.Loader(dataset, split="val", tta="multiscale")
    with pytest.raises(ValueError, match="unknown tta"):
        augloader.Loader(dataset, split="val", tta="20crop")


def test_channels_last_gives_the_same_images_in_channels_last_memory(dataset):
    for kwargs in ({"split": "train"}, {"split": "val", "tta": "5crop", "size": 32}):
        planar = augloader.Loader(dataset, batch_size=8, workers=2, seed=4, **kwargs)
        last = augloader.Loader(dataset, batch_size=8, workers=2, seed=4, channels_last=True, **kwargs)
        a, b = list(planar), list(last)
        assert len(a) == len(b) > 1
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xa.shape == xb.shape and torch.equal(xa, xb) and torch.equal(ya, yb)
            if xb.dim() == 4:
                assert xb.is_contiguous(memory_format=torch.channels_last)
                assert not xa.is_contiguous(memory_format=torch.channels_last)
            else:  # [B, V, 3, H, W]: the [B * V, 3, H, W] view a model takes is channels_last
                assert xb.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
            assert xb.untyped_storage().nbytes() == xb.numel()  # no copy made


def test_16_bit_pngs_are_read_as_pillow_reads_them(tmp_path):
    """Pillow (torchvision's ImageFolder loader) truncates 16-bit samples to 8 (v >> 8)."""
    import struct
    import zlib

    rng = np.random.default_rng(5)
    px = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    raw = b"".join(b"\0" + px[y].astype(">u2").tobytes() for y in range(20))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30, 20, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path = tmp_path / "deep.png"
    path.write_bytes(png)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(want, (px >> 8).astype(np.uint8))  # Pillow's rule, checked
    (tmp_path / "d" / "train" / "c").mkdir(parents=True)
    (tmp_path / "d" / "train" / "c" / "deep.png").write_bytes(png)
    got, _ = next(iter(augloader.Loader(tmp_path / "d", pipeline="decode", batch_size=1)))
    assert np.array_equal(got[0].permute(1, 2, 0).numpy(), want)


def test_a_data_path_that_is_not_utf8_loads(tmp_path, dataset):
    import shutil

    odd = os.fsdecode(bytes(tmp_path) + b"/caf\xe9")  # Latin-1 bytes: a surrogate escape in str
    shutil.copytree(dataset, odd)
    x, y = next(iter(augloader.Loader(odd, batch_size=4, size=32)))
    assert x.shape == (4, 3, 32, 32)


def test_skip_completes_with_files_that_fail_only_in_some_windows(tmp_path):
    """A damaged but complete JPEG (a bogus marker in its bottom rows, restart intervals so that
    a window decodes only its rows) loads in some crop windows and fails in others. Skipping must
    still complete every batch: a replacement that fails in the skipped sample's window is
    passed over, never the end of the run."""
    import io as _io

    rng = np.random.default_rng(0)
    buf = _io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (256, 256, 3)).astype(np.uint8)).save(buf, "JPEG", quality=90)
    data = bytearray(augloader.add_restart_markers(buf.getvalue(), 1))
    at = int(len(data) * 0.9)
    data[at:at + 2] = b"\xff\xd5"
    root = tmp_path / "d" / "train"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
    (root / "a" / "damaged.jpg").write_bytes(bytes(data))
    (root / "b" / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(rng.integers(0, 256, (80, 90, 3)).astype(np.uint8)).save(root / "b" / "good.jpg")
    fails = 0
    for i in range(40):
        try:
            augloader.augment(root / "a" / "damaged.jpg", index=i, size=64)
        except augloader.LoadError:
            fails += 1
    assert 0 < fails < 40, "the damaged file must fail in some windows only"
    L = augloader.Loader(tmp_path / "d", batch_size=3, on_error="skip", size=64, seed=1)
    for epoch in range(30):
        L.set_epoch(epoch)
        (x, y), = list(L)
        assert x.shape[0] == 3
    names = [n for _, n, _ in L.skipped]
    assert sum(n.endswith("broken.jpg") for n in names) == 30
