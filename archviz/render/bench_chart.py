"""The benchmark chart for the report: latency per model and device, and where time goes.

Left: median latency per (model, batch, dtype), one bar per device, IQR as error bars.
Right: each stage's share of the stage sum, per device, so CPU and GPU profiles can be
compared even when their absolute times differ a hundredfold. SVG text, deterministic.
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from archviz.benchmark.records import BenchResult, BenchRow

DEVICE_COLOURS = {"cpu": "#4c72b0", "cuda": "#55a868"}
STAGE_COLOURS = ("#8c8c8c", "#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd")


def bench_chart(result: BenchResult) -> str:
    """SVG text of the two panels; rows that did not run are left out."""
    ok = [r for r in result.rows if r.ok]
    staged = [r for r in ok if r.stages]
    height = 1.6 + 0.5 * max(len(_groups(ok)), len(staged), 2)
    fig = Figure(figsize=(11, height), layout="constrained")
    left, right = fig.subplots(1, 2)
    _latency_panel(left, ok)
    _stage_panel(right, staged)
    if result.quick:  # a chart copied out of the report still says its figures are rough
        fig.suptitle(result.label, color="#c44e52")
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "archviz", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _groups(rows: list[BenchRow]) -> list[tuple[str, int, str]]:
    return list(dict.fromkeys((r.model, r.batch, r.dtype) for r in rows))


def _latency_panel(ax: Axes, rows: list[BenchRow]) -> None:
    groups = _groups(rows)
    devices = list(dict.fromkeys(r.device for r in rows))
    width = 0.8 / max(len(devices), 1)
    for i, device in enumerate(devices):
        by_group = {(r.model, r.batch, r.dtype): r for r in rows if r.device == device}
        ys = [g for g, key in enumerate(groups) if key in by_group]
        ms = [1e3 * (by_group[groups[y]].median_s or 0.0) for y in ys]
        iqr = [1e3 * (by_group[groups[y]].iqr_s or 0.0) / 2 for y in ys]
        ax.barh(
            [y + i * width for y in ys],
            ms,
            height=width,
            xerr=iqr,
            label=device,
            color=DEVICE_COLOURS.get(device, "#937860"),
        )
    ax.set_yticks([g + 0.4 - width / 2 for g in range(len(groups))])
    ax.set_yticklabels([f"{m}  b{b} {d}" for m, b, d in groups])
    ax.invert_yaxis()
    ax.set_xlabel("median latency per forward (ms), bars = IQR")
    ax.set_title("Latency per model and device")
    if groups and _spread(rows) > 30:
        ax.set_xscale("log")
    if devices:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, ncols=len(devices))


def _stage_panel(ax: Axes, rows: list[BenchRow]) -> None:
    ax.set_title("Where the time goes (share of the stages' sum)")
    if not rows:
        ax.text(0.5, 0.5, "no stage breakdown", ha="center", va="center")
        ax.set_axis_off()
        return
    parts = list(dict.fromkeys(s.part for r in rows for s in r.stages))
    for y, row in enumerate(rows):
        left, total = 0.0, row.stages_sum_s or 1.0
        for stage in row.stages:
            share = 100 * stage.median_s / total
            colour = STAGE_COLOURS[parts.index(stage.part) % len(STAGE_COLOURS)]
            ax.barh(y, share, left=left, color=colour, label=stage.part if y == 0 else None)
            left += share
        whole = f"sum {_ms(total)} ms / whole {_ms(row.median_s or 0.0)} ms"
        ax.text(101, y, whole, va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.model} {r.device} b{r.batch} {r.dtype}" for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 140)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("% of the stages' summed median latency")
    ax.legend(loc="upper center", bbox_to_anchor=(0.4, -0.22), fontsize=8, ncols=len(parts))


def _spread(rows: list[BenchRow]) -> float:
    times = [r.median_s for r in rows if r.median_s]
    return max(times) / min(times) if times else 1.0


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"
