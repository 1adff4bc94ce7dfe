"""Time a forward pass stage by stage, for any model: timestamps from hooks at stage edges.

`bench()` times a ResNet's stem, stages and head as separate modules fed their own
inputs, which needs a ResNet's layout. This timer works for any model: it stamps the
clock when the forward starts and ends, and when each stage's module call begins and
ends (a ResNet's layer1..layer4, a transformer's blocks). A stage's time runs from its
start to the next stage's start (the last one to its end); the stem is everything before
the first stage, the head everything after the last. On CUDA each stamp synchronises
first, so a stage is charged for the kernels it launched.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archviz.errors import ArchvizError

STEM, HEAD, WHOLE = "stem", "head", "model"
MIN_RUNS = 5


@dataclass(frozen=True)
class SegmentTimes:
    """Median seconds per stage and for the whole forward, over `runs` forwards."""

    device: str
    dtype: str
    parts: dict[str, float]
    total: float
    runs: int
    threads: int


def time_segments(
    model: nn.Module,
    args: tuple,
    kwargs: dict[str, Any],
    bounds: Sequence[str],
    *,
    device: str = "cpu",
    min_run_time: float = 1.0,
    min_runs: int = MIN_RUNS,
) -> SegmentTimes:
    """Median stage times of `model(*args, **kwargs)` (already on `device`, in eval mode).

    `bounds` are stage call ids ("layer1", "h.3", "blk:1" for a second call). The model
    is used as given: the caller copies and moves it.
    """
    clock = _Clock(bounds, device)
    handles = _hook(model, bounds, clock)
    try:
        with torch.inference_mode():
            model(*args, **kwargs)  # warm-up: allocator, oneDNN primitive caches
            runs: list[dict[str, float]] = []
            started = time.perf_counter()
            while len(runs) < min_runs or time.perf_counter() - started < min_run_time:
                clock.reset()
                model(*args, **kwargs)
                runs.append(clock.parts())
    finally:
        for handle in handles:
            handle.remove()
    names = list(runs[0])
    medians = {n: statistics.median(r[n] for r in runs) for n in names if n != "_total"}
    dtype = next((str(p.dtype).removeprefix("torch.") for p in model.parameters()), "float32")
    return SegmentTimes(
        device, dtype, medians, statistics.median(r["_total"] for r in runs), len(runs),
        torch.get_num_threads(),
    )  # fmt: skip


def prepared(model: nn.Module, device: str, dtype: torch.dtype) -> nn.Module:
    """An eval-mode copy on `device` in `dtype`: the user's model is never moved."""
    return copy.deepcopy(model).eval().to(device=device, dtype=dtype)


class _Clock:
    """Timestamps at the forward's edges and each stage's, for one forward at a time."""

    def __init__(self, bounds: Sequence[str], device: str) -> None:
        self.bounds = list(bounds)
        self.sync = torch.cuda.synchronize if device.startswith("cuda") else None
        self.reset()

    def reset(self) -> None:
        self.stamps: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def stamp(self, key: str) -> None:
        if self.sync is not None:
            self.sync()
        self.stamps[key] = time.perf_counter()

    def module(self, name: str, edge: str) -> None:
        """A hooked module's pre (edge "pre") or post ("post") call: stamp its call id."""
        if edge == "pre":
            self.calls[name] = self.calls.get(name, -1) + 1
        call = self.calls.get(name, 0)
        key = name if call == 0 else f"{name}:{call}"
        if key in self.bounds:
            self.stamp(f"{edge} {key}")

    def parts(self) -> dict[str, float]:
        s = self.stamps
        missing = [b for b in self.bounds if f"pre {b}" not in s or f"post {b}" not in s]
        if missing or "end" not in s:
            raise ArchvizError(
                f"stage timing: {', '.join(missing) or 'the model'} did not run as traced "
                "(the forward takes another path on this device)"
            )
        out = {"_total": s["end"] - s["start"]}
        if not self.bounds:
            return {WHOLE: out["_total"], **out}
        first, last = self.bounds[0], self.bounds[-1]
        out[STEM] = s[f"pre {first}"] - s["start"]
        for here, after in zip(self.bounds, self.bounds[1:], strict=False):
            out[here] = s[f"pre {after}"] - s[f"pre {here}"]
        out[last] = s[f"post {last}"] - s[f"pre {last}"]
        out[HEAD] = s["end"] - s[f"post {last}"]
        return out


def _hook(model: nn.Module, bounds: Sequence[str], clock: _Clock) -> list:
    handles = [
        model.register_forward_pre_hook(lambda *_: clock.stamp("start")),
        model.register_forward_hook(lambda *_: clock.stamp("end")),
    ]
    for name in dict.fromkeys(b.partition(":")[0] for b in bounds):
        module = model.get_submodule(name)
        handles.append(module.register_forward_pre_hook(_edge(clock, name, "pre")))
        handles.append(module.register_forward_hook(_edge(clock, name, "post")))
    return handles


def _edge(clock: _Clock, name: str, edge: str):
    def hook(*_: Any) -> None:
        clock.module(name, edge)

    return hook
