"""Multi-process runs under torchrun (gloo, CPU): shards, equal lengths, and resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_folder

HERE = Path(__file__).parent
EXAMPLE = HERE.parent.parent / "examples" / "python" / "train.py"


def torchrun(nproc, *args, cwd=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
           "--standalone", *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


def ranks(out, n):
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]


def test_two_ranks_are_disjoint_complete_equal_and_resume_exactly(dataset, tmp_path):
    whole, first, second = (tmp_path / d for d in ("whole", "first", "second"))
    for d in (whole, first, second):
        d.mkdir()
    torchrun(2, HERE / "ddp_ranks.py", dataset, whole, 0, "-")
    w = ranks(whole, 2)
    assert w[0]["steps"] == w[1]["steps"] == 12  # 72 samples / 2 ranks / batches of 3
    a, b = set(w[0]["seen"]), set(w[1]["seen"])
    assert not a & b and len(a | b) == 72
    # Stop after 5 steps, then resume on 2 ranks from rank 0's state.
    torchrun(2, HERE / "ddp_ranks.py", dataset, first, 5, "-")
    torchrun(2, HERE / "ddp_ranks.py", dataset, second, 0, first / "state.json")
    f, s = ranks(first, 2), ranks(second, 2)
    for r in range(2):
        assert f[r]["steps"] == 5 and s[r]["steps"] == 7
        combined = {**f[r]["seen"], **s[r]["seen"]}
        assert combined == w[r]["seen"], f"rank {r}: resumed run differs from the uninterrupted one"


def test_the_training_example_runs_and_resumes_under_torchrun(dataset, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    common = ["--data", dataset, "--model", "resnet18", "--batch-size", "4", "--workers", "1",
              "--size", "32", "--checkpoint", ckpt, "--epochs", "2"]
    torchrun(2, EXAMPLE, *common, "--stop-after", "3")
    state = __import__("torch").load(ckpt, weights_only=False)["loader"]
    assert state["epoch"] == 0 and state["position"] == 3 * 4 * 2
    out = torchrun(2, EXAMPLE, *common, "--resume", "--max-steps", "2")
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert [l["epoch"] for l in lines] == [0, 1]
    for l in lines:
        assert l["images_per_sec"] > 0 and 0 <= l["data_wait_fraction"] <= 1
        assert 0 <= l["val_top1"] <= 1


def test_three_ranks_validate_every_sample_once_and_sum_to_the_single_process_top1(tmp_path):
    # 4 classes x 25 validation images = 100 in steps of 3 x 8: four whole steps, then 4 on rank
    # 0: 36, 32, 32 over 3 ranks, none twice, 5 batches on every rank.
    data = make_folder(tmp_path / "data", classes=4, per_class=100, size=36)
    results = {}
    for n in (1, 3):
        out = tmp_path / f"ranks{n}"
        out.mkdir()
        torchrun(n, HERE / "ddp_eval.py", data, out)
        results[n] = ranks(out, n)
    three = results[3]
    assert [len(r["seen"]) for r in three] == [36, 32, 32]
    assert [r["batches"] for r in three] == [5, 5, 5]
    assert sorted(sum((r["seen"] for r in three), [])) == list(range(100))
    (one,) = results[1]
    assert one["total"] == 100 and all(r["summed"] == [one["correct"], 100] for r in three)
    assert sum(r["correct"] for r in three) == one["correct"]
