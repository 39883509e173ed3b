"""Shards streamed over HTTP from a real server on the loopback interface
(tests/servers/shard_http.py): the batches equal those of the same shards read locally with the
same shuffle window, byte for byte, and elastic resume from 4 to 2 ranks covers the epoch once
with every sample as the uninterrupted run makes it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import augloader

ROOT = Path(__file__).resolve().parents[2]
PATTERN = "train-{000000..000005}.tar"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    bin_ = os.environ.get("AUGLOADER_BIN")
    if not bin_:
        pytest.skip("AUGLOADER_BIN (the augloader command) writes the shards")
    d = tmp_path_factory.mktemp("remote")
    subprocess.run([bin_, "synth", "--out", str(d / "data"), "--classes", "4", "--train-per-class", "12",
                    "--val-per-class", "2", "--size", "40"], check=True, capture_output=True)
    subprocess.run([bin_, "shard", "--keep-order", "--per-shard", "8", "--data", str(d / "data"),
                    "--out", str(d / "shards")], check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, str(ROOT / "tests/servers/shard_http.py"), str(d / "shards")],
                              stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline().split()[1])
    yield d, f"http://127.0.0.1:{port}"
    server.kill()
    server.wait()


def make(data, cache, **kw):
    return augloader.Loader(data, batch_size=4, workers=2, seed=3, size=32, shuffle_window=2,
                            return_indices=True, **kw, **({"cache_dir": cache} if cache else {}))


def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def test_http_batches_equal_the_local_shards(served):
    d, url = served
    local = batches(make(str(d / "shards" / PATTERN), None))
    remote = batches(make(f"{url}/{PATTERN}", str(d / "cache")))
    assert len(local) == len(remote) == 12
    for a, b in zip(local, remote):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(augloader.LoadError, match="train-000006.tar"):
        make(f"{url}/train-{{000000..000009}}.tar", str(d / "cache"))
    with pytest.warns(UserWarning, match="skipped shard .*train-000009.tar"):
        skipping = make(f"{url}/train-{{000000..000009}}.tar", str(d / "cache"), on_missing_shard="skip")
    assert len(skipping.dataset) == 48


def run_ranks(url, cache, world, state=None, steps=None):
    loaders = [make(url, cache, rank=r, world_size=world) for r in range(world)]
    for l in loaders:
        if state is not None:
            l.load_state_dict(state)
        else:
            l.set_epoch(2)
    its = [iter(l) for l in loaders]
    seen, pixels, step = [[] for _ in range(world)], {}, 0
    while steps is None or step < steps:
        got = [next(it, None) for it in its]
        if got[0] is None:
            break
        for r, (x, _, idx) in enumerate(got):
            seen[r] += idx.tolist()
            for k, i in enumerate(idx.tolist()):
                pixels[i] = x[k].clone()
        step += 1
    return seen, pixels, loaders[0].state_dict()


def test_elastic_resume_from_4_to_2_ranks_over_http(served):
    d, url = served
    url = f"{url}/{PATTERN}"
    cache = str(d / "cache-ranks")
    seen, pixels, state = run_ranks(url, cache, 4, steps=1)
    seen2, pixels2, _ = run_ranks(url, cache, 2, state=state)
    done = [i for s in seen for i in s]
    rest = [i for s in seen2 for i in s]
    assert sorted(done + rest) == list(range(48)), "the epoch covered exactly once"
    _, reference, _ = run_ranks(url, cache, 1)
    for i, x in list(pixels.items()) + list(pixels2.items()):
        assert torch.equal(x, reference[i])
