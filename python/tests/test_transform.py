"""`transform=`: a callable of the user's own, applied per sample in the workers."""

import pytest
import torch

import augloader

v2 = pytest.importorskip("torchvision.transforms.v2")


def invert(x):
    assert x.dtype == torch.uint8 and x.ndim == 3 and x.shape[0] == 3
    return 255 - x


def batches(dataset, **kw):
    kw = {"batch_size": 8, "workers": 2, "size": 24, "seed": 1, **kw}
    return [x for x, _ in augloader.Loader(dataset, **kw)]


def test_a_transform_sees_each_sample_after_the_pipeline(dataset):
    plain, inverted = batches(dataset), batches(dataset, transform=invert)
    assert all(torch.equal(255 - a, b) for a, b in zip(plain, inverted))


def test_random_transforms_are_deterministic_for_any_worker_count(dataset):
    t = v2.Compose([v2.RandomRotation(30), v2.ColorJitter(0.5, 0.5)])
    a = batches(dataset, workers=1, transform=t)
    b = batches(dataset, workers=3, transform=t)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, batches(dataset)))


def test_a_transform_that_fails_or_returns_something_else_is_an_error(dataset):
    def boom(x):
        raise KeyError("no such thing")

    with pytest.raises(augloader.LoadError, match="no such thing"):
        batches(dataset, transform=boom)
    with pytest.raises(augloader.LoadError, match=r"uint8 \[3, H, W\]"):
        batches(dataset, transform=lambda x: x.float())
    with pytest.raises(TypeError, match="callable"):
        augloader.Loader(dataset, transform="invert")
