#!/usr/bin/env bash
# One idempotent set-up for every README command: system tools where we may
# install them, then a virtual environment with archviz and its dev tools.
# Second runs are quick: the venv is only re-installed when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_BROWSER=${1:-}

apt_install() {  # install Debian packages when we are root (or have passwordless sudo)
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else return 1; fi
  fi
  command -v apt-get >/dev/null || return 1
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v dot >/dev/null; then
  echo "setup: installing Graphviz (dot)..." >&2
  apt_install graphviz || echo "setup: could not install Graphviz; diagrams will be written as .dot source. Install it with: sudo apt-get install graphviz (or brew install graphviz)" >&2
fi
if [ "$WITH_BROWSER" = "--with-browser" ] && ! command -v chromium >/dev/null; then
  echo "setup: installing headless Chromium for the HTML report test..." >&2
  apt_install chromium fonts-dejavu-core || echo "setup: no Chromium; the browser test will be skipped" >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.archviz-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  . scripts/pip_progress.sh
  if [ ! -f "$STAMP" ]; then
    echo "setup: first run: installing archviz, PyTorch, torchvision and the dev tools into .venv." >&2
    echo "setup: PyTorch's default build brings its CUDA libraries, about 5 GB to download:" >&2
    echo "setup: roughly 1-2 minutes at 500 Mbit/s, 15 minutes at 50 Mbit/s (a CPU-only build is" >&2
    echo "setup: much smaller: see 'A CPU-only PyTorch' in the README). Progress follows." >&2
  else
    echo "setup: pyproject.toml changed: updating .venv..." >&2
  fi
  pip_progress setup .venv/bin/python -m pip install --upgrade pip
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    # e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for a CPU-only build
    pip_progress setup .venv/bin/python -m pip install torch torchvision --index-url "$TORCH_INDEX_URL"
  fi
  pip_progress setup .venv/bin/python -m pip install -e ".[dev,layouts]"
  touch "$STAMP"
  echo "setup: done." >&2
fi
