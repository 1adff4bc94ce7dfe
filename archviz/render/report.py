"""The comparison report: one context dict, rendered to HTML and Markdown by jinja2.

The context is built here, once, from analysis results (Comparison, BenchResult); the
templates only lay it out. Everything is staged in a scratch folder and moved into place
at the end, so a failed run leaves the previous report intact.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from markupsafe import Markup

import archviz
from archviz.flops import CONVENTIONS
from archviz.records import Trace
from archviz.render.atomic import staging, write_text
from archviz.render.templates import environment
from archviz.render.units import chw, nbytes, shape, si

FORMATS = ("html", "md")
HTML_NAME, MD_NAME = "report.html", "README.md"  # README.md: GitHub shows it for the folder
LEVELS = ("stage", "block")


def anchor(name: str) -> str:
    """A stable, URL-safe id for a model's section."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def environment_rows(device: str) -> list[tuple[str, str]]:
    import torchvision

    return [
        ("archviz", archviz.__version__),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("Python", platform.python_version()),
        ("Platform", f"{platform.system()} {platform.machine()}"),
        ("Traced on", f"{device} (shapes, params and MACs are identical on every device)"),
    ]


def stage_table(trace: Trace) -> pd.DataFrame:
    """Stem, stages and head of one model: where parameters and work sit."""
    total = trace.totals.macs or 1
    rows = [
        {
            "Part": s.name,
            "Blocks": s.blocks or "",
            "Output (CxHxW)": chw(s.output_shape),
            "Params": f"{s.params:,}",
            "MACs": si(s.macs),
            "Share of MACs": f"{100 * s.macs / total:.1f}%",
        }
        for s in trace.stages()
    ]
    return pd.DataFrame(rows)


def layer_table(trace: Trace) -> pd.DataFrame:
    """Every module call below the model itself, indented by depth."""
    rows = [
        {
            "Module": ("  " * (r.depth - 1)) + (r.name or "(model)"),
            "Type": r.type,
            "Input": shape(r.input_shapes),
            "Output": shape(r.output_shapes),
            "Params": f"{r.params:,}" if r.params else "",
            "MACs (self)": si(r.macs) if r.macs else "",
            "MACs (total)": si(r.macs_total) if r.macs_total else "",
            "Elementwise": si(r.elementwise_flops) if r.elementwise_flops else "",
        }
        for r in trace.records
        if r.depth > 0
    ]
    return pd.DataFrame(rows)


def html_table(frame: pd.DataFrame) -> Markup:
    """pandas escapes cell text itself (escape=True); the markup is then safe to embed."""
    return Markup(frame.to_html(index=False, escape=True, border=0))


def md_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False)


def render_diagrams(traces: dict[str, Trace], fmt_svg: bool) -> dict[tuple[str, str], Any]:
    """Every model's diagrams at each level; SVGs are rendered by `dot` in parallel."""
    from archviz.render.diagram import diagram

    diagrams = {(n, lvl): diagram(t, level=lvl) for n, t in traces.items() for lvl in LEVELS}
    if not fmt_svg:
        return diagrams
    with ThreadPoolExecutor(max_workers=4) as pool:
        svgs = dict(zip(diagrams, pool.map(lambda d: d.svg(), diagrams.values()), strict=True))
    return svgs


def write_report(
    context: dict[str, Any],
    traces: dict[str, Trace],
    out: Path,
    formats: Sequence[str] = FORMATS,
    assets: dict[str, str] | None = None,
) -> list[Path]:
    """Render the templates and the diagram/plot files into `out`, atomically."""
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise archviz.ArchvizError(f"unknown report format(s) {sorted(unknown)}; use {FORMATS}")
    env = environment()
    written = []
    with staging(out) as scratch:
        diagrams = render_diagrams(traces, fmt_svg=True)
        for (name, level), svg in diagrams.items():
            context_model = next(m for m in context["models"] if m["name"] == name)
            context_model[f"{level}_svg"] = Markup(_strip_xml_prolog(svg))
            context_model[f"{level}_diagram"] = f"diagrams/{anchor(name)}-{level}.svg"
            write_text(scratch / "diagrams" / f"{anchor(name)}-{level}.svg", svg)
        for rel, text in (assets or {}).items():
            write_text(scratch / rel, text)
        if "html" in formats:
            html = env.get_template("report.html.j2").render(**context)
            written.append(write_text(scratch / HTML_NAME, html))
        if "md" in formats:
            md = env.get_template("report.md.j2").render(**context)
            written.append(write_text(scratch / MD_NAME, md))
    return [out / p.name for p in written]


def _strip_xml_prolog(svg: str) -> str:
    """Inline SVG must not carry `<?xml ...?>` or a DOCTYPE."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def conventions() -> list[str]:
    return [
        "MACs and FLOPs of convolutions, matrix multiplies and attention come from "
        "PyTorch's own formulas (torch.utils.flop_counter); one MAC is one multiply-add "
        "and FLOPs = 2 x MACs.",
        *(
            f"Elementwise, {op}: {rule} (own column, not in the totals)."
            for op, rule in CONVENTIONS.items()
        ),
        "Data movement (reshape, cat, copy) is free; any other op without a formula is "
        "listed in the trace, never silently counted as free.",
        "Parameters are unique tensors: a tied weight counts once.",
    ]


__all__ = ["FORMATS", "layer_table", "nbytes", "stage_table", "write_report"]
