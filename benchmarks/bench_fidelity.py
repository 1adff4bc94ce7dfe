"""Does archviz's median agree with a plain torch.utils.benchmark.Timer? (resnet18, CPU)

For each batch size, archviz.bench() and a hand-written Timer measure the same forward
(same model weights, same input shape, same thread count) in the same process,
interleaved so that drift in machine load hits both alike. It prints each repeat, then
the median of the repeats' medians for both, their ratio (and the median of the
adjacent pairs' ratios, less sensitive to load drift), and the spread: run-to-run
(max-min over median of the repeats) and within-run (IQR / median).

    PYTHONPATH=. python benchmarks/bench_fidelity.py [--batch 1,8] [--repeats 5] [--threads N]

Exit code 1 when a ratio is outside 1 +/- tolerance (default 10%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch
from torch.utils import benchmark

from archviz import bench, get_model


def plain_timer(model: torch.nn.Module, batch: int, threads: int, min_run_time: float):
    """What a user would write by hand: eval, inference_mode, Timer with explicit threads."""
    x = torch.randn(batch, 3, 224, 224)
    timer = benchmark.Timer("model(x)", globals={"model": model, "x": x}, num_threads=threads)
    with torch.inference_mode():
        model(x)  # warm-up, as archviz's first (memory) forward
        return timer.blocked_autorange(min_run_time=min_run_time)


def compare(batch: int, repeats: int, threads: int, min_run_time: float) -> float:
    model = get_model("resnet18").eval()
    ours, theirs, iqr_ours, iqr_theirs = [], [], [], []
    for i in range(repeats):
        (row,) = bench(
            model,
            devices="cpu",
            batch_sizes=(batch,),
            threads=threads,
            min_run_time=min_run_time,
            stages=False,
        ).rows
        assert row.median_s is not None and row.iqr_s is not None
        m = plain_timer(model, batch, threads, min_run_time)
        ours.append(row.median_s)
        theirs.append(m.median)
        iqr_ours.append(row.iqr_s / row.median_s)
        iqr_theirs.append(m.iqr / m.median)
        print(
            f"  batch {batch} repeat {i + 1}: archviz {1e3 * row.median_s:8.2f} ms "
            f"({row.runs} runs)   Timer {1e3 * m.median:8.2f} ms "
            f"({len(m.times) * m.number_per_run} runs)   ratio {row.median_s / m.median:.3f}"
        )
    a, t = statistics.median(ours), statistics.median(theirs)
    paired = statistics.median(o / p for o, p in zip(ours, theirs, strict=True))
    print(
        f"batch {batch}: archviz median {1e3 * a:.2f} ms, Timer median {1e3 * t:.2f} ms, "
        f"ratio {a / t:.3f} (median of paired ratios {paired:.3f})\n"
        f"  run-to-run spread (max-min)/median: archviz {_spread(ours):.1%}, "
        f"Timer {_spread(theirs):.1%}\n"
        f"  within-run IQR/median (median of repeats): archviz "
        f"{statistics.median(iqr_ours):.1%}, Timer {statistics.median(iqr_theirs):.1%}"
    )
    return a / t


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--tolerance", type=float, default=0.10)
    args = parser.parse_args()
    print(
        f"resnet18, CPU, 224x224, float32, threads {args.threads}, "
        f"min_run_time {args.min_run_time}s, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    ok = True
    for batch in (int(b) for b in args.batch.split(",")):
        ratio = compare(batch, args.repeats, args.threads, args.min_run_time)
        ok &= abs(ratio - 1) <= args.tolerance
    print(
        "PASS" if ok else "FAIL",
        f"(tolerance {args.tolerance:.0%}; load average now {os.getloadavg()[0]:.1f})",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
