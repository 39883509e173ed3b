"""Side-by-side throughput table for scripts/bench_python.sh: for each pipeline, ROUNDS rounds in
which `augloader bench`, augloader.Loader from Python (uint8, then normalised float32) and, with
anchors, the torch DataLoader and DALI run one after the other; the table holds each one's median
and the ratios of the medians (the machine is shared: alternating rounds spread its noise).

usage: bench_python_table.py CORPUS WORKERS EPOCHS ROUNDS ANCHORS DALI_PYTHON"""

import json
import statistics
import subprocess
import sys

corpus, workers, epochs, rounds, anchors, dali_python = sys.argv[1:7]
rounds, anchors = int(rounds), anchors == "1"
common = [corpus]


def rate(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])["images_per_sec"]
    except (subprocess.CalledProcessError, ValueError, IndexError, KeyError):
        return None


def runs(p):
    kinds = {
        "bench": ["./target/release/augloader", "bench", "--data", corpus, "--pipeline", p,
                  "--workers", workers, "--epochs", epochs, "--batch", "64", "--json"],
        "py": [sys.executable, "scripts/bench_python.py", corpus, p, workers, epochs, "64"],
        "pyf": [sys.executable, "scripts/bench_python.py", corpus, p, workers, epochs, "64", "float32"],
    }
    if anchors:
        kinds["tv"] = [sys.executable, "bench/torchvision_loader.py", corpus, p, workers, epochs, "64"]
        if dali_python:
            kinds["dali"] = [dali_python, "bench/dali_loader.py", corpus, p, workers, epochs, "64"]
    got = {k: [] for k in kinds}
    for _ in range(rounds):
        for k, cmd in kinds.items():
            r = rate(cmd)
            if r:
                got[k].append(r)
    return {k: statistics.median(v) if v else None for k, v in got.items()}


f = lambda v: f"{v:.0f}" if v else "-"
print(f"{rounds} rounds, medians; {workers} workers, batch 64, {epochs} epochs per run")
print()
print("| pipeline | augloader bench img/s | Python uint8 img/s | / bench | Python float32 normalised img/s | / bench | torch DataLoader img/s | DALI CPU img/s |")
print("|---|---|---|---|---|---|---|---|")
for p in ("resnet-train", "inception-train", "eval"):
    m = runs(p)
    r = m["bench"]
    ratio = lambda v: f"{v / r:.3f}" if r and v else "-"
    print(f"| {p} | {f(r)} | {f(m['py'])} | {ratio(m['py'])} | {f(m['pyf'])} | {ratio(m['pyf'])} "
          f"| {f(m.get('tv'))} | {f(m.get('dali'))} |", flush=True)
