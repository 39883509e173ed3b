#!/usr/bin/env bash
# Side-by-side throughput, one after the other per pipeline on the same corpus and worker
# count: `augloader bench` (Rust), augloader.Loader iterated from Python, the torch DataLoader
# anchor (bench/torchvision_loader.py) and DALI's CPU pipeline (bench/dali_loader.py,
# in its own virtual environment under the cache; skipped if it cannot be installed).
# Prints a Markdown table. usage: scripts/bench_python.sh [CORPUS] [WORKERS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-3}"
cargo build --release --quiet -p augloader-cli
python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .
dali_venv="$AUGLOADER_CACHE/venv-dali"
if [ ! -f "$dali_venv/.complete" ]; then
  (python3 -m venv "$dali_venv" && "$dali_venv/bin/pip" install --quiet --disable-pip-version-check nvidia-dali-cuda130 numpy &&
    touch "$dali_venv/.complete") || echo "DALI could not be installed: its column is left empty" >&2
fi
json() { "$@" 2>/dev/null | tail -1 || echo '{}'; }
echo "| pipeline | augloader bench img/s | augloader Python img/s | Python / bench | torch DataLoader img/s | DALI CPU img/s |"
echo "|---|---|---|---|---|---|"
for p in resnet-train inception-train eval; do
  rust=$(json ./target/release/augloader bench --data "$corpus" --pipeline "$p" --workers "$workers" --epochs "$epochs" --batch 64 --json)
  py=$(json python scripts/bench_python.py "$corpus" "$p" "$workers" "$epochs" 64)
  tv=$(json python bench/torchvision_loader.py "$corpus" "$p" "$workers" "$epochs" 64)
  dali='{}'
  if [ -f "$dali_venv/.complete" ]; then dali=$(json "$dali_venv/bin/python" bench/dali_loader.py "$corpus" "$p" "$workers" "$epochs" 64); fi
  python - "$p" "$rust" "$py" "$tv" "$dali" <<'PY'
import json, sys
p, *runs = sys.argv[1:]
r, py, tv, dali = (json.loads(x or "{}").get("images_per_sec") for x in runs)
f = lambda v: f"{v:.0f}" if v else "-"
ratio = f"{py / r:.3f}" if r and py else "-"
print(f"| {p} | {f(r)} | {f(py)} | {ratio} | {f(tv)} | {f(dali)} |")
PY
done
