"""Benchmark results as text: a table, Markdown, CSV or JSON.

Raw seconds and bytes in the records become milliseconds and MB here, and only here.
"""

from __future__ import annotations

from tabulate import tabulate

from archviz.benchmark.records import (
    NOISY_IQR,
    STAGE_SUM_TOLERANCE,
    BenchResult,
    BenchRow,
    MachineInfo,
)
from archviz.options import FORMATS as _FORMATS

FORMATS = _FORMATS["bench"]
WARNING_MARK = "(!)"


def format_bench(result: BenchResult, fmt: str = "table") -> str:
    """The whole result in one format; table and Markdown add the stage breakdown."""
    if fmt == "json":
        return result.to_json()
    if fmt == "csv":
        return result.to_dataframe().to_csv(index=False)
    style = "github" if fmt == "markdown" else "simple"
    parts = [machine_line(result.machine), tabulate(summary_rows(result.rows), "keys", style)]
    if result.quick:
        parts.insert(0, result.label)
    stages = [r for r in result.rows if r.stages]
    if stages:
        parts.append("Per-stage median latency (ms), each stage timed alone on its real input:")
        parts.append(tabulate(stage_rows(stages), "keys", style))
    parts += sorted({f"{r.model}: {r.stages_note}" for r in result.rows if r.stages_note})
    if any(r.warnings for r in result.rows):
        parts.append(spread_advice())
    return "\n\n".join(parts) + "\n"


def spread_advice() -> str:
    """What a flagged row means and what to do about it (the README says the same)."""
    return (
        f"{WARNING_MARK} These figures moved too much to trust as they are (IQR above "
        f"{NOISY_IQR:.0%} of the median, or stages summing more than {STAGE_SUM_TOLERANCE:.0%} "
        "off the whole model). Re-run on a quiet machine (nothing else busy), fix the thread "
        "count with --threads (at most the physical cores), and on CPU fix the allocator: "
        "MALLOC_MMAP_THRESHOLD_=134217728 MALLOC_TRIM_THRESHOLD_=1073741824, or jemalloc/"
        "tcmalloc via LD_PRELOAD."
    )


def machine_line(machine: MachineInfo) -> str:
    threads = f"{machine.cpu_cores} cores, {machine.cpu_capability}"
    gpu = machine.gpu_name or "none"
    cuda = f", CUDA {machine.cuda_version}" if machine.cuda_version else ""
    return (
        f"CPU: {machine.cpu_model} ({threads}, torch threads {machine.torch_threads})"
        f" · GPU: {gpu} · torch {machine.torch_version}{cuda}"
    )


def summary_rows(rows: tuple[BenchRow, ...]) -> list[dict[str, object]]:
    return [
        {
            "model": r.model,
            "device": r.device,
            "batch": r.batch,
            "dtype": _dtype_label(r),
            "median ms": _num(r.median_s, 1e3) if r.ok else r.status,
            "IQR ms": _num(r.iqr_s, 1e3),
            "runs": r.runs or "",
            "images/s": _num(r.throughput),
            "GFLOP/s": _num(r.gflops_per_s),
            "peak MB": _num(r.peak_memory_bytes, 1e-6),
            "threads": r.threads,
            "vs CPU": f"{r.speedup_vs_cpu:.2f}x" if r.speedup_vs_cpu else "",
            "note": "; ".join(
                [*(f"{WARNING_MARK} {w}" for w in r.warnings), *filter(None, [r.note])]
            ),
        }
        for r in rows
    ]


def stage_rows(rows: list[BenchRow]) -> list[dict[str, object]]:
    table = []
    for r in rows:
        record: dict[str, object] = {"model": r.model, "device": r.device, "batch": r.batch}
        record["dtype"] = _dtype_label(r)
        record.update({s.part: _num(s.median_s, 1e3) for s in r.stages})
        record["sum of stages"] = _num(r.stages_sum_s, 1e3)
        record["whole model"] = _num(r.median_s, 1e3)
        table.append(record)
    return table


def _dtype_label(row: BenchRow) -> str:
    """Channels-last runs read "float32 CL" in every table, so rows match across them."""
    return row.dtype + (" CL" if row.channels_last else "")


def _num(value: float | int | None, scale: float = 1.0) -> str:
    """Three significant figures without exponents: 0.0123, 1.23, 12.3, 1234."""
    if value is None:
        return ""
    v = value * scale
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
