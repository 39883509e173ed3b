#!/usr/bin/env bash
# The whole test suite: sets up libtorch and the torchvision reference if missing, then runs
# formatting and lint checks, the Rust tests, and the replays against torchvision/PyTorch; then
# the tests again without libtorch and without libjpeg-turbo (the `image` crate decodes JPEGs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export AUGLOADER_REQUIRE_PYTHON=1
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --quiet
AUGLOADER_NO_LIBJPEG=1 cargo test --quiet --no-default-features --lib --tests
echo "all tests passed"
