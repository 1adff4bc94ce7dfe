"""Does archviz's median agree with a plain torch.utils.benchmark.Timer? (resnet18, CPU)

For each batch size, archviz.bench() and a hand-written Timer measure the same forward
(same weights, input shape and thread count) in the same process. Two things on a small
machine move a CPU latency by 10-20% regardless of who measures it, so the script keeps
them out of the comparison rather than averaging over them:

- drift in machine load: the pairs alternate in ABBA order (archviz first, then Timer
  first, ...), so a slow spell hits both alike;
- the process's allocator history: glibc returns large freed blocks to the OS or keeps
  them depending on what was allocated before, and a forward whose ~25 MB activations
  page-fault on every call is ~15% slower. Each batch size therefore runs in its own
  fresh process (one batch size measured after another showed this as a bias towards
  whichever side happened to inherit the faster heap).

It prints every pair, then the median of each side and their ratio, the median of the
paired ratios, and the spread: run-to-run (max-min over median of the repeats) and
within-run (IQR / median). The verdict uses the paired ratios: each compares two
measurements taken back to back, whereas the two sides' medians may come from pairs
taken under different load (on a 2-core VM the same forward drifted by 40% in a minute).

    PYTHONPATH=. python benchmarks/bench_fidelity.py [--batch 1,8] [--repeats 8] [--threads N]

Exit code 1 when the median paired ratio is outside 1 +/- tolerance (default 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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


def measure_one_batch(batch: int, repeats: int, threads: int, min_run_time: float) -> dict:
    """Runs in a fresh process: `repeats` (archviz, Timer) pairs in ABBA order."""
    model = get_model("resnet18").eval()
    pairs = []
    for i in range(repeats):
        archviz_first = i % 4 in (0, 3)
        out: dict[str, tuple[float, float, int]] = {}
        for side in ("archviz", "timer") if archviz_first else ("timer", "archviz"):
            if side == "archviz":
                (row,) = bench(
                    model,
                    devices="cpu",
                    batch_sizes=(batch,),
                    threads=threads,
                    min_run_time=min_run_time,
                    stages=False,
                ).rows
                assert row.median_s is not None and row.iqr_s is not None
                out[side] = (row.median_s, row.iqr_s, row.runs or 0)
            else:
                m = plain_timer(model, batch, threads, min_run_time)
                out[side] = (m.median, m.iqr, len(m.times) * m.number_per_run)
        pairs.append({"first": "archviz" if archviz_first else "timer", **out})
    return {"batch": batch, "pairs": pairs}


def summarise(result: dict) -> float:
    batch, pairs = result["batch"], result["pairs"]
    for i, p in enumerate(pairs, 1):
        (a, _, a_runs), (t, _, t_runs) = p["archviz"], p["timer"]
        print(
            f"  batch {batch} pair {i} ({p['first']} first): archviz {1e3 * a:8.2f} ms "
            f"({a_runs} runs)   Timer {1e3 * t:8.2f} ms ({t_runs} runs)   ratio {a / t:.3f}"
        )
    ours = [p["archviz"][0] for p in pairs]
    theirs = [p["timer"][0] for p in pairs]
    a, t = statistics.median(ours), statistics.median(theirs)
    paired = statistics.median(o / p for o, p in zip(ours, theirs, strict=True))
    iqr_ours = statistics.median(p["archviz"][1] / p["archviz"][0] for p in pairs)
    iqr_theirs = statistics.median(p["timer"][1] / p["timer"][0] for p in pairs)
    print(
        f"batch {batch}: archviz median {1e3 * a:.2f} ms, Timer median {1e3 * t:.2f} ms, "
        f"ratio {a / t:.3f} (median of paired ratios {paired:.3f})\n"
        f"  run-to-run spread (max-min)/median: archviz {_spread(ours):.1%}, "
        f"Timer {_spread(theirs):.1%}\n"
        f"  within-run IQR/median (median of repeats): archviz {iqr_ours:.1%}, "
        f"Timer {iqr_theirs:.1%}"
    )
    return paired


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=8, help="pairs per batch size")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the per-batch child
    args = parser.parse_args()
    if args.one is not None:
        result = measure_one_batch(args.one, args.repeats, args.threads, args.min_run_time)
        print(json.dumps(result))
        return 0
    print(
        f"resnet18, CPU, 224x224, float32, threads {args.threads}, "
        f"min_run_time {args.min_run_time}s, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    ok = True
    for batch in (int(b) for b in args.batch.split(",")):
        child = [sys.executable, __file__, "--one", str(batch)]
        child += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
        child += ["--min-run-time", str(args.min_run_time)]
        done = subprocess.run(child, check=True, capture_output=True, text=True)
        paired = summarise(json.loads(done.stdout.strip().splitlines()[-1]))
        ok &= abs(paired - 1) <= args.tolerance
    print(
        "PASS" if ok else "FAIL",
        f"(median paired ratio within {args.tolerance:.0%}; "
        f"load average now {os.getloadavg()[0]:.1f})",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
