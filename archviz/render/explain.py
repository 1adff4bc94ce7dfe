"""A DepthExplanation as readable text (CLI) and HTML (notebooks)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from tabulate import tabulate

from archviz.render.units import chw, si

if TYPE_CHECKING:
    from archviz.explain import DepthExplanation

STAGE_COLUMNS = ("Stage", "Blocks", "Convs/block", "Weighted layers", "Output", "Params", "MACs")


def stage_table(explanation: DepthExplanation) -> list[tuple[str, ...]]:
    """Rows of the per-stage table as display strings, totals last."""
    rows: list[tuple[str, ...]] = [
        (
            row.stage,
            str(row.blocks) if row.blocks else "-",
            str(row.convs_per_block) if row.convs_per_block is not None else "-",
            str(row.weighted_layers),
            chw(row.output_shape),
            f"{row.params:,}",
            si(row.macs),
        )
        for row in explanation.stages
    ]
    e = explanation
    blocks = sum(r.blocks for r in e.stages)
    rows.append(("total", str(blocks), "", str(e.depth), "", f"{e.params:,}", si(e.macs)))
    return rows


def not_counted_lines(explanation: DepthExplanation) -> list[str]:
    lines = [f"{kind} x{calls}: {why}" for kind, calls, why in explanation.not_counted]
    if explanation.shortcuts:
        lines.append(f"the projection shortcuts: {', '.join(explanation.shortcuts)}")
    return lines


def paper_lines(explanation: DepthExplanation) -> list[str]:
    p = explanation.paper
    if p is None:
        return []
    table1 = f"; the paper's Table 1: {p.table1_gmacs} x 10^9" if p.table1_gmacs else ""
    return [
        f"stride in the 3x3 conv (torchvision v1.5): {si(p.stride_in_3x3_macs)}MACs",
        f"stride in the first 1x1 conv (the paper): {si(p.stride_in_1x1_macs)}MACs{table1}",
        p.sentence,
    ]


def explanation_text(explanation: DepthExplanation) -> str:
    e = explanation
    layers = ", ".join(map(str, e.layers))
    lines = [
        f"{e.model}: {e.block} blocks, layers [{layers}], input {'x'.join(map(str, e.input_size))}",
        f"depth = stem + convs per block x blocks + classifier: {e.formula}",
        e.blocks_answer,
        "",
        tabulate(stage_table(e), headers=STAGE_COLUMNS, disable_numparse=True, stralign="right"),
        "",
        "Not counted (the paper counts only weighted layers on the main path):",
        *(f"  {line}" for line in not_counted_lines(e)),
    ]
    if e.paper is not None:
        lines += ["", "Where the stride sits:", *(f"  {line}" for line in paper_lines(e))]
    lines += [f"Note: {note}" for note in e.notes]
    return "\n".join(lines)


def explanation_markdown(explanation: DepthExplanation) -> str:
    """GitHub Markdown: the formula, the stage table, what is not counted, the stride."""
    e = explanation
    table = tabulate(
        stage_table(e), headers=STAGE_COLUMNS, tablefmt="github", disable_numparse=True
    )
    lines = [
        f"**{_md(e.model)}**: {_md(e.formula)}",
        "",
        _md(e.blocks_answer),
        "",
        table,
        "",
        "Not counted (the paper counts only weighted layers on the main path):",
        "",
        *(f"- {_md(line)}" for line in not_counted_lines(e)),
    ]
    if e.paper is not None:
        lines += ["", "Where the stride sits:", "", *(f"- {_md(line)}" for line in paper_lines(e))]
    lines += [f"Note: {_md(note)}" for note in e.notes]
    return "\n".join(lines) + "\n"


def render_explanation(explanation: DepthExplanation, fmt: str) -> str:
    """One of archviz.options.FORMATS["explain"] as text, for the CLI."""
    if fmt == "json":
        return explanation.to_json(indent=2)
    if fmt == "markdown":
        return explanation_markdown(explanation)
    return explanation_text(explanation)


def _md(text: str) -> str:
    """Minimal Markdown safety for model-derived text (render/escape.py does it fully)."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def explanation_html(explanation: DepthExplanation) -> str:
    """Every model-derived string is escaped: model names come from users."""
    e = explanation
    head = "".join(f"<th>{escape(c)}</th>" for c in STAGE_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in stage_table(e)
    )
    items = "".join(f"<li>{escape(line)}</li>" for line in not_counted_lines(e))
    paper = "".join(f"<li>{escape(line)}</li>" for line in paper_lines(e))
    return (
        f"<div><h4>{escape(e.model)}: {escape(e.formula)}</h4>"
        f"<p>{escape(e.blocks_answer)}</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"<p>Not counted:</p><ul>{items}</ul>"
        + (f"<p>Where the stride sits:</p><ul>{paper}</ul>" if paper else "")
        + "</div>"
    )
