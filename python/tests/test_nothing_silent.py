"""What used to go silently wrong: each test here failed before the fix it names."""

import copy
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import make_folder
from PIL import Image

import augloader


def test_val_split_of_one_imagefolder_is_an_error_naming_what_was_found(dataset):
    with pytest.raises(ValueError, match="no validation split.*one ImageFolder"):
        augloader.Loader(dataset / "train", split="val")
    assert len(augloader.Loader(dataset / "train", batch_size=8)) == 9  # training: the folder


@pytest.mark.parametrize("ext", ["tif", "tiff", "ppm", "pgm"])
def test_every_extension_of_torchvision_imagefolder_is_read(tmp_path, ext):
    rng = np.random.default_rng(1)
    pixels = {}
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            rgb = rng.integers(0, 256, (9 + i, 11, 3), dtype=np.uint8)
            img = Image.fromarray(rgb).convert("L") if ext == "pgm" else Image.fromarray(rgb)
            path = tmp_path / c / f"{i}.{ext}"
            img.save(path)
            pixels[str(path)] = np.asarray(Image.open(path).convert("RGB"))
    loader = augloader.Loader(tmp_path, pipeline="decode", batch_size=1, shuffle=False,
                              return_indices=True)
    assert len(loader.samples) == 6
    for x, _, i in loader:
        path = loader.samples[int(i[0])][0]
        assert np.array_equal(x[0].permute(1, 2, 0).numpy(), pixels[path]), path


def test_an_unreadable_tif_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(augloader.LoadError, match="bad.tif"):
        list(augloader.Loader(tmp_path, pipeline="decode", batch_size=1))


def test_a_batch_of_unequal_sizes_is_an_error_naming_them(dataset):
    loader = augloader.Loader(dataset, pipeline="decode", batch_size=4, shuffle=False)
    with pytest.raises(ValueError, match=r"different sizes \(HxW: \d+x\d+, \d+x\d+"):
        next(iter(loader))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_after_a_partial_pass_does_what_the_original_does_next(dataset, how):
    loader = augloader.Loader(dataset, batch_size=8, workers=2, size=16, return_indices=True)
    it = iter(loader)
    next(it), next(it)  # a sanity peek, then the pass is left
    del it
    dup = pickle.loads(pickle.dumps(loader)) if how == "pickle" else copy.deepcopy(loader)
    a = [i.tolist() for _, _, i in dup]
    b = [i.tolist() for _, _, i in loader]
    assert a == b and len(a) == 9
    # A pending resume travels with the copy.
    loader.load_state_dict({**loader.state_dict(), "epoch": 1, "position": 16})
    dup = copy.deepcopy(loader)
    assert [i.tolist() for _, _, i in dup] == [i.tolist() for _, _, i in loader]


@pytest.mark.parametrize("key", ["shuffle", "drop_last", "even_batches", "return_indices",
                                 "channels_last"])
def test_strict_types(dataset, key):
    with pytest.raises(TypeError, match=key):
        augloader.Loader(dataset, **{key: "yes"})
    with pytest.raises(TypeError, match="batch_size"):
        augloader.Loader(dataset, batch_size="8")


def test_dataset_works_in_dataloader_worker_processes(dataset):
    loader = augloader.Loader(dataset, split="val", batch_size=4, size=16, shuffle=False)
    list(loader)  # the parent has run passes (threads, locks) before the workers fork
    dl = torch.utils.data.DataLoader(loader.dataset, batch_size=6, num_workers=2,
                                     multiprocessing_context="fork")
    got = torch.cat([x for x, _ in dl])
    want = torch.stack([loader.dataset[i][0] for i in range(len(loader.dataset))])
    assert torch.equal(got, want)


def test_rank_and_world_are_read_when_a_pass_starts(dataset, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    loader = augloader.Loader(dataset, batch_size=4, size=16, return_indices=True)
    alone = [i for _, _, b in loader for i in b.tolist()]
    assert len(alone) == 72
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader.set_epoch(0)
    assert len(loader) == 9
    with pytest.warns(RuntimeWarning, match="from 0 of 1 to 1 of 2"):
        mine = [i for _, _, b in loader for i in b.tolist()]
    other = [i for _, _, b in augloader.Loader(dataset, batch_size=4, size=16, rank=0,
                                                world_size=2, return_indices=True)
             for i in b.tolist()]
    assert len(mine) == 36 and sorted(mine + other) == sorted(alone)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        monkeypatch.setenv("RANK", "0")
        list(loader)
    # Given explicitly, they win over the environment.
    fixed = augloader.Loader(dataset, batch_size=4, size=16, rank=0, world_size=1)
    assert len(fixed) == 18


@pytest.mark.parametrize("world", [2, 3, 4])
def test_uneven_validation_gives_every_rank_the_same_number_of_batches(tmp_path, world):
    root = make_folder(tmp_path, classes=1, per_class=4)  # val: 1 image
    big = make_folder(tmp_path / "big", classes=3, per_class=40)  # val: 30 images
    for data, n in ((root, 1), (big, 30)):
        per_rank = [list(augloader.Loader(data, split="val", batch_size=4, size=16, rank=r,
                                          world_size=world, return_indices=True))
                    for r in range(world)]
        steps = {len(b) for b in per_rank}
        assert steps == {-(-n // (4 * world))}
        lens = [augloader.Loader(data, split="val", batch_size=4, size=16, rank=r,
                                 world_size=world).__len__() for r in range(world)]
        assert set(lens) == steps
        seen = [i for batches in per_rank for _, _, b in batches for i in b.tolist()]
        assert sorted(seen) == list(range(n))
        for batches in per_rank:
            for x, y, i in batches:
                assert x.shape[1:] == (3, 16, 16) and len(y) == len(i) == x.shape[0]
