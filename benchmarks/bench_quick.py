"""Is `bench --quick` close to a full run? resnet18 at batch 1 on the CPU, quick against
full, in back-to-back pairs (ABBA order, so a slow spell of machine load hits both).

`--quick` is a few calls per row, meant to check a command line; its figure must still be
near the real one (within 20%), which needs a warm-up before the first timed call: the
first forwards at a thread count fault in memory and build kernels.

    PYTHONPATH=. python benchmarks/bench_quick.py [--repeats 4] [--threads N] [--batch 1]

Prints every pair, the median of each side, and the median of the paired ratios
(quick / full). Exit code 1 when that ratio is outside 1 +/- 0.2.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from archviz.benchmark.timing import bench

TOLERANCE = 0.2


def _median_ms(quick: bool, batch: int, threads: int | None) -> float:
    result = bench("resnet18", devices="cpu", batch_sizes=(batch,), threads=threads, quick=quick)
    (row,) = result.rows
    assert row.median_s is not None
    return row.median_s * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=1)
    options = parser.parse_args()
    pairs = []
    for i in range(options.repeats):
        order = (True, False) if i % 2 == 0 else (False, True)  # ABBA
        ms = {quick: _median_ms(quick, options.batch, options.threads) for quick in order}
        pairs.append((ms[True], ms[False]))
        print(f"pair {i + 1}: quick {ms[True]:7.1f} ms   full {ms[False]:7.1f} ms", flush=True)
    quick = statistics.median(q for q, _ in pairs)
    full = statistics.median(f for _, f in pairs)
    ratio = statistics.median(q / f for q, f in pairs)
    print(f"median: quick {quick:.1f} ms, full {full:.1f} ms; paired ratio quick/full {ratio:.2f}")
    return 0 if abs(ratio - 1) <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
