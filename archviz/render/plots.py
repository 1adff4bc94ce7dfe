"""Comparison plots: what each variant costs, and where in the network it is spent.

Matplotlib with the Agg backend, no model runs here. SVGs are byte-stable (fixed hash
salt, no date) so a report regenerated from the same figures does not change.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from archviz.render.atomic import write_atomic

if TYPE_CHECKING:
    from archviz.analysis.compare import Comparison

PLOTS = ("params_macs", "stage_macs")
_RC: dict[str, Any] = {"svg.hashsalt": "archviz", "font.size": 9, "axes.spines.top": False}
_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def _params_macs(comparison: Comparison) -> Figure:
    """Two bar charts side by side: params (M) and MACs (G) per variant."""
    names = [row.name for row in comparison.rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    bars = left.bar(names, [r.params / 1e6 for r in comparison.rows], color=_COLOURS[0])
    left.bar_label(bars, fmt="%.1f")
    left.set_title("Parameters (millions)")
    macs = [r.macs / 1e9 for r in comparison.rows]
    bars = right.bar(names, macs, color=_COLOURS[1], label="traced (torchvision stride)")
    right.bar_label(bars, fmt="%.2f")
    paper = [r.paper_table1_gmacs for r in comparison.rows]
    if any(paper):
        xs = [i for i, v in enumerate(paper) if v]
        right.scatter(xs, [paper[i] for i in xs], color="black", zorder=3, label="paper Table 1")
        right.legend(loc="upper left", frameon=False)
    size = "x".join(map(str, comparison.input_size))  # any rank: images, token ids
    right.set_title(f"Multiply-adds (billions), input {size}")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=30)
    return fig


def _stage_macs(comparison: Comparison) -> Figure:
    """MACs per stage stacked per variant: where the depth's cost actually lands."""
    names = [row.name for row in comparison.rows]
    parts = list(dict.fromkeys(part for row in comparison.rows for part, _ in row.stage_macs))
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    bottom = [0.0] * len(names)
    for i, part in enumerate(parts):
        values = [dict(row.stage_macs).get(part, 0) / 1e9 for row in comparison.rows]
        ax.bar(names, values, bottom=bottom, label=part, color=_COLOURS[i % len(_COLOURS)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("GMACs")
    ax.set_title("Multiply-adds per stage")
    ax.legend(frameon=False, loc="upper left")
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def _figures(comparison: Comparison) -> dict[str, Figure]:
    figures = {"params_macs": _params_macs(comparison)}
    if any(row.stage_macs for row in comparison.rows):  # only ResNet-like models have stages
        figures["stage_macs"] = _stage_macs(comparison)
    return figures


def _encode(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    # no date, no matplotlib version: a figure's file changes only when the figure does
    metadata = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, metadata=metadata, dpi=120)
    return buffer.getvalue()


def plot_comparison(comparison: Comparison) -> dict[str, str]:
    """SVG text per plot name in PLOTS (stage_macs where a model has stages), deterministic."""
    with plt.rc_context(cast(Any, _RC)):
        figures = _figures(comparison)
        try:
            return {name: _encode(fig, "svg").decode() for name, fig in figures.items()}
        finally:
            for fig in figures.values():
                plt.close(fig)


def save_plots(comparison: Comparison, out_dir: str | Path) -> list[Path]:
    """Write each plot as .svg and .png into `out_dir`; return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with plt.rc_context(cast(Any, _RC)):
        figures = _figures(comparison)
        try:
            for name, fig in figures.items():
                for fmt in ("svg", "png"):
                    path = out / f"{name}.{fmt}"
                    write_atomic(path, _encode(fig, fmt))
                    paths.append(path)
        finally:
            for fig in figures.values():
                plt.close(fig)
    return paths
