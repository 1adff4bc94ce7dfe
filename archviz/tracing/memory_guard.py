"""Refuse a real-device trace that cannot fit in memory, before allocating anything.

`--device cpu --input 1,3,100000,100000` used to ask the allocator for 120 GB and die with
a traceback (or get the process killed). The input's size is known from its shape; the
activations are estimated by a meta trace first, which allocates nothing. The estimate is
a lower bound (the input, the largest single module output, and the weights if they must
be copied to the device), so a refusal is certain, never a guess; a run that passes may
still be tight.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archviz.errors import ArchvizError
from archviz.records import Trace

if TYPE_CHECKING:
    from archviz.records import Trace


def available_bytes(device: torch.device) -> int | None:
    """Free memory on `device`, or None where archviz cannot tell."""
    if device.type == "cpu":
        import psutil

        return int(psutil.virtual_memory().available)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def check_fits(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None,
    inputs: Any,
    device: torch.device,
    dtype: torch.dtype,
    meta_trace: Callable[[], Trace],
) -> None:
    """ArchvizError suggesting `--device meta` if the forward pass surely cannot fit.

    `meta_trace` runs the same forward on meta (the caller's tracer: the guard is used by
    the tracer and the benchmark, and imports neither).
    """
    if device.type == "meta":
        return
    free = available_bytes(device)
    if free is None:
        return
    element = torch.empty((), dtype=dtype).element_size()
    if inputs is None and input_size:
        input_bytes = _input_bytes(input_size, element)
        if input_bytes > free:
            _refuse(f"its input alone takes {_gib(input_bytes)}", free, device)
    need = _lower_bound(model, meta_trace, device)
    if need is not None and need > free:
        _refuse(
            f"it needs at least {_gib(need)} (input, largest activation, weights)", free, device
        )


def _input_bytes(input_size: Sequence[Any], element: int) -> int:
    sizes = input_size if isinstance(input_size[0], (tuple, list)) else [input_size]
    return sum(math.prod(int(d) for d in size) * element for size in sizes)


def _lower_bound(model: nn.Module, meta_trace: Callable[[], Trace], device) -> int | None:
    """Bytes the forward pass surely holds at once, from a meta trace; None if unknown."""
    try:
        result = meta_trace()
    except ArchvizError:
        return None  # the real run will say what is wrong (or run where meta cannot)
    moved = any(p.device != device for p in model.parameters())
    return _need(result, moved)


def _need(result: Trace, weights: bool, scale: float = 1.0) -> int:
    """Input + largest activation (+ weights) of a traced forward, scaled to a dtype."""
    biggest = max((r.output_bytes for r in result.records if r.depth > 0), default=0)
    extra = result.totals.param_bytes + result.totals.buffer_bytes if weights else 0
    return int((result.totals.input_bytes + biggest + extra) * scale)


def check_traced_fits(result: Trace, device: str | torch.device, dtype: torch.dtype) -> None:
    """For a run that copies the model to `device` (bench): refuse, before allocating, a
    forward whose meta trace (float32) shows it surely cannot fit."""
    target = torch.device(device)
    free = available_bytes(target)
    if free is None or target.type == "meta":
        return
    scale = torch.empty((), dtype=dtype).element_size() / 4
    need = _need(result, weights=True, scale=scale)
    if need > free:
        _refuse(
            f"it needs at least {_gib(need)} (input, largest activation, weights)",
            free,
            target,
            "use a smaller --input (a smaller batch N), or `archviz trace --device meta` "
            "for shapes and MACs without memory",
        )


def _refuse(why: str, free: int, device: torch.device, fix: str = "") -> None:
    raise ArchvizError(
        f"this input cannot fit on {device}: {why}, and {_gib(free)} is available. "
        + (
            fix
            or "Trace it with --device meta (shapes, parameters and MACs without memory), or "
            "use a smaller input"
        )
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
