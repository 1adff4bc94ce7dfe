"""How long the whole five-variant report takes, as a process, against importing torch.

The bar (issue: reports): `archviz report` (HTML + Markdown + all diagrams, no benchmarks)
takes at most 2.5x a bare `python -c "import torch, torchvision"` process, measured here
in the same run, alternating the two so machine noise hits both. Exits 1 if it fails.

    .venv/bin/python benchmarks/report_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR = 2.5


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    archviz = [python, "-m", "archviz", "report", "--out"]
    baseline, report = [], []
    with tempfile.TemporaryDirectory() as tmp:
        _seconds([python, "-c", "import torch, torchvision"])  # warm the file cache
        for i in range(args.repeats):
            baseline.append(_seconds([python, "-c", "import torch, torchvision"]))
            report.append(_seconds([*archviz, str(Path(tmp) / f"r{i}")]))
    base, rep = statistics.median(baseline), statistics.median(report)
    ratio = rep / base
    print(f"import torch, torchvision : median {base:.2f} s  runs {_fmt(baseline)}")
    print(f"archviz report (5 models) : median {rep:.2f} s  runs {_fmt(report)}")
    print(f"ratio                     : {ratio:.2f}x (bar: <= {BAR}x) -> "
          f"{'PASS' if ratio <= BAR else 'FAIL'}")  # fmt: skip
    return 0 if ratio <= BAR else 1


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
