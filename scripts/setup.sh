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
  echo "setup: installing archviz and its dependencies into .venv (first run downloads PyTorch)..." >&2
  .venv/bin/python -m pip install -q --upgrade pip
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    # e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for a CPU-only build
    .venv/bin/python -m pip install -q torch torchvision --index-url "$TORCH_INDEX_URL"
  fi
  .venv/bin/python -m pip install -q -e ".[dev,layouts]"
  touch "$STAMP"
fi
