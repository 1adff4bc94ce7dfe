"""A MemoryEstimate as a table or JSON: bytes become MiB/GiB here, and only here."""

from __future__ import annotations

import json

from tabulate import tabulate

from archviz.analysis.memory import MemoryEstimate
from archviz.render.units import nbytes, shape


def format_memory(result: MemoryEstimate, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2) + "\n"
    return memory_table(result)


def memory_table(result: MemoryEstimate, style: str = "simple") -> str:
    mode = f"training with {result.optimizer}" if result.train else "inference"
    rows = [
        ("parameters", result.params_bytes),
        ("buffers", result.buffers_bytes),
        ("gradients", result.grads_bytes),
        ("optimizer state", result.optimizer_bytes),
        ("activations saved for backward", result.activations_bytes),
        ("inference peak (graph tensors alive at once)", result.peak_bytes),
    ]
    if result.kv_cache_bytes_per_token:
        rows.append((f"KV cache ({nbytes(result.kv_cache_bytes_per_token)} per token)",
                     result.kv_cache_bytes))  # fmt: skip
    rows += [("total", result.total_bytes), ("each further sample", result.per_sample_bytes)]
    table = tabulate([(k, nbytes(v), f"{v:,}") for k, v in rows], ("", "size", "bytes"), style)
    parts = [
        f"{result.model}, input {shape(result.input_shapes)}, {result.dtype}, {mode}",
        table,
        fits_line(result),
        *result.notes,
    ]
    return "\n\n".join(parts) + "\n"


def fits_line(result: MemoryEstimate) -> str:
    """'fits on: h100 (80 GB) up to batch 926, ...'."""
    items = [
        f"{hw.name} ({hw.memory_bytes / 1e9:.0f} GB) "
        + (f"up to batch {result.fits[hw.name]:,}" if result.fits[hw.name] else "does not fit")
        for hw in result.hardware
    ]
    return "fits on: " + ", ".join(items) if items else "fits on: (no hardware chosen)"
