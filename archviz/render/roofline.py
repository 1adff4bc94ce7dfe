"""A Roofline as text (table, CSV, JSON) and as a plot (matplotlib SVG/PNG).

Seconds become milliseconds, bytes MB and FLOP/s TFLOP/s here, and only here. The plot
draws each hardware's roofs (bandwidth x intensity, then the flat peak) on log-log axes,
and each unit of work as a point on them, sized by its predicted time; the slowest are
labelled. No model runs here.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, cast

from tabulate import tabulate

from archviz.analysis.roofline import Rollup, Roofline, Unit
from archviz.render.units import shape

PLOT_FORMATS = ("svg", "png", "pdf")
TOP = 15  # modules listed in the text table (JSON and CSV have all)
LABELLED = 5  # points labelled on the plot, per hardware
_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def format_roofline(result: Roofline, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(result)
    return roofline_table(result)


def roofline_table(result: Roofline, style: str = "simple") -> str:
    """Hardware, stages (measured beside predicted), blocks, the slowest modules, totals."""
    names = [hw.name for hw in result.hardware]
    parts = [
        f"{result.model}, input {shape(result.input_shapes)}, {result.dtype}",
        tabulate(hardware_rows(result), "keys", style),
        "Per stage: predicted = sum over its units of max(FLOPs/peak, bytes/bandwidth)",
        tabulate([_rollup_row(r, names) for r in (*result.parts, result.total)], "keys", style),
    ]
    if len(result.blocks) != len(result.parts):
        parts += [
            "Per block:",
            tabulate([_rollup_row(b, names) for b in result.blocks], "keys", style),
        ]
    slow = sorted(result.modules, key=lambda u: -u.seconds[names[0]])[:TOP]
    parts += [
        f"Slowest {len(slow)} of {len(result.modules)} units on {names[0]} (bound: c compute, m memory):",  # noqa: E501
        tabulate([_unit_row(u, names) for u in slow], "keys", style),
        *(f"Hardware {hw.name}: {hw.source}" for hw in result.hardware),
        *result.notes,
    ]
    return "\n\n".join(parts) + "\n"


def hardware_rows(result: Roofline) -> list[dict[str, Any]]:
    return [
        {
            "hardware": hw.name,
            "what": hw.label,
            "peak TFLOP/s": f"{hw.peak_flops / 1e12:.4g}",
            "bandwidth GB/s": f"{hw.bandwidth / 1e9:.4g}",
            "cache": f"{hw.cache_bytes / 2**20:.0f} MiB at {hw.cache_bandwidth / 1e9:.4g} GB/s"
            if hw.cache_bandwidth
            else "-",
            "ridge FLOP/B": f"{hw.ridge:.1f}",
            "memory GB": f"{hw.memory_bytes / 1e9:.1f}",
            "ceilings": "measured" if hw.measured else "datasheet",
        }
        for hw in result.hardware
    ]


def _rollup_row(rollup: Rollup, names: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "stage": rollup.name,
        "GFLOPs": f"{rollup.flops / 1e9:.3f}",
        "MB moved": f"{rollup.bytes / 1e6:.1f}",
        "FLOP/B": f"{rollup.flops / rollup.bytes:.1f}" if rollup.bytes else "-",
    }
    for hw in names:
        row[f"{hw} ms"] = _ms(rollup.seconds[hw])
        if hw in rollup.measured:
            measured = rollup.measured[hw]
            row[f"{hw} measured ms"] = _ms(measured)
            row[f"{hw} of roof"] = f"{rollup.seconds[hw] / measured:.0%}" if measured else "-"
    return row


def _unit_row(unit: Unit, names: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "module": unit.name,
        "type": unit.type,
        "GFLOPs": f"{unit.flops / 1e9:.3f}",
        "MB": f"{unit.bytes / 1e6:.2f}",
        "FLOP/B": f"{unit.intensity:.1f}" if unit.bytes else "-",
    }
    for hw in names:
        row[f"{hw} ms"] = f"{_ms(unit.seconds[hw])} {unit.bound[hw][0]}"
    return row


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.4g}"


def _csv(result: Roofline) -> str:
    """One row per unit: raw FLOPs, bytes and seconds."""
    import pandas as pd

    records = []
    for unit in result.modules:
        record: dict[str, Any] = {
            "name": unit.name, "type": unit.type, "part": unit.part, "block": unit.block,
            "flops": unit.flops, "bytes": unit.bytes,
            "intensity": unit.intensity if unit.bytes else None,
        }  # fmt: skip
        for hw in result.hardware:
            record[f"seconds_{hw.name}"] = unit.seconds[hw.name]
            record[f"bound_{hw.name}"] = unit.bound[hw.name]
        records.append(record)
    return cast(str, pd.DataFrame.from_records(records).to_csv(index=False))


def roofline_figure(result: Roofline):
    """The roofs of each hardware, and the units as points on them sized by their time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    plotted = [u for u in result.modules if u.flops and u.bytes]
    lo = min((u.intensity for u in plotted), default=0.1) / 2
    hi = max((u.intensity for u in plotted), default=1e3) * 2
    for i, hw in enumerate(result.hardware):
        colour = _COLOURS[i % len(_COLOURS)]
        xs = [lo, hw.ridge, max(hi, hw.ridge * 2)] if hw.ridge > lo else [lo, max(hi, lo * 2)]
        ax.plot(xs, [min(hw.peak_flops, hw.bandwidth * x) for x in xs], color=colour,
                label=f"{hw.name}: {hw.label}")  # fmt: skip
        if hw.cache_bandwidth > hw.bandwidth * 1.05:  # a second roof, where it is one
            knee = hw.peak_flops / hw.cache_bandwidth
            xs = [lo, knee, max(hi, knee * 2)] if knee > lo else [lo, max(hi, lo * 2)]
            ax.plot(xs, [min(hw.peak_flops, hw.cache_bandwidth * x) for x in xs], color=colour,
                    linestyle="--", linewidth=0.8,
                    label=f"{hw.name}: its {hw.cache_bytes / 2**20:.0f} MiB cache")  # fmt: skip
        _points(ax, plotted, hw.name, hw.peak_flops, hw.bandwidth, colour)
        _measured(ax, result.parts, hw.name, colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved, unfused)")
    ax.set_ylabel("FLOP/s at the roof")
    ax.set_title(f"Roofline: {result.model}, input {shape(result.input_shapes)}, {result.dtype}")
    ax.legend(frameon=False, loc="lower right", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def _points(ax, units: list[Unit], hw: str, peak: float, bandwidth: float, colour: str) -> None:
    longest = max((u.seconds[hw] for u in units), default=1.0) or 1.0
    xs = [u.intensity for u in units]
    ys = [u.flops / u.seconds[hw] for u in units]  # on its roof (between them, with a cache)
    sizes = [12 + 240 * u.seconds[hw] / longest for u in units]
    ax.scatter(xs, ys, s=sizes, color=colour, alpha=0.35, edgecolors="none")
    labelled: list[float] = []
    stacked = {True: 0, False: 0}  # labels so far on the flat roof / on the slope
    for unit in sorted(units, key=lambda u: -u.seconds[hw]):
        x = unit.intensity
        if len(labelled) == LABELLED or any(abs(math.log(x / seen)) < 0.35 for seen in labelled):
            continue
        flat = x > peak / bandwidth
        offset = (-60, -16 - 11 * stacked[flat]) if flat else (6, 6 + 11 * stacked[flat])
        stacked[flat] += 1
        ax.annotate(f"{unit.name} {_ms(unit.seconds[hw])} ms", (x, unit.flops / unit.seconds[hw]),
                    fontsize=6.5, xytext=offset, textcoords="offset points", color=colour,
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.4})  # fmt: skip
        labelled.append(x)


