"""MixUp and CutMix at the batch level: soft targets, lambda's distribution, the pixels against
the unmixed batch, and determinism across worker counts and on resume."""

import numpy as np
import pytest
import torch

import augloader


def load(dataset, **kw):
    kw = {"batch_size": 6, "workers": 2, "size": 24, "seed": 5, "return_indices": True, **kw}
    return augloader.Loader(dataset, **kw)


def lambdas(dataset, epochs, **kw):
    """lam of every batch whose first two labels differ (MixUp: the own label's weight)."""
    L = load(dataset, **kw)
    labels = [y for _, y in L.samples]
    out = []
    for e in range(epochs):
        L.set_epoch(e)
        for x, t, i in L:
            y = [labels[k] for k in i.tolist()]
            if y[0] != y[-1]:  # row 0 is mixed with the last row (the batch rolled by one)
                out.append(float(t[0, y[0]]))
    return np.array(out)


def ks(a, b):
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return np.abs(fa - fb).max()


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_mixup_lambda_follows_beta_and_targets_sum_to_one(dataset, alpha):
    lam = lambdas(dataset, 16, mixup=alpha)
    assert len(lam) > 100
    ref = np.random.default_rng(0).beta(alpha, alpha, 20000)
    d, n = ks(lam, ref), len(lam)
    assert d < 1.63 * np.sqrt((n + len(ref)) / (n * len(ref))), (alpha, d, n)  # KS at 1%
    L = load(dataset, mixup=alpha, cutmix=1.0, label_smoothing=0.1)
    for x, t, _ in L:
        assert t.dtype == torch.float32 and t.shape == (len(x), len(L.classes))
        assert torch.allclose(t.sum(1), torch.ones(len(x)), atol=1e-5)
        assert float(t.min()) >= 0.1 / len(L.classes) - 1e-6  # smoothing folded in


def test_mixed_pixels_against_the_unmixed_batch(dataset):
    plain = [x.int() for x, _, _ in load(dataset)]
    for kind in ("mixup", "cutmix"):
        L = load(dataset, **{kind: 1.0})
        labels = [y for _, y in L.samples]
        for (x, t, i), p in zip(L, plain):
            x, rolled = x.int(), torch.roll(p, 1, 0)
            y = [labels[k] for k in i.tolist()]
            if kind == "mixup":
                if y[0] == y[-1]:
                    continue
                lam = float(t[0, y[0]])
                want = lam * p.float() + (1 - lam) * rolled.float()
                assert (x.float() - want).abs().max() <= 0.5001
            else:
                inside = (x != p).any(1)  # [B, H, W]
                assert torch.equal(x[inside.unsqueeze(1).expand_as(x)],
                                   rolled[inside.unsqueeze(1).expand_as(x)])
                if y[0] != y[-1]:  # lam is at most the share of pixels left as they were
                    changed = float(inside[0].float().mean())
                    assert float(t[0, y[0]]) <= 1.0 - changed + 1e-6


def test_mixed_batches_do_not_depend_on_workers_and_resume_exactly(dataset):
    kw = dict(mixup=0.8, cutmix=1.0, label_smoothing=0.1)
    a = [(x, t) for x, t, _ in load(dataset, workers=1, **kw)]
    b = [(x, t) for x, t, _ in load(dataset, workers=3, **kw)]
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    L = load(dataset, **kw)
    it = iter(L)
    for _ in range(4):
        next(it)
    state = L.state_dict()
    del it
    R = load(dataset, **kw)
    R.load_state_dict(state)
    rest = [(x, t) for x, t, _ in R]
    assert len(rest) == len(a) - 4
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a[4:], rest))


@pytest.mark.parametrize("kw", [dict(mixup=-1), dict(cutmix=1e9), dict(mixup="x"),
                                dict(mixup=1, mix_switch_prob=2), dict(label_smoothing=0.1),
                                dict(mixup=1, label_smoothing=1.0), dict(mixup=1, tta="flip")])
def test_mix_arguments_out_of_range_are_errors(dataset, kw):
    with pytest.raises((ValueError, TypeError)):
        load(dataset, **kw)
