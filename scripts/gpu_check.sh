#!/usr/bin/env bash
# GPU check: builds the manylinux augloader wheel here, then (through the `run` tool of a lent GPU
# machine, whose image has PyTorch but no Rust and no package registry) installs it with
# --no-deps, checks the CUDA delivery path against the CPU path (scripts/gpu_device_check.py:
# fails loudly without CUDA), and trains resnet50 at 224 px on a generated ImageFolder for a
# fixed number of steps with augloader (16 workers; batches normalised on the device) and with
# torch's DataLoader (16 workers) in the same run, printing images/s and data_wait_fraction.
#
#   scripts/gpu_check.sh build     # here: wheel into dist/ (well under 64 MiB)
#   scripts/gpu_check.sh run       # there: install, generate data, train both ways
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
build)
  source scripts/env.sh
  rm -rf dist && mkdir -p dist
  cp "$(scripts/build_wheel.sh | tail -1)" dist/
  ls -l dist/*.whl
  size=$(stat -c %s dist/*.whl)
  [ "$size" -lt $((32 << 20)) ] || { echo "wheel too large: $size bytes" >&2; exit 1; }
  ;;
run)
  python -m pip install --quiet --no-deps --force-reinstall dist/augloader-*.whl
  python scripts/gpu_device_check.py
  python scripts/gpu_train_compare.py --steps "${STEPS:-200}" --workers 16 --out "${OUT:-.}"
  ;;
*)
  echo "usage: scripts/gpu_check.sh build|run" >&2
  exit 2
  ;;
esac
