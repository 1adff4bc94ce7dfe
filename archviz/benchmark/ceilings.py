"""This machine's CPU ceilings, measured: a large GEMM at the dtype and a large copy.

A CPU has no datasheet line PyTorch reaches, so its roofline is drawn from what it does:
the best FLOP rate of an n x n matmul (oneDNN/MKL, with torch's thread count) and the
best bytes/s of copying a tensor far larger than the caches (read + write). Each figure is
the best of a few repeats: a ceiling is what the machine *can* do, and other processes
only ever slow a repeat down. Results are cached per machine (CPU model, cores, threads,
torch version) in ~/.cache/archviz (or $ARCHVIZ_CACHE_DIR), one file per machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import torch

from archviz.benchmark.environment import _cpu_model

DEFAULT_GEMM = 2048  # n of the n x n x n matmul: 17 GFLOP, well past the caches
DEFAULT_COPY_MB = 256  # per tensor: far beyond any L3
REPEATS = 8
CACHE_REPEATS = 50
SIZE_ENV = "ARCHVIZ_CALIBRATION_SIZE"  # a smaller GEMM n (and copy in MB = n // 8) for tests
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Ceilings:
    """What the calibration measured, with the settings that produced it."""

    dtype: str
    peak_flops: float
    bandwidth: float
    memory_bytes: int
    gemm_n: int
    copy_bytes: int
    threads: int
    cpu: str
    torch_version: str
    cache_bytes: int = 0  # the last-level cache; 0 where the OS does not say
    cache_bandwidth: float = 0.0  # bytes/s copying a buffer that stays in that cache

    @property
    def source(self) -> str:
        return (
            f"measured on this machine ({self.cpu}, {self.threads} threads, torch "
            f"{self.torch_version}): best of {REPEATS} runs of a {self.gemm_n}^2 {self.dtype} "
            "matmul, linear and a 3x3 convolution, "
            f"best of {REPEATS} copies of {self.copy_bytes / 2**20:.0f} MiB; cache "
            f"{self.cache_bytes / 2**20:.0f} MiB at {self.cache_bandwidth / 1e9:.1f} GB/s "
            f"(best of {CACHE_REPEATS} copies of a quarter of it)"
        )


def cache_dir() -> Path:
    return Path(os.environ.get("ARCHVIZ_CACHE_DIR") or Path.home() / ".cache" / "archviz")


def cache_path() -> Path:
    """One file per machine: the key is what changes a CPU's ceilings."""
    key = f"{_cpu_model()}|{psutil.cpu_count()}|{torch.get_num_threads()}|{torch.__version__}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_dir() / f"cpu-ceilings-{digest}.json"


def cpu_ceilings(
    dtype: str = "float32", size: int | None = None, recalibrate: bool = False
) -> Ceilings:
    """This CPU's ceilings at `dtype`, from the cache or measured now (a few seconds).

    Measured on a busy machine they come out low, and a prediction built on them is then
    no lower bound: `recalibrate` measures again (on a quiet machine) and replaces them.
    """
    n = size or int(os.environ.get(SIZE_ENV) or DEFAULT_GEMM)
    copy_bytes = (DEFAULT_COPY_MB if n == DEFAULT_GEMM else max(1, n // 8)) * 2**20
    path = cache_path()
    cached = _read(path)
    key = f"{dtype}-{n}"
    if key in cached and "cache_bytes" in cached[key] and not recalibrate:
        return Ceilings(**cached[key])
    cache = last_level_cache()
    found = Ceilings(
        dtype=dtype,
        peak_flops=gemm_rate(n, _DTYPES[dtype]),
        bandwidth=copy_rate(copy_bytes),
        memory_bytes=psutil.virtual_memory().total,
        gemm_n=n,
        copy_bytes=copy_bytes,
        threads=torch.get_num_threads(),
        cpu=_cpu_model(),
        torch_version=torch.__version__,
        cache_bytes=cache,
        cache_bandwidth=copy_rate(cache // 4, CACHE_REPEATS) if cache else 0.0,
    )
    cached[key] = asdict(found)
    _write(path, cached)
    return found


def gemm_rate(n: int, dtype: torch.dtype, repeats: int = REPEATS) -> float:
    """Best FLOP/s of the kernels convolutions and linear layers run, at about 2 n^3 FLOPs.

    An n x n @ n x n matmul and a linear layer of the same size, and a 3x3 convolution of
    n/8 channels on a 28x28 map (n^2 / 64 x 9 x 784 MACs): oneDNN's fastest path differs by
    dtype (in bfloat16 its linear and convolution beat `torch.mm` by 1.5-3x here), and a
    ceiling is the best any of them reaches.
    """
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    c = max(8, n // 8)
    x = torch.randn(1, c, 28, 28).to(dtype)
    w = torch.randn(c, c, 3, 3).to(dtype)
    kernels = (
        (2 * n**3, lambda: torch.mm(a, b)),
        (2 * n**3, lambda: torch.nn.functional.linear(a, b)),
        (2 * c * c * 9 * 26 * 26, lambda: torch.nn.functional.conv2d(x, w)),
    )
    with torch.inference_mode():
        rates = []
        for flops, run in kernels:
            run()
            rates.append(flops / _best(run, repeats))
    return max(rates)


def copy_rate(nbytes: int, repeats: int = REPEATS) -> float:
    """Best bytes/s of copying `nbytes` into another buffer: it reads and writes each byte."""
    src = torch.ones(nbytes, dtype=torch.uint8)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * nbytes / _best(lambda: dst.copy_(src), repeats)


def last_level_cache() -> int:
    """Bytes of the largest CPU cache Linux reports (sysfs); 0 where it says nothing."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            kind = (entry / "type").read_text().strip()
            text = (entry / "size").read_text().strip().upper()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        if kind != "Instruction" and text[:-1].isdigit() and text[-1] in units:
            sizes.append(int(text[:-1]) * units[text[-1]])
    return max(sizes, default=0)


def _best(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict) -> None:
    """Best effort: a read-only home still gets its figures, just measured every time."""
    from archviz.render.atomic import write_atomic

    with contextlib.suppress(Exception):
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
