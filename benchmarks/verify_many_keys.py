"""Does verify stay within 3x of torch.load on a checkpoint with 1,000,000 keys?

A file of N one-element tensors (`k0.weight` ... `kN.weight`) is verified against
resnet18, the way `archviz verify FILE --against resnet18 --no-forward` does it (load
guard, load, pairing, strict-load check, text rendering). The peer is
`torch.load(FILE, weights_only=True)` on the same file in the same process, which verify
must do anyway; the ratio is verify's whole time over that. Before the fix the pairing
passes looked at every unpaired candidate module once per pass and per round: 218 s and
2.6 GB for 1,000,000 keys.

Bar (exit code 1 if it fails): verify / torch.load <= 3.

    PYTHONPATH=. python benchmarks/verify_many_keys.py            # 1,000,000 keys
    PYTHONPATH=. python benchmarks/verify_many_keys.py 200000     # a busy machine
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from archviz import verify
from archviz.render.verify import render_text

KEYS = 1_000_000
BAR = 3.0


def main(keys: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "many.pt"
        torch.save({f"k{i}.weight": torch.zeros(1) for i in range(keys)}, path)
        size = path.stat().st_size
        start = time.perf_counter()
        loaded = torch.load(path, weights_only=True)
        load_s = time.perf_counter() - start
        del loaded
        start = time.perf_counter()
        result = verify(path, "resnet18", forward_check=False)
        text = render_text(result)
        verify_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    ratio = verify_s / load_s
    print(f"{keys:,} keys, {size / 2**20:.0f} MiB file; verdict {result.verdict}")
    print(f"torch.load      {load_s:8.2f} s")
    print(f"archviz verify  {verify_s:8.2f} s  (report {len(text):,} characters)")
    print(f"ratio           {ratio:8.2f}  (bar {BAR:g}); peak RSS {peak:.2f} GiB")
    return 0 if ratio <= BAR else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else KEYS))
