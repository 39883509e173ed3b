#!/usr/bin/env bash
# Checks of the code's shape: the library without the command line builds none of the CLI's
# crates, prints nothing, has no function over 80 lines, and documents without warnings.
set -euo pipefail
cd "$(dirname "$0")/.."
tree="$(cargo tree -e normal --no-default-features --prefix none)"
if grep -E '^(clap|anyhow|indicatif|plotters) ' <<<"$tree"; then
  echo "the library without default features depends on a CLI crate (above)" >&2
  exit 1
fi
if grep -rnE '\b(e?print(ln)?!|dbg!)' src --include=*.rs | grep -v '^src/cli/'; then
  echo "printing outside src/cli/ (above): report through augloader::observe instead" >&2
  exit 1
fi
python3 scripts/long_functions.py 80
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --lib
echo "shape checks passed"
