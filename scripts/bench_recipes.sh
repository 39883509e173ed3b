#!/usr/bin/env bash
# Today's recipes, side by side: `augloader bench` with plain resnet-train, resnet-train +
# TrivialAugmentWide + random erasing 0.1, and tv2-train (torchvision's v2 recipe: RandomResized-
# Crop 176, flip, TrivialAugmentWide, erasing 0.1), against the anchors' own tv2-train pipelines
# (torchvision v2 + DataLoader, bench/torchvision_loader.py; DALI's CPU pipeline with
# nvidia.dali.auto_aug.trivial_augment, bench/dali_loader.py). Each round runs all of them one
# after the other; the table has the medians of ROUNDS rounds. `--mixup/--cutmix` on our side
# are measured too (batch-level mixing; the anchors' loaders have none).
# usage: scripts/bench_recipes.sh [CORPUS] [WORKERS] [EPOCHS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-3}"
rounds="${4:-3}"
cargo build --release --quiet -p augloader-cli --no-default-features
dali_venv="$AUGLOADER_CACHE/venv-dali"
if [ ! -f "$dali_venv/.complete" ]; then
  python3 -m venv "$dali_venv"
  "$dali_venv/bin/pip" install --quiet --disable-pip-version-check nvidia-dali-cuda130 numpy
  touch "$dali_venv/.complete"
fi
source scripts/bench_lib.sh
bench() { rate ./target/release/augloader bench --data "$corpus" --workers "$workers" --epochs "$epochs" --warmup 1 --batch 64 --json "$@"; }
names=(plain ta-erase tv2 tv2-mix torchvision dali)
declare -A runs
for _ in $(seq "$rounds"); do
  runs[plain]+=" $(bench --pipeline resnet-train)"
  runs[ta-erase]+=" $(bench --pipeline resnet-train --auto-augment ta-wide --random-erase 0.1)"
  runs[tv2]+=" $(bench --pipeline tv2-train)"
  runs[tv2-mix]+=" $(bench --pipeline tv2-train --mixup 0.2 --cutmix 1.0)"
  runs[torchvision]+=" $(rate python bench/torchvision_loader.py "$corpus" tv2-train "$workers" "$epochs" 64)"
  runs[dali]+=" $(rate "$dali_venv/bin/python" bench/dali_loader.py "$corpus" tv2-train "$workers" "$epochs" 64)"
  for n in "${names[@]}"; do echo "$n:${runs[$n]}" >&2; done
done
declare -A med
for n in "${names[@]}"; do med[$n]=$(echo "${runs[$n]}" | median); done
echo "corpus $corpus, $workers workers/threads, $epochs epochs, batch 64, median of $rounds alternating rounds (images/s)"
echo
echo "| what | images/s | runs | / plain resnet-train | / torchvision tv2-train | / DALI tv2-train |"
echo "|---|---|---|---|---|---|"
label() {
  case "$1" in
    plain) echo "augloader resnet-train" ;;
    ta-erase) echo "augloader resnet-train --auto-augment ta-wide --random-erase 0.1" ;;
    tv2) echo "augloader tv2-train" ;;
    tv2-mix) echo "augloader tv2-train --mixup 0.2 --cutmix 1.0" ;;
    torchvision) echo "torchvision v2 + DataLoader, tv2-train" ;;
    dali) echo "DALI CPU, tv2-train (trivial_augment)" ;;
  esac
}
for n in "${names[@]}"; do
  python3 -c "
import sys
l, r, m, p, t, d = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
print(f'| {l} | {m:.0f} | {r.strip()} | {m / p:.2f} | {m / t:.2f} | {m / d:.2f} |')" \
    "$(label "$n")" "${runs[$n]}" "${med[$n]}" "${med[plain]}" "${med[torchvision]}" "${med[dali]}"
done
