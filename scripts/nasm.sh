# Sourced: puts nasm on PATH (for the SIMD of the libjpeg-turbo that the Python wheel builds from
# source). Debian's package is unpacked into the cache once (no root needed) when the machine has
# none. Returns non-zero when nasm cannot be had.
AUGLOADER_CACHE="${AUGLOADER_CACHE:-$HOME/.cache/augloader}"
NASM_DIR="$AUGLOADER_CACHE/tools/nasm"
if ! command -v nasm >/dev/null 2>&1 && [ ! -x "$NASM_DIR/usr/bin/nasm" ]; then
  (tmp="$(mktemp -d)" && cd "$tmp" && apt-get download nasm >/dev/null 2>&1 &&
    mkdir -p "$NASM_DIR" && dpkg -x nasm_*.deb "$NASM_DIR" && rm -rf "$tmp") ||
    echo "augloader: could not fetch nasm (apt-get download nasm)" >&2
fi
if [ -x "$NASM_DIR/usr/bin/nasm" ]; then export PATH="$NASM_DIR/usr/bin:$PATH"; fi
command -v nasm >/dev/null 2>&1
