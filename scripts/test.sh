#!/usr/bin/env bash
# The whole test suite: sets up libtorch and the torchvision reference if missing, then runs
# formatting and lint checks, the Rust tests with and without libtorch, and the replays against
# torchvision/PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export AUGLOADER_REQUIRE_PYTHON=1
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --quiet
cargo test --quiet --no-default-features --lib --tests
echo "all tests passed"
