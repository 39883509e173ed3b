#!/usr/bin/env bash
# Builds the Python wheel that installs on clusters: one abi3 wheel (CPython 3.9 and later) for
# manylinux_2_28 (glibc 2.28 and later: RHEL/Rocky/Alma 8, Ubuntu 20.04, Debian 11 and newer),
# with libjpeg-turbo and its SIMD linked in, so it needs no shared library beyond glibc.
#
#   scripts/build_wheel.sh            # -> target/wheels/augloader-*-manylinux_2_28_x86_64.whl
#
# Zig (the `ziglang` package) links against glibc 2.28's symbols, which the machine's newer glibc
# would not give; nasm (fetched as scripts/nasm.sh does) assembles libjpeg-turbo's SIMD. The
# tools live in a venv under ~/.cache/augloader; `auditwheel show` checks the result.
set -euo pipefail
cd "$(dirname "$0")/.."
AUGLOADER_CACHE="${AUGLOADER_CACHE:-$HOME/.cache/augloader}"
TOOLS="$AUGLOADER_CACHE/venv-wheel"
PLATFORM="${AUGLOADER_WHEEL_PLATFORM:-manylinux_2_28}"
if [ ! -f "$TOOLS/.complete" ]; then
  echo "augloader: installing maturin, ziglang and auditwheel into $TOOLS (once)" >&2
  rm -rf "$TOOLS"
  python3 -m venv "$TOOLS" || python3 -m virtualenv --quiet "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" "ziglang<0.14" auditwheel
  touch "$TOOLS/.complete"
fi
source scripts/nasm.sh || {
  echo "augloader: nasm is needed for libjpeg-turbo's SIMD (apt-get install nasm)" >&2
  exit 1
}
export PATH="$TOOLS/bin:$PATH"
# A target folder of its own: the zig-linked build must not mix with the host build's objects.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/wheel}"
rm -f target/wheels/augloader-*"$PLATFORM"*.whl
maturin build --release --zig --compatibility "$PLATFORM" --interpreter python3 \
  --out target/wheels
wheel="$(ls -t target/wheels/augloader-*"$PLATFORM"*.whl | head -1)"
shown="$(auditwheel show "$wheel")"
echo "$shown" >&2
# auditwheel names the most compatible tag the wheel qualifies for; it must be PLATFORM or older.
grep -Eq "\"(manylinux_2_(1[0-9]|2[0-8])|manylinux2014)_x86_64\"" <<<"$shown" || {
  echo "augloader: $wheel does not qualify for $PLATFORM" >&2
  exit 1
}
echo "$wheel"
