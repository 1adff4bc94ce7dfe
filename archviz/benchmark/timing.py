"""Forward-pass benchmarks: latency, throughput and a per-stage breakdown on CPU and GPU.

Timing is `torch.utils.benchmark.Timer.blocked_autorange`, which warms up, picks how many
calls to time per block and synchronises CUDA. Its pitfall is that `Timer` runs on ONE
thread unless told otherwise, so every Timer here gets the thread count we mean, and the
rows record it. The API prints nothing; progress goes to an optional callback.
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from archviz.benchmark.environment import (
    DEVICES,
    check_devices,
    choose,
    dtype_note,
    machine_info,
    peak_memory,
)
from archviz.benchmark.records import BenchResult, BenchRow, MachineInfo, StageTiming
from archviz.benchmark.settings import (
    DEFAULT_MIN_RUN_TIME,
    check_batches,
    check_image_size,
    check_min_run_time,
    check_threads,
    from_input_sizes,
)
from archviz.errors import ArchvizError
from archviz.models.describe import layout
from archviz.models.registry import resolve_model
from archviz.records import Trace
from archviz.run import user_code
from archviz.tracing.memory_guard import check_traced_fits

__all__ = [
    "DEVICES",
    "DTYPES",
    "BenchResult",
    "BenchRow",
    "MachineInfo",
    "StageTiming",
    "bench",
    "load_or_run",
]

# One source of truth for the names the API accepts and the CLI offers.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
QUICK_MIN_RUN_TIME = 0.01  # `quick`: a rough figure to check a command line
NOT_AVAILABLE = "not available"
MIN_BLOCKS = 5  # fewest timed blocks behind a median and IQR
QUICK_MIN_BLOCKS = 3  # a median of three survives one slow call
WARM_UP_CALLS = 3  # untimed forwards at the timed thread count, before any timing

Progress = Callable[[int, int, str], None]  # (done, total, what was just measured)


def bench(
    models: str | nn.Module | Sequence[str | nn.Module],
    *,
    devices: str | Sequence[str] = DEVICES,
    batch_sizes: Sequence[int] = (1, 32),
    dtypes: str | Sequence[str] = ("float32",),
    channels_last: bool = False,
    threads: int | None = None,
    min_run_time: float = DEFAULT_MIN_RUN_TIME,
    image_size: int | tuple[int, int] = 224,
    input_sizes: Sequence[Sequence[int]] | None = None,
    stages: bool = True,
    quick: bool = False,
    progress: Progress | None = None,
) -> BenchResult:
    """Time each model's forward pass for every (device, batch, dtype), in eval mode.

    Models are registry names, import paths or modules (copied, never moved or cast).
    `input_sizes` (N x 3 x H x W shapes differing only in N) replaces `batch_sizes` and
    `image_size`. `quick` gives rough figures fast (a few calls, no stage breakdown), to
    check a command line before the long run. A requested device that is missing gives
    "not available" rows with the reason, unless no requested device is available: then
    it is an ArchvizError. `progress(done, total, what runs now)` is called before each row.
    """
    specs = [models] if isinstance(models, (str, nn.Module)) else list(models)
    if not specs:
        raise ArchvizError("no models to benchmark")
    if input_sizes is not None:
        batch_sizes, image_size = from_input_sizes(input_sizes)
    plan = _Plan(
        targets=tuple(check_devices(devices)),
        dtypes=tuple(_check_dtypes(dtypes)),
        batches=tuple(check_batches(batch_sizes)),
        threads=check_threads(threads),
        size=check_image_size(image_size),
        channels_last=channels_last,
        min_run_time=QUICK_MIN_RUN_TIME if quick else check_min_run_time(min_run_time),
        stages=stages and not quick,
        min_blocks=QUICK_MIN_BLOCKS if quick else MIN_BLOCKS,
    )
    live = sum(reason is None for _, reason in plan.targets)
    total = len(specs) * live * len(plan.dtypes) * len(plan.batches)
    counter = _Counter(total, progress)
    rows = [row for spec in specs for row in _bench_model(spec, plan, counter)]
    counter("")
    return BenchResult(
        tuple(_with_speedups(rows)), machine_info(), plan.size, plan.min_run_time, quick=quick
    )


@dataclass
class _Counter:
    """Counts measured rows and tells `progress` what runs next."""

    total: int
    progress: Progress | None
    done: int = 0

    def __call__(self, label: str, finished: bool = False) -> None:
        self.done += finished
        if self.progress is not None:
            self.progress(self.done, self.total, label)


def load_or_run(spec: str, models: str | Sequence[str | nn.Module], **kwargs) -> BenchResult:
    """What `report --bench SPEC` means: a saved JSON file, or devices to run now ("cpu,cuda")."""
    if spec.endswith(".json") or Path(spec).is_file():
        return BenchResult.load(spec)
    return bench(models, devices=spec, **kwargs)


@dataclass(frozen=True)
class _Plan:
    """The validated settings of one `bench()` call."""

    targets: tuple[tuple[str, str | None], ...]  # (device, reason it cannot run)
    dtypes: tuple[str, ...]
    batches: tuple[int, ...]
    threads: int
    size: tuple[int, int]
    channels_last: bool
    min_run_time: float
    stages: bool
    min_blocks: int = MIN_BLOCKS


def _bench_model(spec: str | nn.Module, plan: _Plan, counter: _Counter) -> Iterator[BenchRow]:
    """Rows for one model, lazily; `counter` hears what runs before each measurement."""
    name = _model_name(spec)
    counter(f"{name}: building and tracing")
    base = resolve_model(spec)
    traced = {b: _meta_trace(base, (b, 3, *plan.size)) for b in plan.batches}
    for (device, reason), dtype in itertools.product(plan.targets, plan.dtypes):
        template = BenchRow(
            model=name,
            device=device,
            batch=0,
            dtype=dtype,
            channels_last=plan.channels_last,
            threads=plan.threads,
            status="ok",
        )
        if reason is not None:
            for batch in plan.batches:
                yield replace(template, batch=batch, status=NOT_AVAILABLE, note=reason)
            continue
        for batch in plan.batches:  # the memory guard, from the meta traces: before allocating
            check_traced_fits(traced[batch], device, DTYPES[dtype])
        model = _prepare(base, device, dtype, plan.channels_last)
        for batch in plan.batches:
            what = f"{name} {device} {dtype} batch {batch}"
            counter(what)
            x = _input((batch, 3, *plan.size), device, dtype, plan.channels_last)
            flops = traced[batch].totals.flops
            with user_code("forward", where=functools.partial(str, f"timing {what}")):
                row = _measure_row(replace(template, batch=batch), model, x, flops, plan)
            yield row
            counter(f"{name} {device} {dtype} batch {batch}", finished=True)


def _measure_row(
    row: BenchRow, model: nn.Module, x: torch.Tensor, flops: int, plan: _Plan
) -> BenchRow:
    with torch.inference_mode():
        peak = peak_memory(model, x)  # doubles as the first, warm-up forward
        m = _time(model, x, plan.threads, plan.min_run_time, plan.min_blocks)
        parts, parts_note = (
            _time_stages(model, x, plan.threads, plan.min_run_time, plan.min_blocks)
            if plan.stages
            else ((), "stage breakdown not requested")
        )
    return replace(
        row,
        note=dtype_note(row.device, row.dtype),
        median_s=m.median_s,
        iqr_s=m.iqr_s,
        runs=m.runs,
        blocks=m.blocks,
        throughput=row.batch / m.median_s,
        flops=flops,
        gflops_per_s=flops / m.median_s / 1e9,
        peak_memory_bytes=peak,
        stages=parts,
        stages_note=parts_note,
    )


class _Timing(NamedTuple):
    median_s: float
    iqr_s: float
    runs: int
    blocks: int


def _time(
    fn: nn.Module, x: torch.Tensor, threads: int, min_run_time: float, min_blocks: int = MIN_BLOCKS
) -> _Timing:
    """Median/IQR of `fn(x)` over blocks; num_threads given, since Timer's default is 1.

    A forward slower than `min_run_time` would leave one block and a meaningless IQR,
    so such runs get extra blocks up to `min_blocks`. A few untimed calls come first: the
    first forwards at a thread count (after `peak_memory` handed the heap back to the OS)
    fault in memory and build kernels, and a quick run's median of three would be them.
    """
    # torch.utils.benchmark imports cpp_extension, which logs "No CUDA runtime is found" on
    # every CPU-only machine: noise for a CLI whose CUDA rows already say why it is absent.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark
    from torch.utils.benchmark.utils.common import Measurement

    timer = benchmark.Timer(stmt="fn(x)", globals={"fn": fn, "x": x}, num_threads=threads)
    timer.timeit(WARM_UP_CALLS)
    parts = [timer.blocked_autorange(min_run_time=min_run_time)]
    while sum(len(p.times) for p in parts) < min_blocks:
        parts.append(timer.timeit(parts[0].number_per_run))
    runs = sum(len(p.times) * p.number_per_run for p in parts)
    (merged,) = Measurement.merge(parts)
    return _Timing(merged.median, merged.iqr, runs, len(merged.times))


def _time_stages(
    model: nn.Module, x: torch.Tensor, threads: int, min_run_time: float, min_blocks: int
) -> tuple[tuple[StageTiming, ...], str]:
    """Time stem, each stage and head alone, each on the input the previous part made."""
    parts = _stage_modules(model)
    if parts is None:
        return (), "no stage breakdown: the model is not ResNet-like (stem, stages, head)"
    timings = []
    for part, module in parts:
        m = _time(module, x, threads, min_run_time, min_blocks)
        timings.append(StageTiming(part, tuple(x.shape), m.median_s, m.iqr_s, m.runs))
        x = module(x)
    return tuple(timings), ""


def _stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The model's own submodules grouped as stem, stages, head (shared, not copied)."""
    lay = layout(model)
    if lay is None:
        return None
    stem = nn.Sequential(*(model.get_submodule(n) for n in lay.stem))
    pool = [model.get_submodule(n) for n in lay.head if n != "fc"]
    head = nn.Sequential(*pool, nn.Flatten(1), model.get_submodule("fc"))
    stages = [(s, model.get_submodule(s)) for s in lay.stages]
    return [("stem", stem), *stages, ("head", head)]


