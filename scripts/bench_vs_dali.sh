#!/usr/bin/env bash
# augloader bench against NVIDIA DALI's CPU pipeline (bench/dali_loader.py), side by
# side: for each pipeline the two run alternately ROUNDS times on the same corpus and thread
# count, and the medians are compared with DALI's decode-only rate. Prints a Markdown table.
# Both time warm pipelines: dali_baseline.py runs one batch before its clock starts, and
# `augloader bench --warmup 1` one epoch (its own epochs restart the workers, timed).
# usage: scripts/bench_vs_dali.sh [CORPUS] [WORKERS] [EPOCHS] [ROUNDS] [OURS] [LAYOUT]
# OURS: the dataset augloader reads (default CORPUS), e.g. shards written from CORPUS with
# `augloader shard --restart-interval 4` (the same photos; DALI reads CORPUS).
# LAYOUT: augloader's batch layout, nchw (default) or nhwc (channels_last). DALI's decode-only
# pipeline outputs HWC images; its other pipelines output CHW.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-3}"
rounds="${4:-3}"
ours_data="${5:-$corpus}"
layout="${6:-nchw}"
cargo build --release --quiet -p augloader-cli
dali_venv="$AUGLOADER_CACHE/venv-dali"
if [ ! -f "$dali_venv/.complete" ]; then
  python3 -m venv "$dali_venv"
  "$dali_venv/bin/pip" install --quiet --disable-pip-version-check nvidia-dali-cuda130 numpy
  touch "$dali_venv/.complete"
fi
source scripts/bench_lib.sh
declare -A ours theirs
for p in decode resnet-train inception-train eval; do
  a=() d=()
  for _ in $(seq "$rounds"); do
    a+=("$(rate ./target/release/augloader bench --data "$ours_data" --pipeline "$p" --workers "$workers" --epochs "$epochs" --warmup 1 --batch 64 --layout "$layout" --json)")
    d+=("$(rate "$dali_venv/bin/python" bench/dali_loader.py "$corpus" "$p" "$workers" "$epochs" 64)")
  done
  ours[$p]=$(echo "${a[*]}" | median)
  theirs[$p]=$(echo "${d[*]}" | median)
  echo "$p: augloader ${a[*]} / DALI ${d[*]}" >&2
done
[ "$ours_data" = "$corpus" ] || echo "augloader reads $ours_data"
echo "corpus $corpus, $workers workers/threads, $epochs epochs, batch 64, augloader layout $layout, median of $rounds alternating runs (images/s)"
echo
echo "| pipeline | augloader | DALI CPU | augloader / DALI | augloader / DALI decode |"
echo "|---|---|---|---|---|"
for p in decode resnet-train inception-train eval; do
  python3 -c "
import sys
p, a, d, dd = sys.argv[1], *map(float, sys.argv[2:])
print(f'| {p} | {a:.0f} | {d:.0f} | {a / d:.2f} | {a / dd:.2f} |')" "$p" "${ours[$p]}" "${theirs[$p]}" "${theirs[decode]}"
done
