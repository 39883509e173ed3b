#!/usr/bin/env bash
# Runs every example on a small synthetic dataset (scripts/test.sh calls this after the tests,
# whose build already compiled them).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet -- synth --out "$tmp/data" --classes 3 --train-per-class 32 --val-per-class 8 --size 48
cargo run --quiet --example train_minimal -- "$tmp/data" 1
cargo run --quiet --example resume -- "$tmp/data"
cargo run --quiet --example custom_pipeline -- tests/data/baseline.jpg "$tmp/custom.png"
cargo run --quiet -- train --data "$tmp/data" --model resnet8 --epochs 1 --batch 16 --quiet --out "$tmp/run" >/dev/null
cargo run --quiet --example tta_eval -- "$tmp/run/model.safetensors" "$tmp/data"
cargo run --quiet --example decode_rate -- "$tmp/data/train" >/dev/null
echo "examples ran"
