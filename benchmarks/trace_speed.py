"""How fast and how lean is archviz.trace? resnet152 against torchinfo and the meta floor.

For batch 1 and 64 at 224x224, one fresh subprocess per tool (so peak memories never mix)
times: archviz.trace on `meta`; torchinfo.summary (a real forward on the CPU, its default
here); and a bare forward pass of the model on `meta` (the floor for any tracer that runs
the model). Times are medians of a few runs after one warm-up; peak memory is the growth
of the process's RSS over its size after building the model, sampled by a thread.

Bars (exit code 1 if one fails):
  batch 1:  archviz faster than torchinfo, and within 1.5x of the bare meta forward
            (archviz records shapes, FLOPs and the dataflow graph in that one pass)
  batch 64: archviz at least 20x faster than torchinfo, peak memory growth under 1/10 of its

    PYTHONPATH=. python benchmarks/trace_speed.py [--repeats 5]
    PYTHONPATH=. python benchmarks/trace_speed.py --paired 9   # archviz vs meta forward only

`--paired N` runs archviz and the bare meta forward alternately in one process, N pairs,
and judges the median of the paired ratios: on a loaded machine each pair sees the same
load, so the ratio is steadier than two medians taken minutes apart.
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import subprocess
import sys
import threading
import time

TOOLS = ("archviz", "torchinfo", "meta forward")
BATCHES = (1, 64)
COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


class _PeakRSS:
    """Samples the process's RSS every millisecond; `growth` is peak minus the start."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.001):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _measure(tool: str, batch: int, repeats: int) -> dict[str, float]:
    """In this process: build resnet152, run `tool` once to warm up, then `repeats` times."""
    import torch
    from torchvision import models as tvm

    torch.set_num_threads(torch.get_num_threads())
    model = tvm.get_model("resnet152", weights=None).eval()
    size = (batch, 3, 224, 224)
    if tool == "archviz":
        from archviz import trace

        def run() -> None:
            trace(model, size, device="meta")

    elif tool == "torchinfo":
        from torchinfo import summary

        def run() -> None:
            summary(model, input_size=size, device="cpu", verbose=0)

    else:
        model = model.to("meta")

        def run() -> None:
            with torch.no_grad():
                model(torch.empty(size, device="meta"))

    times = []
    with _PeakRSS() as memory:
        run()
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "peak_growth": memory.growth}


def _paired(pairs: int) -> int:
    """archviz.trace vs a bare meta forward, alternated in one process (batch 1)."""
    import torch
    from torchvision import models as tvm

    from archviz import trace

    model = tvm.get_model("resnet152", weights=None).eval()
    meta = tvm.get_model("resnet152", weights=None).eval().to("meta")
    size = (1, 3, 224, 224)

    def bare() -> None:
        with torch.no_grad():
            meta(torch.empty(size, device="meta"))

    def archviz() -> None:
        t = trace(model, size, device="meta")
        assert len(t.edges) > 0

    def timed(run) -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    archviz(), bare()  # warm-up
    rows = [(timed(archviz), timed(bare)) for _ in range(pairs)]
    a = statistics.median(r[0] for r in rows)
    b = statistics.median(r[1] for r in rows)
    paired = statistics.median(r[0] / r[1] for r in rows)
    print(f"resnet152, batch 1, meta, {pairs} alternating pairs")
    print(f"archviz.trace (records, FLOPs, graph) {a * 1e3:9.1f} ms")
    print(f"bare meta forward                     {b * 1e3:9.1f} ms")
    print(f"ratio of medians {a / b:.3f}; median paired ratio {paired:.3f} (bar <= 1.5)")
    return 0 if paired <= 1.5 else 1


def _in_subprocess(tool: str, batch: int, repeats: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", tool, str(batch), "--repeats", str(repeats)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / 2**20:8.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs at batch 1")
    parser.add_argument("--repeats-64", type=int, default=2, help="timed runs at batch 64")
    parser.add_argument("--paired", type=int, metavar="N", help="only archviz vs meta, N pairs")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paired:
        return _paired(args.paired)
    if args.child:
        print(json.dumps(_measure(args.child[0], int(args.child[1]), args.repeats)))
        return 0

    results = {}
    print(f"{'resnet152, 224x224':<28}{'median time':>14}{'peak RSS growth':>18}")
    for batch in BATCHES:
        repeats = args.repeats if batch == 1 else args.repeats_64
        for tool in TOOLS:
            result = _in_subprocess(tool, batch, repeats)
            results[tool, batch] = result
            label = f"batch {batch:<3} {tool}"
            print(f"{label:<28}{result['seconds'] * 1e3:11.1f} ms{_mib(result['peak_growth']):>18}")

    def ratio(a: str, b: str, batch: int, key: str = "seconds") -> float:
        return results[a, batch][key] / max(results[b, batch][key], 1e-9)

    bars = [
        ("batch 1: torchinfo / archviz time", ratio("torchinfo", "archviz", 1), ">", 1.0),
        ("batch 1: archviz / meta forward time", ratio("archviz", "meta forward", 1), "<=", 1.5),
        ("batch 64: torchinfo / archviz time", ratio("torchinfo", "archviz", 64), ">=", 20.0),
        (
            "batch 64: archviz / torchinfo peak growth",
            ratio("archviz", "torchinfo", 64, "peak_growth"),
            "<",
            0.1,
        ),
    ]
    failed = False
    print()
    for label, value, op, limit in bars:
        ok = COMPARE[op](value, limit)
        failed |= not ok
        print(f"{label:<44}{value:9.3f}   bar {op} {limit:<5g} {'ok' if ok else 'FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
