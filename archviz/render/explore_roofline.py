"""The explorer's predicted-time overlay: each box's roofline time on each datasheet GPU.

Arithmetic on the trace (archviz.analysis.roofline with the GPUs' datasheet roofs): a
graph node's predicted seconds, summed into every box that encloses it, so a collapsed
group or a folded run is coloured by the time of all it holds.
"""

from __future__ import annotations

from typing import Any

from archviz.analysis.hardware import DATASHEETS, datasheet
from archviz.analysis.roofline import roofline
from archviz.records import Trace

GPUS = tuple(DATASHEETS)


def overlay_options() -> list[tuple[str, str]]:
    """(value, label) of the overlay selector's predicted-time entries."""
    return [(f"s_{name}", f"colour by predicted time, {DATASHEETS[name].label}") for name in GPUS]


def add_predicted(rows: list[dict[str, Any]], trace: Trace) -> None:
    """Give each box `s_<gpu>` (seconds): its own work, or the sum of what it holds."""
    dtype = trace.dtype if trace.dtype in ("float32", "bfloat16", "float16") else "float32"
    result = roofline(trace, [datasheet(name, dtype) for name in GPUS], dtype)
    seconds = {unit.name: unit.seconds for unit in result.modules}
    for row in rows:
        for name in GPUS:
            row.setdefault(f"s_{name}", 0.0)
    for row in rows:
        own = seconds.get(row["id"]) if row["k"] in ("module", "op") else None
        if own is None:
            continue
        at = row
        while True:
            for name in GPUS:
                at[f"s_{name}"] += own[name]
            if at["p"] < 0:
                break
            at = rows[at["p"]]
