#!/usr/bin/env bash
# Side-by-side throughput: `augloader bench` and the torchvision anchor
# (bench/torchvision_loader.py: transforms v2 + DataLoader), one after the other per pipeline,
# on the same corpus and worker count. Prints a Markdown table.
# usage: scripts/bench_vs_torchvision.sh [CORPUS] [WORKERS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-3}"
anchor=bench/torchvision_loader.py
cargo build --release --quiet -p augloader-cli
echo "| pipeline | augloader img/s | torchvision img/s | ratio | augloader peak RSS MiB |"
echo "|---|---|---|---|---|"
for p in decode resnet-train inception-train eval; do
  ours=$(./target/release/augloader bench --data "$corpus" --pipeline "$p" --workers "$workers" --epochs "$epochs" --json)
  tv=$(python "$anchor" "$corpus" "$p" "$workers" "$epochs")
  python - "$p" "$ours" "$tv" <<'PY'
import json, sys
p, o, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {p} | {o['images_per_sec']:.0f} | {t['images_per_sec']:.0f} | {o['images_per_sec'] / t['images_per_sec']:.2f}x | {o['peak_rss_mb']:.0f} |")
PY
done
