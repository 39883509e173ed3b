#!/usr/bin/env bash
# Side-by-side throughput, one after the other per pipeline on the same corpus and worker
# count: `augloader bench` (Rust, the CLI with the system's libjpeg-turbo), augloader.Loader
# iterated from Python (the manylinux wheel of scripts/build_wheel.sh, with its bundled
# libjpeg-turbo: the ratio shows its SIMD is there) as uint8 and as normalised float32, the
# torch DataLoader anchor (bench/torchvision_loader.py) and DALI's CPU pipeline
# (bench/dali_loader.py, in its own virtual environment under the cache; skipped if it cannot be
# installed). AUGLOADER_ANCHORS=0 skips the two anchors. Prints a Markdown table.
# usage: scripts/bench_python.sh [CORPUS] [WORKERS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-3}"
anchors="${AUGLOADER_ANCHORS:-1}"
cargo build --release --quiet -p augloader-cli
wheel="$(scripts/build_wheel.sh 2>/dev/null | tail -1)"
python -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"
dali_venv="$AUGLOADER_CACHE/venv-dali"
if [ "$anchors" = 1 ] && [ ! -f "$dali_venv/.complete" ]; then
  (python3 -m venv "$dali_venv" && "$dali_venv/bin/pip" install --quiet --disable-pip-version-check nvidia-dali-cuda130 numpy &&
    touch "$dali_venv/.complete") || echo "DALI could not be installed: its column is left empty" >&2
fi
json() { "$@" 2>/dev/null | tail -1 || echo '{}'; }
echo "| pipeline | augloader bench img/s | Python uint8 img/s | / bench | Python float32 normalised img/s | / bench | torch DataLoader img/s | DALI CPU img/s |"
echo "|---|---|---|---|---|---|---|---|"
for p in resnet-train inception-train eval; do
  rust=$(json ./target/release/augloader bench --data "$corpus" --pipeline "$p" --workers "$workers" --epochs "$epochs" --batch 64 --json)
  py=$(json python scripts/bench_python.py "$corpus" "$p" "$workers" "$epochs" 64)
  pyf=$(json python scripts/bench_python.py "$corpus" "$p" "$workers" "$epochs" 64 float32)
  tv='{}'
  dali='{}'
  if [ "$anchors" = 1 ]; then
    tv=$(json python bench/torchvision_loader.py "$corpus" "$p" "$workers" "$epochs" 64)
    if [ -f "$dali_venv/.complete" ]; then dali=$(json "$dali_venv/bin/python" bench/dali_loader.py "$corpus" "$p" "$workers" "$epochs" 64); fi
  fi
  python - "$p" "$rust" "$py" "$pyf" "$tv" "$dali" <<'PY'
import json, sys
p, *runs = sys.argv[1:]
r, py, pyf, tv, dali = (json.loads(x or "{}").get("images_per_sec") for x in runs)
f = lambda v: f"{v:.0f}" if v else "-"
ratio = lambda v: f"{v / r:.3f}" if r and v else "-"
print(f"| {p} | {f(r)} | {f(py)} | {ratio(py)} | {f(pyf)} | {ratio(pyf)} | {f(tv)} | {f(dali)} |")
PY
done
