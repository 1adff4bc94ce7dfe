"""The report's hardware view of one model: a roofline table per stage and a "fits on" line.

Both are arithmetic on the trace (archviz.analysis.roofline, .memory) with the GPUs'
datasheet figures: nothing runs, and this machine's CPU is not calibrated here.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from tabulate import tabulate

from archviz.analysis.hardware import DATASHEETS, datasheet
from archviz.analysis.memory import inference_fits
from archviz.analysis.roofline import roofline
from archviz.records import Trace
from archviz.render.escape import md_escape

GPUS = tuple(DATASHEETS)


def hardware_context(trace: Trace) -> dict[str, Any]:
    """Display-ready roofline tables (HTML, Markdown) and the fits-on sentence."""
    dtype = trace.dtype if trace.dtype in ("float32", "bfloat16", "float16") else "float32"
    chosen = [datasheet(name, dtype) for name in GPUS]
    result = roofline(trace, chosen, dtype)
    rows = []
    for part in (*result.parts, result.total):
        row = {
            "Stage": part.name,
            "GFLOPs": f"{part.flops / 1e9:.3f}",
            "MB moved": f"{part.bytes / 1e6:.1f}",
        }
        row.update({f"{hw} ms": f"{part.seconds[hw] * 1e3:.3g}" for hw in GPUS})
        rows.append(row)
    fits = inference_fits(trace, chosen)
    line = ", ".join(f"{hw.label} ({hw.memory_bytes / 1e9:.0f} GB) up to batch {fits[hw.name]:,}"
                     for hw in chosen)  # fmt: skip
    return {
        "roofline_html": Markup(tabulate(rows, "keys", "html")),
        "roofline_md": Markup(
            tabulate([{**r, "Stage": md_escape(r["Stage"])} for r in rows], "keys", "github")
        ),
        "roofline_note": Markup(
            f"Predicted per stage at each GPU's datasheet roof, {dtype}: the sum "
            "over units of max(FLOPs / peak, bytes / bandwidth), bytes being each unit's inputs, "
            "outputs and parameters (unfused kernels). `archviz roofline` adds this CPU, measured."
        ),
        "fits": f"Fits on (inference, {dtype}, weights + activations alive at once, scaled "
        f"from batch of the trace): {line}.",
    }
