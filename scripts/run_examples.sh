#!/usr/bin/env bash
# Runs every example on a small synthetic dataset (scripts/test.sh calls this after the tests,
# whose build already compiled them).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet -p augloader-cli -- synth --out "$tmp/data" --classes 3 --train-per-class 32 --val-per-class 8 --size 48
cargo run --quiet -p augloader --features torch --example train_minimal -- "$tmp/data" 1
cargo run --quiet -p augloader --features torch --example resume -- "$tmp/data"
cargo run --quiet -p augloader --features torch --example custom_pipeline -- tests/data/baseline.jpg "$tmp/custom.png"
cargo run --quiet -p augloader-cli -- train --data "$tmp/data" --model resnet8 --epochs 1 --batch 16 --quiet --out "$tmp/run" >/dev/null
cargo run --quiet -p augloader --features torch --example tta_eval -- "$tmp/run/model.safetensors" "$tmp/data"
cargo run --quiet -p augloader --features torch --example decode_rate -- "$tmp/data/train" >/dev/null
echo "examples ran"
