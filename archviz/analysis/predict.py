"""`roofline_of(model)`: trace, predict on each hardware, and optionally measure beside it.

The one public function the `roofline` command calls. Tracing is on meta (no compute);
`measure=True` then runs the model stage by stage on this CPU (and on CUDA where present)
with archviz.benchmark.segments, so measured sits beside predicted per stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from archviz.analysis.hardware import Hardware, check_dtype, hardware
from archviz.analysis.roofline import Roofline, roofline, with_measured
from archviz.models import resolve_model

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# A CUDA device's name -> its datasheet entry (the first match wins).
GPU_NAMES = (("H200", "h200"), ("H100", "h100"), ("A100", "a100"), ("L4", "l4"), ("T4", "t4"))


def roofline_of(
    model: str | nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    inputs: Any = None,
    dtype: str = "float32",
    hardware_names: str | Sequence[str] = ("cpu", "h100"),
    measure: bool = False,
    min_run_time: float = 1.0,
    calibration_size: int | None = None,
    recalibrate: bool = False,
    device: str = "meta",
    name: str | None = None,
) -> Roofline:
    """The roofline of `model` at `dtype` on each hardware; measured too with `measure`."""
    from archviz.tracing.trace import trace

    check_dtype(dtype)
    module = resolve_model(model)
    label = name or (model if isinstance(model, str) else type(model).__name__)
    traced = trace(
        module, input_size, inputs=inputs, device=device, dtype=TORCH_DTYPES[dtype], name=label
    )
    chosen = hardware(hardware_names, dtype, calibration_size, recalibrate=recalibrate)
    result = roofline(traced, chosen, dtype)
    if measure:
        result = _measure(result, module, input_size, inputs, chosen, min_run_time)
    return result


def cuda_hardware_name() -> str | None:
    """The datasheet entry of the CUDA device here, if any and if archviz has its sheet."""
    if not torch.cuda.is_available():
        return None
    device = torch.cuda.get_device_name()
    return next((key for text, key in GPU_NAMES if text in device), None)


def _measure(
    result: Roofline,
    module: nn.Module,
    input_size: Sequence[int] | None,
    inputs: Any,
    chosen: Sequence[Hardware],
    min_run_time: float,
) -> Roofline:
    from archviz.benchmark.segments import prepared, time_segments

    names = {hw.name for hw in chosen}
    targets = [("cpu", "cpu")] if "cpu" in names else []
    gpu = cuda_hardware_name()
    if gpu is not None and gpu in names:
        targets.append(("cuda", gpu))
    notes = list(result.notes)
    if not targets:
        notes.append("--measure: none of the chosen hardware is here (add cpu)")
    dtype = TORCH_DTYPES[result.dtype]
    for device, hw in targets:
        args, kwargs = _inputs(module, input_size, inputs, device, dtype)
        with _NoTf32():
            times = time_segments(
                prepared(module, device, dtype), args, kwargs, result.boundaries,
                device=device, min_run_time=min_run_time,
            )  # fmt: skip
        result = with_measured(result, hw, times.parts, times.total)
        notes.append(f"measured on {device} ({hw}): median of {times.runs} forwards, "
                     f"{times.threads} threads")  # fmt: skip
    return replace(result, notes=tuple(notes))


def _inputs(
    module: nn.Module, input_size: Any, inputs: Any, device: str, dtype: torch.dtype
) -> tuple[tuple, dict]:
    """The traced inputs, real this time: floating tensors in `dtype`, indices as they are."""
    from archviz.tracing.setup import make_inputs

    args, kwargs = make_inputs(module, input_size, inputs, torch.device(device), dtype)
    cast = _cast(dtype)
    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


def _cast(dtype: torch.dtype):
    def cast(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.to(dtype)
        if isinstance(value, (list, tuple)):
            return type(value)(cast(v) for v in value)
        return value

    return cast


class _NoTf32:
    """float32 on CUDA means FP32: cuDNN would otherwise run convolutions in TF32, past
    the FP32 roof the prediction uses."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved
