"""The settings of a benchmark run, checked before anything is built or timed.

Each check turns a bad value into an ArchvizError (exit 2) that names the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch

from archviz.errors import ArchvizError

DEFAULT_MIN_RUN_TIME = 0.5  # seconds of timed calls per measurement
MAX_MIN_RUN_TIME = 600.0  # beyond ten minutes per measurement is a typo, not a plan


def check_batches(batch_sizes: Sequence[int]) -> list[int]:
    batches = list(dict.fromkeys(batch_sizes))
    if not batches or not all(isinstance(b, int) and b > 0 for b in batches):
        raise ArchvizError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    return batches


def check_threads(threads: int | None) -> int:
    """At least 1 and at most the cores this process may use: OpenMP (libgomp) segfaults
    when asked for 100000 threads, and more threads than cores only adds noise."""
    if threads is None:
        return torch.get_num_threads()
    if threads < 1:
        raise ArchvizError(f"threads must be at least 1, got {threads}")
    cores = usable_cores()
    if threads > cores:
        raise ArchvizError(
            f"--threads {threads} is more than the {cores} cores this process may use; "
            f"give at most --threads {cores}"
        )
    return threads


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_min_run_time(seconds: float) -> float:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)):
        raise ArchvizError(f"min-run-time must be a finite number of seconds, got {seconds}")
    if not 0 < seconds <= MAX_MIN_RUN_TIME:
        raise ArchvizError(
            f"min-run-time is seconds of timing per measurement, above 0 and at most "
            f"{MAX_MIN_RUN_TIME:.0f}; got {seconds} (the default is {DEFAULT_MIN_RUN_TIME})"
        )
    return float(seconds)


def from_input_sizes(sizes: Sequence[Sequence[int]]) -> tuple[list[int], tuple[int, int]]:
    """N x 3 x H x W shapes that differ only in N -> (batch sizes, (H, W))."""
    shapes = [tuple(s) for s in sizes]
    if not shapes or any(len(s) != 4 or s[1] != 3 for s in shapes):
        raise ArchvizError(
            f"bench times images: every --input is N x 3 x H x W (e.g. 8x3x224x224), "
            f"got {', '.join('x'.join(map(str, s)) for s in shapes) or 'none'}"
        )
    if len({s[2:] for s in shapes}) > 1:
        raise ArchvizError(
            "bench's --input shapes may differ only in the batch size N, "
            "e.g. --input 1x3x224x224 --input 32x3x224x224"
        )
    return [s[0] for s in shapes], (shapes[0][2], shapes[0][3])


def check_image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ArchvizError(f"image size must be positive, got {size}")
    return int(height), int(width)
