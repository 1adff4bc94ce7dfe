"""The comparison report: one context dict, rendered to HTML and Markdown by jinja2.

The context is built here, once, from analysis results (Comparison, BenchResult); the
templates only lay it out. Everything is rendered in memory first, then written into a
scratch folder that replaces the report folder in one atomic step (render/report_folder),
so a failed or killed run leaves the previous report exactly as it was.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from markupsafe import Markup
from tabulate import tabulate

import archviz
from archviz.errors import ArchvizError
from archviz.records import Trace
from archviz.render.compare import comparison_table
from archviz.render.escape import md_escape
from archviz.render.explain import STAGE_COLUMNS, TERM_COLUMNS, stage_table, term_table
from archviz.render.explore import engine_element, explore
from archviz.render.report.folder import check_report_folder, write_folder
from archviz.render.report.hardware import hardware_context
from archviz.render.templates import environment, markdown_environment
from archviz.render.units import shape, si
from archviz.tracing.flops import CONVENTIONS

if TYPE_CHECKING:
    from archviz.analysis.compare import Comparison
    from archviz.analysis.explain import DepthExplanation
    from archviz.benchmark.records import BenchResult

FORMATS = ("html", "md")
HTML_NAME, MD_NAME = "report.html", "README.md"  # README.md: GitHub shows it for the folder
DEPTH_INTRO = (
    "A ResNet's name counts its weighted layers on the main path: the stem "
    "convolution, every convolution inside the residual blocks, and the classifier. "
    "The layers list counts blocks per stage, so the depth is stem + convs per block "
    "x blocks + classifier, derived here from each traced model."
)
DEPTH_INTRO_ANY = (
    "A network's depth is the number of weighted layers (convolutions, linear layers) on "
    "the longest input-to-output path of its traced dataflow graph; shortcuts and "
    "branches beside that path are not counted. For ResNets this is the name's number: "
    "stem + convs per block x blocks + classifier."
)
# The versions a page was made with: a rerun that changes nothing else keeps the old page
# (render/report/folder.py), so another torch patch release does not rewrite a committed one.
VOLATILE = re.compile(r"<!-- archviz:environment -->.*?<!-- /archviz:environment -->", re.S)
ENVIRONMENT_NOTE = (
    "The versions that produced these figures. A later run whose figures are all the same "
    "keeps this page as it was, versions included."
)
ALT = {"stage": "stages", "block": "blocks"}  # the diagrams' alt text in Markdown
PLOT_TITLES = {"params_macs": "Parameters and MACs", "stage_macs": "MACs per stage"}


def anchor(name: str) -> str:
    """A stable, URL-safe id for a model's section."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def write_report(
    comparison: Comparison,
    out: str | Path,
    formats: Sequence[str] = FORMATS,
    bench: BenchResult | None = None,
) -> list[Path]:
    """Render the report, its diagrams and plots into `out`, atomically; returns the pages."""
    formats = tuple("md" if f == "markdown" else f for f in formats)  # the CLI's name for md
    if not formats or set(formats) - set(FORMATS):
        raise ArchvizError(f"unknown report format in {formats}; choose from {FORMATS}")
    from archviz.render.plots import plot_comparison

    check_report_folder(out)
    out = Path(out)
    svgs = _diagram_svgs(comparison)
    plots = plot_comparison(comparison)
    context = build_context(comparison, svgs, plots, bench)
    pages = {"html": HTML_NAME, "md": MD_NAME}
    files: dict[str, str | bytes] = {
        f"diagrams/{anchor(name)}-{level}.svg": svg for (name, level), svg in svgs.items()
    }
    files.update({f"plots/{key}.svg": svg for key, svg in plots.items()})
    if bench is not None:
        from archviz.render.bench_chart import bench_chart

        files["plots/bench.svg"] = bench_chart(bench)
    for fmt in formats:
        env = markdown_environment() if fmt == "md" else environment()
        files[pages[fmt]] = env.get_template(f"report.{fmt}.j2").render(**context, fmt=fmt)
    write_folder(out, files, volatile=VOLATILE)
    return [out / pages[fmt] for fmt in formats]


