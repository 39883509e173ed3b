#!/usr/bin/env bash
# Reduced-size DCT decoding on large photos: `augloader bench` with default flags and with
# --exact-decode, one after the other per pipeline, on corpus photos enlarged 3x (about
# 1500 x 1125; made once with Pillow into ~/.cache/augloader/large-photos).
# usage: scripts/bench_large_photos.sh [CORPUS] [WORKERS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
corpus="${1:-../shared/bench/corpus}"
workers="${2:-2}"
epochs="${3:-2}"
large="$AUGLOADER_CACHE/large-photos"
if [ ! -f "$large/.complete" ]; then
  python - "$corpus" "$large" <<'PY'
import os, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
for cls in sorted(os.listdir(src)):
    files = sorted(os.listdir(os.path.join(src, cls)))[:20]
    os.makedirs(os.path.join(dst, cls), exist_ok=True)
    for f in files:
        im = Image.open(os.path.join(src, cls, f)).convert("RGB")
        im = im.resize((im.width * 3, im.height * 3), Image.BICUBIC)
        im.save(os.path.join(dst, cls, f), quality=90)
PY
  touch "$large/.complete"
fi
cargo build --release --quiet -p augloader-cli
echo "| pipeline | default img/s | --exact-decode img/s | speed-up |"
echo "|---|---|---|---|"
for p in resnet-train inception-train eval; do
  fast=$(./target/release/augloader bench --data "$large" --pipeline "$p" --workers "$workers" --epochs "$epochs" --json)
  exact=$(./target/release/augloader bench --data "$large" --pipeline "$p" --workers "$workers" --epochs "$epochs" --json --exact-decode)
  python - "$p" "$fast" "$exact" <<'PY'
import json, sys
p, f, e = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {p} | {f['images_per_sec']:.0f} | {e['images_per_sec']:.0f} | {f['images_per_sec'] / e['images_per_sec']:.2f}x |")
PY
done
