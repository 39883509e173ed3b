"""Samples given as data (pairs, paths with labels, uint8 images in memory, CSV lists) and targets
beyond one class (multi-label, regression), with the loader's guarantees; workers=0."""

import os
import pickle
import shutil
import threading

import numpy as np
import pytest
import torch

import augloader


def folder_pairs(root):
    """The (path, label) pairs of ROOT/train in the loader's own order."""
    ref = augloader.Loader(root, batch_size=4)
    return [(p, int(y)) for p, y in ref.samples], ref


def batches(loader, epoch=None):
    if epoch is not None:
        loader.set_epoch(epoch)
    return [tuple(t.clone() for t in b) for b in loader]


def test_pairs_and_paths_give_the_folders_batches(dataset):
    pairs, ref = folder_pairs(dataset / "train")
    want = batches(ref)
    got = batches(augloader.Loader(pairs, batch_size=4))
    assert all(torch.equal(a, b) for x, y in zip(want, got) for a, b in zip(x, y))
    paths, labels = zip(*pairs)
    got = batches(augloader.Loader(list(paths), labels=np.array(labels), batch_size=4))
    assert all(torch.equal(a, b) for x, y in zip(want, got) for a, b in zip(x, y))


def cifar_like(n=37, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_images_in_memory_arrive_as_given(as_tensor):
    x, y = cifar_like()
    data = torch.from_numpy(x) if as_tensor else x
    loader = augloader.Loader(data, labels=y, pipeline="decode", batch_size=8, shuffle=False,
                              return_indices=True)
    seen = []
    for images, labels, idx in loader:
        assert torch.equal(images, torch.from_numpy(x[idx.numpy()]).permute(0, 3, 1, 2))
        assert labels.tolist() == y[idx.numpy()].tolist()
        seen += idx.tolist()
    assert seen == list(range(len(x)))
    grey = augloader.Loader(x[..., 0], labels=y, pipeline="decode", batch_size=4, shuffle=False)
    img, _ = next(iter(grey))
    assert torch.equal(img[:, 1], torch.from_numpy(x[:4, ..., 0]))


def test_a_loader_over_data_shows_its_size_and_takes_the_shared_defaults():
    import inspect
    x, y = cifar_like()
    loader = augloader.Loader(x, labels=y, pipeline="decode")
    assert "<37 samples>" in repr(loader)
    # One table of defaults with the Rust library and the command line.
    params = inspect.signature(augloader.Loader).parameters
    for name in ("batch_size", "workers", "prefetch_factor", "seed"):
        assert params[name].default == augloader.DEFAULTS[name], name
    assert augloader.DEFAULTS["batch_size"] == 64 and augloader.DEFAULTS["workers"] >= 1
    assert loader.batch_size == 64


def test_images_of_any_sizes_and_resume_and_ranks():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (20 + i % 7, 30 - i % 5, 3), dtype=np.uint8) for i in range(23)]
    labels = [i % 3 for i in range(23)]
    make = lambda **kw: augloader.Loader(images, labels=labels, batch_size=4, size=16, seed=5, **kw)
    full = batches(make(), 1)
    part = make()
    part.set_epoch(1)
    it = iter(part)
    first = [tuple(t.clone() for t in next(it)) for _ in range(2)]
    state = part.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    rest = batches(resumed)
    assert all(torch.equal(a, b) for x, y in zip(full, first + rest) for a, b in zip(x, y))
    seen = []
    for rank in range(2):
        for _, _, idx in make(rank=rank, world_size=2, even_batches=False, return_indices=True):
            seen += idx.tolist()
    assert sorted(seen) == list(range(23))
    copy = pickle.loads(pickle.dumps(make()))
    assert all(torch.equal(a, b) for x, y in zip(batches(copy, 1), full) for a, b in zip(x, y))


def test_regression_targets():
    x, _ = cifar_like(20)
    values = np.linspace(-2, 3, 20).astype(np.float32)
    loader = augloader.Loader(x, labels=values, target="regression", batch_size=6,
                              return_indices=True)
    for _, t, idx in loader:
        assert t.dtype == torch.float32 and t.shape == idx.shape
        assert torch.equal(t, torch.from_numpy(values[idx.numpy()]))
    two = np.stack([values, -values], 1)
    loader = augloader.Loader(x, labels=two, target="regression", batch_size=6, return_indices=True)
    for _, t, idx in loader:
        assert t.shape == (len(idx), 2) and torch.equal(t, torch.from_numpy(two[idx.numpy()]))
    mixed = augloader.Loader(x, labels=values, target="regression", batch_size=5, mixup=0.4,
                             return_indices=True)
    for _, t, idx in mixed:  # mixed with some lambda: between each value and the one before
        y, prev = values[idx.numpy()], np.roll(values[idx.numpy()], 1)
        assert np.all(t.numpy() >= np.minimum(y, prev) - 1e-5)
        assert np.all(t.numpy() <= np.maximum(y, prev) + 1e-5)