def build_context(
    comparison: Comparison,
    svgs: dict[tuple[str, str], str],
    plots: dict[str, str],
    bench: BenchResult | None = None,
) -> dict[str, Any]:
    """Everything the templates show, as display-ready values (templates do no arithmetic)."""
    input_shape = "x".join(map(str, comparison.input_size))
    names = [row.name for row in comparison.rows]
    resnets = all(t.architecture is not None for t in comparison.traces)
    title = "The ResNet family, side by side" if resnets else "Architectures side by side"
    return {
        "title": title if len(names) > 1 else f"{names[0]}",
        "resnets": resnets,
        "subtitle": f"{', '.join(names)} at input {input_shape}: figures traced from the "
        f"models themselves by archviz {archviz.__version__}.",
        "version": archviz.__version__,
        "input_shape": input_shape,
        "comparison_html": Markup(comparison_table(comparison, "html")),
        "comparison_md": Markup(comparison_table(comparison, "github")),
        "comparison_note": "Depth counts weighted layers on the main path (see below). "
        "MACs are multiply-adds of convolutions and linear layers; FLOPs = 2 x MACs. "
        "'MACs (paper stride)' traces the same model with the stride-2 in the first 1x1 "
        "conv, as in the paper; 'Table 1' is the paper's printed figure.",
        "plots": [
            {"title": PLOT_TITLES.get(k, k), "svg": _inline(svg), "path": Markup(f"plots/{k}.svg")}
            for k, svg in plots.items()
        ],
        "depth_intro": DEPTH_INTRO if resnets else DEPTH_INTRO_ANY,
        "models": [
            _model_context(trace, explanation, svgs)
            for trace, explanation in zip(comparison.traces, comparison.explanations, strict=True)
        ],
        "explorer_engine": engine_element(),  # ELK once, for every explorer on the page
        "not_counted": _not_counted(comparison),
        "paper": _paper_context(comparison),
        "conventions": _conventions(),
        "bench": _bench_context(bench) if bench is not None else None,
        "environment": environment_rows(),
        "environment_note": ENVIRONMENT_NOTE,
    }


def _model_context(
    trace: Trace, explanation: DepthExplanation, svgs: dict[tuple[str, str], str]
) -> dict[str, Any]:
    name = trace.model
    stages = stage_table(explanation) if explanation.stages else []
    terms = [] if stages else term_table(explanation)
    layers = layer_table(trace)
    t = trace.totals
    kind = f"{explanation.block} blocks {list(explanation.layers)}, " if explanation.block else ""
    return {
        "name": name,
        "anchor": Markup(anchor(name)),  # [a-z0-9-] only
        "formula": Markup(explanation.formula),  # archviz's arithmetic, in a code span
        "sentence": explanation.blocks_answer or explanation.blocks_sentence,
        "headline": f"{kind}depth {explanation.depth}: {t.params:,} parameters, "
        f"{si(t.macs)}MACs, {si(t.elementwise_flops)} elementwise FLOPs at input "
        f"{shape(trace.input_shapes)}.",
        "stage_table_html": Markup(_tabulate(stages, STAGE_COLUMNS, "html")) if stages else "",
        "stage_table_md": _tabulate(stages, STAGE_COLUMNS, "github") if stages else "",
        "term_table_html": Markup(_tabulate(terms, TERM_COLUMNS, "html")) if terms else "",
        "term_table_md": _tabulate(terms, TERM_COLUMNS, "github") if terms else "",
        "diagrams": [
            {
                "title": title,
                "alt": f"{name} {ALT.get(key, title)}",
                "svg": _inline_diagram(svgs[(name, key)]),
                "path": Markup(f"diagrams/{anchor(name)}-{key}.svg"),  # [a-z0-9-] only
            }
            for key, title in diagram_views(trace)
        ],
        "uncounted": _uncounted(trace),
        "explorer": _explorer(trace),
        "layer_count": len(layers),
        "layer_table_html": Markup(layers.to_html(index=False, escape=True, border=0)),
        "layer_table_md": Markup(layers.map(md_escape).to_markdown(index=False)),
        **hardware_context(trace),
    }


