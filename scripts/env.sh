# Sourced by the README commands: makes sure libtorch (PyTorch 2.13.0 wheels, as tch 0.26 expects)
# and the Python reference (torchvision) exist in a cache outside the checkout, then exports the
# variables that build and run against them. Idempotent: a second run downloads nothing.
AUGLOADER_CACHE="${AUGLOADER_CACHE:-$HOME/.cache/augloader}"
VENV="$AUGLOADER_CACHE/venv-torch-2.13.0"
if [ ! -f "$VENV/.complete" ]; then
  echo "augloader: installing PyTorch 2.13.0 + torchvision into $VENV (once, about 5 GB)" >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV"; then
    # Debian's python3 without python3-venv: fall back to virtualenv from pip.
    rm -rf "$VENV"
    python3 -m pip install --quiet --user virtualenv ||
      python3 -m pip install --quiet --user --break-system-packages virtualenv
    python3 -m virtualenv --quiet "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    torch==2.13.0 torchvision==0.28.0 numpy pillow safetensors
  touch "$VENV/.complete"
fi
# Added later than the rest: the Python package's test runner and build backend.
if [ ! -f "$VENV/.complete-python-2" ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check pytest "maturin>=1.5,<2" webdataset
  touch "$VENV/.complete-python-2"
fi
# Clients of the Python package that its tests run (CPU): PyTorch Lightning and accelerate.
if [ ! -f "$VENV/.complete-python-3" ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check lightning accelerate
  touch "$VENV/.complete-python-3"
fi
# The S3-compatible server that the remote-shard tests start on the loopback interface (moto's
# standalone server) and boto3, which uploads their shards.
if [ ! -f "$VENV/.complete-python-4" ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]" boto3
  touch "$VENV/.complete-python-4"
fi
# nasm, for the SIMD of the libjpeg-turbo that the Python wheel builds from source.
source "$(dirname "${BASH_SOURCE[0]}")/nasm.sh" || true
TORCH_DIR="$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK="${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
export PATH="$VENV/bin:$PATH"
export LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export AUGLOADER_PYTHON="$VENV/bin/python"
