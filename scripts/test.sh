#!/usr/bin/env bash
# The whole test suite, cheap tiers first. Without libtorch: formatting, lint (clippy, with the
# house rules: no function over 80 lines, no printing in the library), docs, the lean-dependency
# check (scripts/check_lean.sh) and the libtorch-free tests without libjpeg-turbo (the `image`
# crate decodes JPEGs). Then it sets up libtorch and the torchvision reference if missing and
# runs the Rust tests of the library and the CLI (the replays against torchvision/PyTorch
# included), the examples, the Python package and its tests (torchrun included), and the tests
# that exercise SIMD code again on the portable path.
set -euo pipefail
cd "$(dirname "$0")/.."
lint=(-D warnings -W clippy::too_many_lines)

# Tier 1: no libtorch. README's headline numbers against the docs' tables (scripts/headline.py). nasm, which the Python binding's bundled libjpeg-turbo requires.
source scripts/nasm.sh
cargo fmt --all -- --check
cargo clippy --quiet -p augloader -p augloader-cli --no-default-features --all-targets -- "${lint[@]}"
cargo clippy --quiet -p augloader-python -- "${lint[@]}"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p augloader --features remote
scripts/check_lean.sh
python3 scripts/headline.py
AUGLOADER_NO_LIBJPEG=1 cargo test --quiet -p augloader -p augloader-cli --no-default-features \
  --lib --bins --tests

# Tier 2: libtorch (PyTorch 2.13.0 wheels) and the Python reference, installed on first use: the
# trainer crate (augloader-train) and the command line with its libtorch commands.
source scripts/env.sh
export AUGLOADER_REQUIRE_PYTHON=1
cargo clippy --quiet -p augloader -p augloader-train -p augloader-cli --all-targets -- "${lint[@]}"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p augloader-train
cargo test --quiet -p augloader -p augloader-train -p augloader-cli
scripts/run_examples.sh
# The Python package as users get it: the manylinux_2_28 wheel (auditwheel checks its tag).
wheel="$(scripts/build_wheel.sh | tail -1)"
scripts/check_wheel.sh "$wheel"
python -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"
AUGLOADER_BIN="$PWD/target/debug/augloader" python -m pytest -q python/tests
# The SIMD kernels (collation, colour, flip) on their portable twins.
AUGLOADER_PORTABLE_SIMD=1 cargo test --quiet -p augloader --lib --test transforms --test loader
AUGLOADER_PORTABLE_SIMD=1 cargo test --quiet -p augloader-train --test tensors
AUGLOADER_PORTABLE_SIMD=1 cargo test --quiet -p augloader-cli --test torchvision
echo "all tests passed"