def _explorer(trace: Trace) -> Markup:
    """The interactive explorer in an isolated, lazily loaded iframe (HTML report only);
    it runs the layout engine that the report holds once (`engine_element`)."""
    return Markup(explore(trace, host_engine=True).iframe(height=640, lazy=True))


def layer_table(trace: Trace) -> pd.DataFrame:
    """Every module call below the model itself, indented by depth."""
    rows = [
        {
            "Module": ("· " * (r.depth - 1)) + r.name,
            "Type": r.type,
            "Output": shape(r.output_shapes),
            "Params": f"{r.params:,}" if r.params else "",
            "MACs": si(r.macs_total) if r.macs_total else "",
            "Elementwise": si(r.elementwise_flops_total) if r.elementwise_flops_total else "",
        }
        for r in trace.records
        if r.depth > 0
    ]
    return pd.DataFrame(rows)


def _paper_context(comparison: Comparison) -> dict[str, Any] | None:
    rows, sentence = [], "Only Bottleneck models differ between the two stride placements."
    for row, explanation in zip(comparison.rows, comparison.explanations, strict=True):
        paper = explanation.paper
        if paper is None:
            continue
        if paper.changed:
            sentence = paper.sentence
        table1 = paper.table1_gmacs
        diff = f"{100 * (paper.stride_in_1x1_macs / (table1 * 1e9) - 1):+.1f}%" if table1 else "-"
        rows.append(
            (
                row.name,
                f"{table1} G" if table1 else "-",
                si(paper.stride_in_1x1_macs),
                diff,
                si(paper.stride_in_3x3_macs),
            )
        )
    if not rows:
        return None  # no model has a stride placement to compare
    headers = ("Model", "Paper, Table 1", "Traced, paper stride", "Difference", "Traced, v1.5")
    return {
        "sentence": sentence,
        "table_html": Markup(_tabulate(rows, headers, "html")),
        "table_md": _tabulate(rows, headers, "github"),
    }


def _not_counted(comparison: Comparison) -> str:
    reasons: dict[str, str] = {}
    for explanation in comparison.explanations:
        for kind, _calls, why in explanation.not_counted:
            reasons.setdefault(kind, why)
    listed = "; ".join(f"{kind}: {why}" for kind, why in sorted(reasons.items()))
    return f"Not counted as layers: {listed}."


def _conventions() -> list[str]:
    return [
        "MACs and FLOPs of convolutions and matrix multiplies come from PyTorch's own "
        "formulas (torch.utils.flop_counter), attention's from archviz's (its two matmuls, "
        "whichever kernel runs it); one MAC is one multiply-add, FLOPs = 2 x MACs.",
        *(f"Elementwise work, {op}: {rule}; reported apart, never in the totals."
          for op, rule in CONVENTIONS.items()),
        "Data movement (reshape, cat, copy) is free; any other op without a formula is listed "
        "in the trace, never silently counted as free.",
        "Parameters are unique tensors: a tied weight counts once.",
    ]  # fmt: skip


def _bench_context(bench: BenchResult) -> dict[str, Any]:
    from archviz.render.bench_chart import bench_chart
    from archviz.render.bench_table import machine_line, stage_rows, summary_rows

    staged = [r for r in bench.rows if r.stages]

    def tables(fmt: str) -> str:
        escape = fmt == "github"
        parts = [tabulate(_cells(summary_rows(bench.rows), escape), "keys", fmt)]
        if staged:
            parts.append(tabulate(_cells(stage_rows(staged), escape), "keys", fmt))
        return "\n\n".join(parts)

    return {
        "label": bench.label,
        "machine": machine_line(bench.machine),
        "table_html": Markup(tables("html")),
        "table_md": Markup(tables("github")),
        "chart_svg": _inline(bench_chart(bench)),
        "chart_path": Markup("plots/bench.svg"),
        "notes": [
            "Median latency per forward pass (eval, inference_mode), torch.utils.benchmark; "
            "the second table times each stage alone on its real input.",
            *sorted({f"{r.model}: {r.stages_note}" for r in bench.rows if r.stages_note}),
        ],
    }


