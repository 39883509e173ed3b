#!/usr/bin/env bash
# The runs behind the README's "What the notes teach, measured": the initial-loss check of every
# model family, every claim experiment (`augloader experiment all`), and a short `tune` on two datasets (the
# synthetic set and scikit-learn's bundled handwritten digits at 32 px, scripts/digits.py) whose
# recommended learning rate is compared with the finder's range. Writes into runs/experiments/.
# About 90 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet -p augloader-cli
bin=./target/release/augloader
out=runs/experiments
mkdir -p "$out"
small="$out/synth32"
[ -d "$small/train" ] || $bin synth --out "$small" --size 32 --classes 10 --train-per-class 100 --val-per-class 20 >/dev/null
other="$out/digits"
if [ ! -d "$other/train" ]; then
  python -c "import sklearn" 2>/dev/null || python -m pip install --quiet --disable-pip-version-check scikit-learn
  python scripts/digits.py "$other" >/dev/null
fi
echo "| model | data | initial loss | ln C | ratio |"
echo "|---|---|---|---|---|"
for data in default "$small" "$other"; do
  for m in resnet20 resnet56 plain20 resnet18 vgg11_bn vgg16_bn; do
    args=(--model "$m" --step 1 --quiet --workers 1 --out "$out/initial/$m")
    [ "$data" = default ] || args+=(--data "$data")
    $bin tune "${args[@]}" 2>/dev/null | python3 -c "import json,sys; v=json.load(sys.stdin); print(f\"| $m | $(basename "$data") | {v['initial_loss']:.3f} | {v['ln_classes']:.3f} | {v['initial_loss']/v['ln_classes']:.3f} |\")"
  done
done
# Every claim experiment, with its report (runs/experiments/claims/report.md), on the synthetic
# sets and on the digits (runs/experiments/claims-digits/report.md).
$bin experiment all --out "$out/claims" --quiet
$bin experiment all --data "$other" --out "$out/claims-digits" --quiet
for data in default "$other"; do
  args=(--quiet --max-batches 20 --coarse-epochs 1 --final-epochs 2 --out "$out/tune-$(basename "$data")")
  [ "$data" = default ] || args+=(--data "$data")
  $bin tune "${args[@]}" 2>/dev/null | tail -1
  python3 - "$out/tune-$(basename "$data")/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rng, lr = r["lr_range"], r["recommended"][0]
inside = rng[0] <= lr <= rng[1] if rng else None
print(json.dumps({"finder_range": rng, "steepest": r["lr_steepest"], "recommended_lr": lr, "inside": inside}))
PY
done