def _meta_trace(model: nn.Module, input_size: tuple[int, ...]) -> Trace:
    """One forward traced on meta (no compute): its FLOPs (2 x MACs for conv/linear) and
    the sizes the memory guard checks."""
    from archviz.tracing.trace import trace

    return trace(model, input_size, device="meta")


def _forward_flops(model: nn.Module, input_size: tuple[int, ...]) -> int:
    """FLOPs of one forward (2 x MACs for conv/linear), traced on meta: no compute."""
    return _meta_trace(model, input_size).totals.flops


def _prepare(base: nn.Module, device: str, dtype: str, channels_last: bool) -> nn.Module:
    model = copy.deepcopy(base).eval().to(device=device, dtype=DTYPES[dtype])
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _input(shape: tuple[int, ...], device: str, dtype: str, channels_last: bool) -> torch.Tensor:
    x = torch.randn(shape, device=device, dtype=DTYPES[dtype])
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _with_speedups(rows: list[BenchRow]) -> list[BenchRow]:
    """Accelerator rows get CPU median / their median where the same config ran on CPU."""
    cpu = {
        (r.model, r.batch, r.dtype): r.median_s
        for r in rows
        if r.device == "cpu" and r.median_s is not None
    }
    return [
        replace(r, speedup_vs_cpu=cpu[(r.model, r.batch, r.dtype)] / r.median_s)
        if r.device != "cpu" and r.median_s and (r.model, r.batch, r.dtype) in cpu
        else r
        for r in rows
    ]


def _model_name(spec: str | nn.Module) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__


def _check_dtypes(dtypes: str | Sequence[str]) -> list[str]:
    return choose(dtypes, list(DTYPES), "dtype")