def _cells(rows: list[dict[str, object]], escape: bool) -> list[dict[str, object]]:
    """Markdown-escape the text cells (model names); numbers stay numbers for tabulate."""
    if not escape:
        return rows
    return [{k: md_escape(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows]


def environment_rows() -> list[tuple[str, str]]:
    import torch
    import torchvision

    return [
        ("archviz", archviz.__version__),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("Python", platform.python_version()),
        ("Platform", f"{platform.system()} {platform.machine()}"),
        ("Traced on", "meta device (shapes, params and MACs are identical on every device)"),
    ]


def diagram_views(trace: Trace) -> list[tuple[str, str]]:
    """(key, title) of a model's diagrams: a ResNet's stage and block presets, else the
    top level and the deepest view that stays readable (see `detail_depth`)."""
    from archviz.render.diagram import detail_depth

    if trace.architecture is not None:
        return [("stage", "Stages"), ("block", "Blocks and shortcuts")]
    views = [("depth1", "Top level")]
    depth = detail_depth(trace)
    if depth > 1:
        views.append((f"depth{depth}", f"Modules to depth {depth}; repeated blocks drawn once"))
    return views


def _diagram(trace: Trace, key: str):
    from archviz.render.diagram import diagram

    if key.startswith("depth"):
        return diagram(trace, depth=int(key.removeprefix("depth")))
    return diagram(trace, level=key)


def _uncounted(trace: Trace) -> str:
    """Ops that ran without a FLOP formula or convention, so a 0 is never read as free."""
    if not trace.uncounted_ops:
        return "Every op that ran has a FLOP formula or an elementwise convention."
    ops = ", ".join(f"{op} x{calls}" for op, calls in trace.uncounted_ops)
    return f"Ran without a FLOP formula or convention (not in the totals): {ops}."


def _diagram_svgs(comparison: Comparison) -> dict[tuple[str, str], str]:
    """Each model's diagrams (see `diagram_views`); `dot` runs in parallel processes."""
    jobs = {
        (t.model, key): _diagram(t, key)
        for t in comparison.traces
        for key, _title in diagram_views(t)
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(lambda d: d.svg(), jobs.values()), strict=True))


def _tabulate(rows: Sequence[Sequence[str]], headers: Sequence[str], fmt: str) -> Markup:
    """A table ready for its page: GitHub cells Markdown-escaped (a `|` in a module name
    would split the row), HTML cells escaped by tabulate."""
    if fmt == "github":
        rows = [[md_escape(cell) for cell in row] for row in rows]
    return Markup(tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True))


MIN_SCALE = 0.6  # a wide diagram shrinks to fit its card only so far, then scrolls


def _inline_diagram(svg: str) -> Markup:
    """Inline a Graphviz SVG that never shrinks below MIN_SCALE (labels stay readable on
    a phone); its card scrolls instead. Graphviz gives the width in points."""
    found = re.search(r'<svg width="([\d.]+)pt"', svg)
    if found is None:
        return _inline(svg)
    least = round(float(found[1]) * 4 / 3 * MIN_SCALE)
    return _inline(svg.replace("<svg ", f'<svg style="min-width:{least}px" ', 1))


def _inline(svg: str) -> Markup:
    """Inline SVG must not carry `<?xml ...?>` or a DOCTYPE. Graphviz and matplotlib
    escape the text they draw, so the markup itself is safe."""
    start = svg.find("<svg")
    return Markup(svg[start:] if start >= 0 else svg)
