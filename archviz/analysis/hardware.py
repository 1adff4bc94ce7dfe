"""The hardware a roofline is drawn for: vendor datasheet ceilings, and this machine's CPU.

GPU figures are the vendor's datasheet numbers for one named form factor, *dense* (NVIDIA
prints tensor-core figures "with sparsity"; dense is half of those). float32 is the plain
FP32 rate (CUDA cores), not TF32: PyTorch's matmuls do not use TF32 unless asked. Memory
is the datasheet's decimal GB. `cpu` has no datasheet: its ceilings are measured here by a
short calibration (archviz.benchmark.ceilings), cached per machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from archviz.errors import ArchvizError
from archviz.options import HARDWARE, HARDWARE_DTYPES

TERA, GIGA = 1e12, 1e9
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
DTYPE_NAMES = HARDWARE_DTYPES


@dataclass(frozen=True)
class Hardware:
    """One machine's ceilings at one dtype: the roof of its roofline."""

    name: str  # "h100": what --hardware takes
    label: str  # "NVIDIA H100 SXM"
    dtype: str
    peak_flops: float  # FLOP/s, dense
    bandwidth: float  # bytes/s to main memory
    memory_bytes: int
    source: str  # where the figures come from
    measured: bool = False  # True for ceilings measured on this machine
    # Where measured: the last-level cache and its bandwidth. Data that fits there may be
    # served from it on a repeated forward, so a lower bound charges it at this rate.
    cache_bytes: int = 0
    cache_bandwidth: float = 0.0

    @property
    def ridge(self) -> float:
        """FLOPs per byte where the two roofs meet: below it a kernel is memory-bound."""
        return self.peak_flops / self.bandwidth


@dataclass(frozen=True)
class _Sheet:
    label: str
    peaks: dict[str, float]  # dtype -> dense FLOP/s
    bandwidth: float
    memory_bytes: int
    source: str


# Vendor datasheets (tensor-core figures there are "with sparsity"; halved to dense here).
DATASHEETS: dict[str, _Sheet] = {
    "a100": _Sheet(
        "NVIDIA A100 SXM 80GB",
        {"float32": 19.5 * TERA, "bfloat16": 312 * TERA, "float16": 312 * TERA},
        2039 * GIGA,
        80 * 10**9,
        "NVIDIA A100 Tensor Core GPU datasheet, A100 80GB SXM column: FP32 19.5 TFLOPS, "
        "BF16/FP16 Tensor Core 312 TFLOPS dense (624 with sparsity), 2,039 GB/s HBM2e, 80 GB",
    ),
    "h100": _Sheet(
        "NVIDIA H100 SXM",
        {"float32": 67 * TERA, "bfloat16": 989.5 * TERA, "float16": 989.5 * TERA},
        3350 * GIGA,
        80 * 10**9,
        "NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column: FP32 67 TFLOPS, BF16/FP16 "
        "Tensor Core 1,979 TFLOPS with sparsity = 989.5 dense, 3.35 TB/s HBM3, 80 GB",
    ),
    "h200": _Sheet(
        "NVIDIA H200 SXM",
        {"float32": 67 * TERA, "bfloat16": 989.5 * TERA, "float16": 989.5 * TERA},
        4800 * GIGA,
        141 * 10**9,
        "NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column: FP32 67 TFLOPS, BF16/FP16 "
        "Tensor Core 1,979 TFLOPS with sparsity = 989.5 dense, 4.8 TB/s HBM3e, 141 GB",
    ),
    "l4": _Sheet(
        "NVIDIA L4 (PCIe)",
        {"float32": 30.3 * TERA, "bfloat16": 121 * TERA, "float16": 121 * TERA},
        300 * GIGA,
        24 * 10**9,
        "NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3 TFLOPS, BF16/FP16 Tensor Core "
        "242 TFLOPS with sparsity = 121 dense, 300 GB/s GDDR6, 24 GB",
    ),
    "t4": _Sheet(
        "NVIDIA T4 (PCIe)",
        # Turing has no bfloat16 units: PyTorch runs it at no more than the FP32 rate.
        {"float32": 8.1 * TERA, "bfloat16": 8.1 * TERA, "float16": 65 * TERA},
        320 * GIGA,
        16 * 10**9,
        "NVIDIA T4 Tensor Core GPU datasheet: FP32 8.1 TFLOPS, mixed-precision FP16 65 "
        "TFLOPS (dense), no bfloat16 units (FP32 rate used), 320 GB/s GDDR6, 16 GB",
    ),
}
HARDWARE_NAMES = HARDWARE
assert ("cpu", *DATASHEETS) == HARDWARE_NAMES, "options.HARDWARE lists the datasheets' names"


def datasheet(name: str, dtype: str = "float32") -> Hardware:
    """A GPU's ceilings at `dtype`, from its vendor datasheet."""
    sheet = DATASHEETS[name]
    return Hardware(
        name, sheet.label, dtype, sheet.peaks[dtype], sheet.bandwidth, sheet.memory_bytes,
        sheet.source,
    )  # fmt: skip


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPE_BYTES:
        raise ArchvizError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_NAMES)}")
    return dtype


def parse_hardware(text: str | Sequence[str]) -> list[str]:
    """'cpu,h100' -> ['cpu', 'h100'], each checked against HARDWARE_NAMES."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    unknown = [n for n in names if n not in HARDWARE_NAMES]
    if unknown or not names:
        raise ArchvizError(
            f"unknown hardware {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(HARDWARE_NAMES)} (comma-separated)"
        )
    return names


def hardware(
    names: str | Sequence[str],
    dtype: str = "float32",
    calibration_size: int | None = None,
    ceilings: bool = True,
    recalibrate: bool = False,
) -> list[Hardware]:
    """The chosen hardware at `dtype`; `cpu` is calibrated on first use (then cached).

    `ceilings=False` (memory questions) skips the calibration: cpu gets only its RAM.
    """
    check_dtype(dtype)
    chosen = []
    for name in parse_hardware(names):
        if name == "cpu" and not ceilings:
            chosen.append(cpu_memory(dtype))
        elif name == "cpu":
            chosen.append(measured_cpu(dtype, calibration_size, recalibrate))
        else:
            chosen.append(datasheet(name, dtype))
    return chosen


def measured_cpu(
    dtype: str = "float32", calibration_size: int | None = None, recalibrate: bool = False
) -> Hardware:
    """This machine's CPU at `dtype`: its ceilings measured (or read from the cache)."""
    from archviz.benchmark.ceilings import cpu_ceilings

    c = cpu_ceilings(dtype, size=calibration_size, recalibrate=recalibrate)
    label = f"this CPU ({c.cpu}, {c.threads} threads)"
    return Hardware(
        "cpu", label, dtype, c.peak_flops, c.bandwidth, c.memory_bytes, c.source, True,
        c.cache_bytes, max(c.cache_bandwidth, c.bandwidth) if c.cache_bytes else 0.0,
    )  # fmt: skip


def cpu_memory(dtype: str = "float32") -> Hardware:
    """This machine as a memory size only (its RAM): no calibration needed."""
    import psutil

    total = psutil.virtual_memory().total
    return Hardware("cpu", "this machine's RAM", dtype, math.nan, math.nan, total,
                    "total RAM reported by the operating system (psutil)")  # fmt: skip
