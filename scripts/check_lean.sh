#!/usr/bin/env bash
# What `cargo add augloader` gives a Rust training binary: a scratch crate outside the repository
# that depends on it with default features, built offline against the workspace's Cargo.lock
# with no libtorch in the environment, runs a 2-epoch loading example (scripts/lean/main.rs);
# its dependency tree holds none of the command line's crates and no libtorch.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
cp "$repo/scripts/lean/main.rs" "$scratch/src/main.rs"
cp "$repo/Cargo.lock" "$scratch/Cargo.lock"
cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "lean"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
augloader = { path = "$repo" }
image = { version = "0.25", default-features = false, features = ["jpeg"] }

[workspace]
TOML
# No libtorch: nothing of PyTorch on the paths, no variable that points at it.
env -u LIBTORCH -u LIBTORCH_USE_PYTORCH -u LIBTORCH_LIB -u LIBTORCH_INCLUDE -u LD_LIBRARY_PATH \
  PATH="$(tr ':' '\n' <<<"$PATH" | grep -v venv-torch | paste -sd:)" \
  CARGO_TARGET_DIR="$repo/target/lean" \
  bash -c '
    set -euo pipefail
    cd "$1"
    tree="$(cargo tree --offline -e normal --prefix none)"
    if grep -E "^(clap|anyhow|indicatif|plotters|nalgebra|imageproc|tch|torch-sys|safetensors|pyo3|augloader-train) " <<<"$tree"; then
      echo "check_lean: a default augloader dependency pulls in the crates above" >&2
      exit 1
    fi
    cargo run --offline --quiet -- "$1/data"
  ' _ "$scratch"
echo "lean check passed"
