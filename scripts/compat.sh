#!/usr/bin/env bash
# Run the test suite against one torch release, in a throwaway virtual environment:
#
#   scripts/compat.sh 2.14.1                       # the whole suite, as `make test` runs it
#   scripts/compat.sh 2.14.1 tests/test_attention.py -p no:xdist   # or any pytest arguments
#
# torch and torchvision are resolved together, so pip picks the torchvision built for that
# torch. TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu) installs both from
# PyTorch's own index. The venv lives in a temporary folder removed on exit; the project's
# .venv is not touched. Exit status: pytest's, or 2 for a bad version or a failed install.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: scripts/compat.sh TORCH_VERSION [PYTEST_ARGS...]   e.g. scripts/compat.sh 2.14.1" >&2
  exit 2
fi
VERSION=$1
shift
case "$VERSION" in
  *[!0-9.]* | "" | .* | *.) echo "compat: TORCH_VERSION is a release such as 2.14.1, got '$VERSION'" >&2; exit 2 ;;
esac
. scripts/pip_progress.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/archviz-compat-$VERSION.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV=$WORK/venv
echo "compat: torch $VERSION in a throwaway venv ($WORK); PyTorch's default build is several GB" >&2
"${PYTHON:-python3}" -m venv "$VENV"
INDEX=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then INDEX=(--index-url "$TORCH_INDEX_URL"); fi
pip_progress compat "$VENV/bin/python" -m pip install "torch==$VERSION" torchvision "${INDEX[@]}" || exit 2
pip_progress compat "$VENV/bin/python" -m pip install -e ".[dev,layouts]" || exit 2
# A CPU-only torch beside a CUDA-built torchvision imports, then lacks torchvision's ops.
if ! "$VENV/bin/python" - "$VERSION" <<'PY'
import sys

import torch
import torchvision
from torchvision.ops import nms

wanted = sys.argv[1]
found = torch.__version__.split("+")[0]
nms(torch.zeros(1, 4), torch.ones(1), 0.5)
print(f"compat: torch {torch.__version__}, torchvision {torchvision.__version__}", file=sys.stderr)
sys.exit(0 if found == wanted else f"compat: asked for torch {wanted}, pip installed {found}")
PY
then
  echo "compat: torch $VERSION and its torchvision do not work together here" >&2
  exit 2
fi
if [ $# -eq 0 ]; then set -- -n 2 -q; fi
"$VENV/bin/python" -m pytest "$@"
