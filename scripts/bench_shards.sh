#!/usr/bin/env bash
# The same images as a folder and as tar shards (written by `augloader shard`), benched
# alternately ROUNDS times per pipeline on one disk; prints the medians and their ratio.
# usage: scripts/bench_shards.sh [CORPUS] [WORKERS] [EPOCHS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-3}"
rounds="${4:-3}"
cargo build --release --quiet -p augloader-cli
shards=$(mktemp -d)
trap 'rm -rf "$shards"' EXIT
./target/release/augloader shard --data "$corpus" --out "$shards" --shard-size 64MB
source scripts/bench_lib.sh
bench() { rate ./target/release/augloader bench --data "$1" --pipeline "$2" --workers "$workers" --epochs "$epochs" --warmup 1 --batch 64 --json; }
echo "| pipeline | folder img/s | shards img/s | shards / folder |"
echo "|---|---|---|---|"
for p in decode resnet-train eval; do
  f=() s=()
  for _ in $(seq "$rounds"); do
    f+=("$(bench "$corpus" "$p")")
    s+=("$(bench "$shards" "$p")")
  done
  python3 -c "
import sys
p, f, s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f'| {p} | {f:.0f} | {s:.0f} | {s / f:.2f} |')" "$p" "$(echo "${f[*]}" | median)" "$(echo "${s[*]}" | median)"
done
