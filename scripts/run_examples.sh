#!/usr/bin/env bash
# Runs every example on a small synthetic dataset (scripts/test.sh calls this after the tests).
# They are built with the packages of the test step (`-p augloader -p augloader-train -p
# augloader-cli`), so that Cargo resolves the same features and reuses its build.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo build --quiet -p augloader -p augloader-train -p augloader-cli --bins --examples
bin=target/debug
ex=target/debug/examples
"$bin/augloader" synth --out "$tmp/data" --classes 3 --train-per-class 32 --val-per-class 8 --size 48
"$ex/train_minimal" "$tmp/data" 1
"$ex/resume" "$tmp/data"
"$ex/custom_pipeline" tests/data/baseline.jpg "$tmp/custom.png"
"$ex/custom_op" "$tmp/data"
"$bin/augloader" train --data "$tmp/data" --model resnet8 --epochs 1 --batch 16 --quiet --out "$tmp/run" >/dev/null
"$ex/tta_eval" "$tmp/run/model.safetensors" "$tmp/data"
"$ex/decode_rate" "$tmp/data/train" >/dev/null
"$bin/augloader" shard --data "$tmp/data" --out "$tmp/shards" --keep-order --per-shard 16 >/dev/null
"$ex/shuffle_window" "$tmp/shards" 8 >/dev/null
echo "examples ran"