def _measured(ax, parts: tuple[Rollup, ...], hw: str, colour: str) -> bool:
    """Each measured stage as a cross at its intensity and its measured FLOP/s."""
    done = [p for p in parts if p.measured.get(hw) and p.flops and p.bytes]
    if done:
        ax.scatter([p.flops / p.bytes for p in done], [p.flops / p.measured[hw] for p in done],
                   marker="x", color=colour, s=28, linewidths=1.2,
                   label=f"{hw}: stages as measured")  # fmt: skip
    return bool(done)


def plot_bytes(result: Roofline, fmt: str = "svg") -> bytes:
    """The figure encoded as SVG (byte-stable: fixed hash salt, no date) or PNG."""
    import matplotlib.pyplot as plt

    with plt.rc_context(cast(Any, {"svg.hashsalt": "archviz", "font.size": 9})):
        fig = roofline_figure(result)
        try:
            buffer = io.BytesIO()
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(buffer, format=fmt, metadata=metadata, dpi=120)
            return buffer.getvalue()
        finally:
            plt.close(fig)


def save_roofline_plot(result: Roofline, path: str | Path) -> Path:
    """Write the plot to `path` (.svg, .png or .pdf, by its suffix), atomically."""
    from archviz.render.atomic import write_atomic

    target = Path(path)
    return write_atomic(target, plot_bytes(result, plot_format(target)))


def plot_format(path: Path) -> str:
    """The image format `path`'s suffix names; checked before any work is done."""
    from archviz.errors import ArchvizError

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise ArchvizError(
            f"the roofline plot is an image: name it .svg, .png or .pdf, not {path.name!r}"
        )
    return fmt
