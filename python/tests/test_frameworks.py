"""PyTorch Lightning and accelerate through their own launchers, with loaders made before the
framework starts, on 97 validation images (an odd count that no rank count here divides):
every sample exactly once, metrics equal to one process, no hang (each run under a timeout)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).parent
TIMEOUT = 300


@pytest.fixture(scope="module")
def odd_dataset(tmp_path_factory) -> Path:
    """4 classes: 40 training images, 97 validation images (25 + 24 + 24 + 24)."""
    root = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(7)
    for split, counts in (("train", [10] * 4), ("val", [25, 24, 24, 24])):
        for c, n in enumerate(counts):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, (20, 20, 3)) // 2 + c * 40
                Image.fromarray(img.astype(np.uint8)).save(d / f"{i:03}.png")
    return root


def run(cmd, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd,
                             timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung: {cmd} did not end in {TIMEOUT} s\n{(e.stderr or b'')[-3000:]}")
    assert out.returncode == 0, out.stderr[-4000:]
    assert "terminate called" not in out.stderr, out.stderr[-2000:]
    return out


def lightning(data, out, strategy, devices):
    run([sys.executable, str(HERE / "lightning_val.py"), str(data), str(out), strategy,
         str(devices)], cwd=out.parent)
    return {stage: [json.loads((out / f"{stage}-rank{r}.json").read_text())
                    for r in range(devices)] for stage in ("validate", "fit")}


@pytest.fixture(scope="module")
def lightning_one(odd_dataset, tmp_path_factory):
    return lightning(odd_dataset, tmp_path_factory.mktemp("l1") / "out", "auto", 1)


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_lightning_validation_is_exact_on_two_ranks(odd_dataset, tmp_path, strategy, lightning_one):
    got = lightning(odd_dataset, tmp_path / "out", strategy, 2)
    one = lightning_one["validate"][0]["metrics"]
    assert one["count"] == 97
    for stage in ("validate", "fit"):
        ranks = got[stage]
        assert [r["world"] for r in ranks] == [2, 2] and [r["rank"] for r in ranks] == [0, 1]
        seen = ranks[0]["seen"] + ranks[1]["seen"]
        assert sorted(seen) == list(range(97)), f"{stage}: samples lost or repeated"
        # The same number of steps on both ranks (the all_gather in every step did not hang),
        # and the gathered per-step counts add up to the dataset.
        assert len(ranks[0]["gathered"]) == len(ranks[1]["gathered"]) == 7
        assert sum(g[1] for g in ranks[0]["gathered"]) == 97
        assert sum(g[0] for g in ranks[0]["gathered"]) == one["correct"]
        for r in ranks:  # what sync_dist gave every rank equals one process's numbers
            assert r["metrics"]["count"] == 97
            assert r["metrics"]["correct"] == one["correct"]
            assert r["metrics"]["correct"] / r["metrics"]["count"] == pytest.approx(one["acc"])
    train = [json.loads((tmp_path / "out" / f"train-rank{r}.json").read_text()) for r in range(2)]
    assert len(train[0]) == len(train[1]) == 20 and set(train[0]) | set(train[1]) == set(range(40))
    assert not set(train[0]) & set(train[1])


def accelerate(data, out, nproc):
    out.mkdir(parents=True)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
         "--standalone", str(HERE / "accelerate_val.py"), str(data), str(out)], cwd=out.parent)
    steps = [json.loads((out / f"steps{r}.json").read_text()) for r in range(nproc)]
    return json.loads((out / "result.json").read_text()), steps


@pytest.mark.parametrize("nproc", [2, 3])
def test_accelerate_gather_for_metrics_is_exact(odd_dataset, tmp_path, nproc):
    one, _ = accelerate(odd_dataset, tmp_path / "one", 1)
    assert sorted(one["indices"]) == list(range(97))
    got, steps = accelerate(odd_dataset, tmp_path / "many", nproc)
    assert len(set(steps)) == 1, f"ranks took {steps} steps"
    assert len(got["indices"]) == 97 and sorted(got["indices"]) == list(range(97))
    assert got["correct"] == one["correct"]
