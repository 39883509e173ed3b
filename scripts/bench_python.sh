#!/usr/bin/env bash
# Side-by-side throughput, one after the other per pipeline on the same corpus and worker
# count: `augloader bench` (Rust, the CLI with the system's libjpeg-turbo), augloader.Loader
# iterated from Python (the manylinux wheel of scripts/build_wheel.sh, with its bundled
# libjpeg-turbo: the ratio shows its SIMD is there) as uint8 and as normalised float32, the
# torch DataLoader anchor (bench/torchvision_loader.py) and DALI's CPU pipeline
# (bench/dali_loader.py, in its own virtual environment under the cache; skipped if it cannot be
# installed). AUGLOADER_ANCHORS=0 skips the two anchors; AUGLOADER_ROUNDS (default 3) rounds
# alternate them, and the Markdown table holds the medians.
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
dali_python=""
if [ -f "$dali_venv/.complete" ]; then dali_python="$dali_venv/bin/python"; fi
python scripts/bench_python_table.py "$corpus" "$workers" "$epochs" "${AUGLOADER_ROUNDS:-3}" "$anchors" "$dali_python"
