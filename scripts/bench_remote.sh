#!/usr/bin/env bash
# Throughput of shards streamed over HTTP with a bandwidth limit, against the same shards read
# locally, and the bytes downloaded per epoch with the cache at 10%, 50% and 100% of the data.
#
#   scripts/bench_remote.sh SHARD_DIR PATTERN [RATE_BYTES_PER_S] [WORKERS]
#
# SHARD_DIR holds the shards (as `augloader shard` writes them); PATTERN names them there
# ('train-{000000..000009}.tar'). The server is tests/servers/shard_http.py on loopback with
# --rate; each remote row starts from an empty cache and runs one untimed epoch, then two timed
# ones (the cold row: one timed epoch from an empty cache). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$1"; pattern="$2"; rate="${3:-50000000}"; workers="${4:-2}"
bin=target/release/augloader
total=$(cat "$dir"/*.tar | wc -c)
tmp="$(mktemp -d)"
python3 tests/servers/shard_http.py "$dir" --rate "$rate" > "$tmp/port" &
server=$!
trap 'kill $server; rm -rf "$tmp"' EXIT
while ! grep -q PORT "$tmp/port"; do sleep 0.1; done
url="http://127.0.0.1:$(awk '{print $2}' "$tmp/port")/$pattern"
run() { # name data warmup epochs [flags...]
  local name="$1" data="$2" warm="$3" epochs="$4"; shift 4
  "$bin" bench --pipeline resnet-train --workers "$workers" --batch 64 --shuffle-window 2 \
    --warmup "$warm" --epochs "$epochs" --json --data "$data" "$@" |
    python3 -c "import json,sys; v=json.loads(sys.stdin.read().splitlines()[-1]); \
print(f'| $name | {v[\"images_per_sec\"]:.0f} | {v[\"fetched_bytes\"]/$epochs/1e6:.1f} |')"
}
echo "shards: $total bytes; HTTP at $rate bytes/s; $workers workers, batch 64, --shuffle-window 2"
echo
echo "| data | images/s | MB downloaded per epoch |"
echo "|---|---|---|"
run "local shards" "$dir/$pattern" 1 2
run "HTTP, empty cache (one cold epoch)" "$url" 0 1 --cache-dir "$tmp/c0" --cache-size "$total"
for pct in 100 50 20 10; do
  size=$((total * pct / 100))
  run "HTTP, cache $pct% ($((size / 1000000)) MB)" "$url" 1 2 --cache-dir "$tmp/c$pct" --cache-size "$size" ||
    echo "| HTTP, cache $pct% | (refused: a shard does not fit) | |"
done
