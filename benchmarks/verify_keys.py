"""Is verify linear in the length of a checkpoint's keys? A hostile file's 100 kB key.

A crafted key `"a." * n + "weight"` sits beside resnet18's real keys. The whole
`archviz verify FILE --against resnet18 --no-forward` (load, prefix vote, pairing, strict
load, text rendering) is timed at three key lengths, against a peer measured in the same
run: the same checkpoint with a short key, i.e. verify's fixed cost. Linear work adds
at most ~10x more for a 10x longer key; the old prefix vote, which sliced the key at every
dot, was quadratic (53 s at 100 kB).

Bar (exit code 1 if it fails): the whole verify with the 100 kB key takes under 1 s.

    PYTHONPATH=. python benchmarks/verify_keys.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from archviz import verify
from archviz.models import get_model
from archviz.render.verify import render_text

LENGTHS = (10_000, 100_000, 1_000_000)  # characters in the hostile key, roughly
BAR_S = 1.0


def _time(path: Path, repeats: int = 3) -> float:
    render_text(verify(path, "resnet18", forward_check=False))  # warm-up: imports, caches
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_text(verify(path, "resnet18", forward_check=False))
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> int:
    weights = get_model("resnet18").state_dict()
    folder = Path(tempfile.mkdtemp(prefix="archviz-keys-"))
    results = {}
    for length in (8, *LENGTHS):
        path = folder / f"key{length}.pt"
        key = "a." * ((length - 6) // 2) + "weight"  # 8 -> "a.weight", the fixed cost
        torch.save({**weights, key: torch.zeros(1)}, path)
        results[len(key)] = _time(path)
    base = results[8]
    print(f"{'key length':>12} {'verify s':>9} {'above fixed s':>14}")
    for length, seconds in results.items():
        print(f"{length:>12,} {seconds:>9.3f} {seconds - base:>14.3f}")
    at_100k = results[sorted(results)[2]]
    ok = at_100k < BAR_S
    verdict = "pass" if ok else "FAIL"
    print(f"bar: verify with a 100 kB key under {BAR_S} s: {at_100k:.3f} s, {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
