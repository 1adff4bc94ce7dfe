"""How long each CLI command takes to start, against importing torch and torchvision.

    python benchmarks/cli_startup.py [--repeats 7]

Runs every command as a fresh process (the way a user runs it), round-robin so a busy
machine slows all of them alike, and prints the median and fastest wall time of each
beside `python -c "import torch, torchvision"` measured in the same run. `--help`,
`--version` and `models` should not import torch at all; `trace resnet50` must, and
should cost little beyond that import (a meta trace allocates nothing).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARCHVIZ = shutil.which("archviz", path=str(Path(sys.executable).parent)) or shutil.which("archviz")
COMMANDS = {
    "archviz --help": ["--help"],
    "archviz --version": ["--version"],
    "archviz models": ["models"],
    "archviz trace resnet50": ["trace", "resnet50"],
}
BASELINE = 'python -c "import torch, torchvision"'


def _argv(args: list[str]) -> list[str]:
    return [ARCHVIZ, *args] if ARCHVIZ else [sys.executable, "-m", "archviz", *args]


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    runs: dict[str, list[str]] = {name: _argv(args) for name, args in COMMANDS.items()}
    runs[BASELINE] = [sys.executable, "-c", "import torch, torchvision"]
    times: dict[str, list[float]] = {name: [] for name in runs}
    for argv in runs.values():  # one untimed run each: page cache, .pyc files
        _time(argv)
    for _ in range(repeats):
        for name, argv in runs.items():
            times[name].append(_time(argv))
    base = statistics.median(times[BASELINE])
    print(f"{'command':<40} {'median s':>9} {'fastest s':>9} {'vs import':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<40} {median:>9.3f} {min(values):>9.3f} {median / base:>8.2f}x")
    print(f"{repeats} runs each, round-robin; via {runs['archviz --help'][0]}")


if __name__ == "__main__":
    main()