def test_multilabel_lists_rows_and_csv(tmp_path, dataset):
    x, _ = cifar_like(12)
    sets = [[i % 4, (i * 3) % 5] for i in range(12)]
    loader = augloader.Loader(x, labels=sets, target="multilabel", num_classes=6, batch_size=5,
                              return_indices=True)
    for _, t, idx in loader:
        want = np.zeros((len(idx), 6), np.float32)
        for r, i in enumerate(idx.tolist()):
            want[r, sets[i]] = 1
        assert torch.equal(t, torch.from_numpy(want))
    hot = np.zeros((12, 6), np.int64)
    for i, s in enumerate(sets):
        hot[i, s] = 1
    again = augloader.Loader(x, labels=hot, target="multilabel", batch_size=5, return_indices=True)
    loader.set_epoch(0)  # the next pass would be epoch 1
    assert all(torch.equal(a[1], b[1]) for a, b in zip(loader, again))
    # A CSV list beside the images: paths relative to the list.
    shutil.copytree(dataset / "train", tmp_path / "train")
    pairs, _ = folder_pairs(tmp_path / "train")
    lines = ["path,labels"] + [f"{p},{i % 3} {(i + 1) % 3}" for i, (p, _) in enumerate(pairs)]
    (tmp_path / "multi.csv").write_text("\n".join(lines) + "\n")
    csv = augloader.Loader(tmp_path / "multi.csv", target="multilabel", batch_size=8,
                           return_indices=True)
    for _, t, idx in csv:
        assert t.shape == (len(idx), 3) and torch.all(t.sum(1) == 2)
    lines = [f"{p},{i / 10},{-i}" for i, (p, _) in enumerate(pairs)]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    reg = augloader.Loader(tmp_path / "reg.csv", target="regression", batch_size=8,
                           return_indices=True)
    for _, t, idx in reg:
        want = np.stack([idx.numpy() / 10, -idx.numpy()], 1).astype(np.float32)
        assert torch.allclose(t, torch.from_numpy(want))
    # A list given as a path is its own split.
    assert len(augloader.Loader(tmp_path / "reg.csv", target="regression", split="val")) > 0


@pytest.mark.parametrize(
    "kwargs,error,message",
    [(dict(labels=np.linspace(0, 1, 37)), TypeError, "target='regression'"),
     (dict(labels=[1, 2]), ValueError, "2 targets for 37"),
     (dict(labels=None), ValueError, "needs labels="),
     (dict(labels=[[1]] * 37), TypeError, "target='multilabel'"),
     (dict(labels=[0] * 37, target="mixed"), ValueError, "target must be one of"),
     (dict(labels=[[0, 7]] * 37, target="multilabel", num_classes=5), ValueError, "below the 5"),
     (dict(labels=[-1] * 37), ValueError, "negative"),
     (dict(labels=[0] * 37, num_classes=3), ValueError, "multi-label"),
     (dict(labels=[float("nan")] * 37, target="regression"), ValueError, "not finite")],
)
def test_bad_targets_are_named(kwargs, error, message):
    x, _ = cifar_like()
    with pytest.raises(error, match=message):
        augloader.Loader(x, **kwargs)


def test_bad_data_is_named(dataset):
    x, y = cifar_like(4)
    with pytest.raises(ValueError, match="channels first"):
        augloader.Loader(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), labels=y)
    with pytest.raises(TypeError, match="uint8"):
        augloader.Loader(x.astype(np.float32), labels=y)
    with pytest.raises(ValueError, match="own labels"):
        augloader.Loader(dataset, labels=[0])
    with pytest.raises(ValueError, match="CSV list"):
        augloader.Loader(dataset, target="regression")
    with pytest.raises(TypeError, match="data must be"):
        augloader.Loader(42)
    with pytest.raises(augloader.LoadError, match="gone.jpg"):
        list(augloader.Loader([("gone.jpg", 0)]))


def test_workers_zero_builds_batches_in_the_calling_thread(dataset):
    want = batches(augloader.Loader(dataset, batch_size=5, workers=2))
    got = batches(augloader.Loader(dataset, batch_size=5, workers=0))
    assert all(torch.equal(a, b) for x, y in zip(want, got) for a, b in zip(x, y))
    threads = set()

    def note(img):
        threads.add(threading.get_ident())
        return img

    list(augloader.Loader(dataset, batch_size=5, workers=0, transform=note))
    assert threads == {threading.get_ident()}


def test_exclude_leaves_listed_files_out(tmp_path, dataset):
    shutil.copytree(dataset, tmp_path / "d")
    full = augloader.Loader(tmp_path / "d", batch_size=8)
    names = [p for p, _ in full.samples][:3]
    (tmp_path / "bad.txt").write_text("".join(os.path.relpath(n, tmp_path / "d") + "\n" for n in names))
    less = augloader.Loader(tmp_path / "d", batch_size=8, exclude=tmp_path / "bad.txt")
    assert len(less.samples) == len(full.samples) - 3
    assert not set(names) & {p for p, _ in less.samples}
    with pytest.raises(ValueError, match="exclude="):
        augloader.Loader(np.zeros((2, 8, 8, 3), np.uint8), labels=[0, 1], exclude=tmp_path / "bad.txt")
