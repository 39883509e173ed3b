#!/usr/bin/env bash
# The main job: sets up libtorch if missing, builds the release binary, runs `augloader ARGS`
# (by default `train` on the embedded synthetic dataset).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet -p augloader-cli
if [ $# -eq 0 ]; then set -- train; fi
exec ./target/release/augloader "$@"
