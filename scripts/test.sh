#!/usr/bin/env bash
# The whole test suite: sets up libtorch and the torchvision reference if missing, then runs
# formatting, lint and shape checks, the Rust tests (building the examples), the replays against
# torchvision/PyTorch, the examples themselves, the Python package and its tests (torchrun
# included); the suite again on the portable (non-SIMD) path;
# and the tests without libtorch and without libjpeg-turbo (the `image` crate decodes JPEGs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export AUGLOADER_REQUIRE_PYTHON=1
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy -p augloader-python --quiet -- -D warnings
scripts/check_shape.sh
cargo test --quiet
scripts/run_examples.sh
# The Python package, as `pip install .` builds it (maturin is in the environment already).
python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .
AUGLOADER_BIN="$PWD/target/debug/augloader" python -m pytest -q python/tests
AUGLOADER_PORTABLE_SIMD=1 cargo test --quiet
AUGLOADER_NO_LIBJPEG=1 cargo test --quiet --no-default-features --features cli --lib --bins --tests
echo "all tests passed"
