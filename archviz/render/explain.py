"""A DepthExplanation as readable text (CLI) and HTML (notebooks)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from tabulate import tabulate

from archviz.render.escape import md_escape
from archviz.render.units import chw, si

if TYPE_CHECKING:
    from archviz.analysis.explain import DepthExplanation

STAGE_COLUMNS = ("Stage", "Blocks", "Convs/block", "Weighted layers", "Output", "Params", "MACs")
CONTAINERS = ("", "Sequential", "ModuleList", "ModuleDict")  # not worth naming as a "within"
TERM_COLUMNS = ("Term", "Unit", "Layers each", "Units", "Weighted layers", "Where")


def term_table(explanation: DepthExplanation) -> list[tuple[str, ...]]:
    """One row per formula term: which unit it counts and where those units sit."""
    rows: list[tuple[str, ...]] = []
    for t in explanation.terms:
        where = ", ".join(t.where[:4]) + (f", ... ({len(t.where)})" if len(t.where) > 4 else "")
        unit = t.unit if t.layer_types == (t.unit,) else f"{t.unit} ({', '.join(t.layer_types)})"
        if t.unit in t.layer_types and t.within not in (
            "",
            "Sequential",
            "ModuleList",
            "ModuleDict",
        ):
            unit += f" in {t.within}"  # e.g. DenseNet's transition convs
        counts = " + ".join(map(str, t.counts))
        rows.append((t.text, unit, str(t.per_unit), counts, str(t.layers), where))
    return rows


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
    if explanation.beside:
        names = ", ".join(explanation.beside[:8])
        more = f", ... ({len(explanation.beside)} in all)" if len(explanation.beside) > 8 else ""
        lines.append(f"beside the main path: {names}{more}")
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
    size = "x".join(map(str, e.input_size)) if isinstance(e.input_size, tuple) else "?"
    lines = [
        f"{e.model}: depth {e.depth}, input {size}",
        f"depth = weighted layers (conv, linear) on the longest input-to-output path: {e.formula}",
    ]
    if e.block:
        layers = ", ".join(map(str, e.layers))
        lines += [f"{e.block} blocks, layers [{layers}]: {e.blocks_answer}"]
    if e.blocks_sentence:
        lines += [e.blocks_sentence]
    lines += [
        "",
        tabulate(term_table(e), headers=TERM_COLUMNS, disable_numparse=True),
    ]
    if e.stages:
        table = tabulate(
            stage_table(e), headers=STAGE_COLUMNS, disable_numparse=True, stralign="right"
        )
        lines += ["", table]
    lines += [
        "",
        "Not counted (only weighted layers on the main path count):",
        *(f"  {line}" for line in not_counted_lines(e)),
    ]
    if e.paper is not None:
        lines += ["", "Where the stride sits:", *(f"  {line}" for line in paper_lines(e))]
    lines += [f"Note: {note}" for note in e.notes]
    return "\n".join(lines)


def explanation_markdown(explanation: DepthExplanation) -> str:
    """GitHub Markdown with the text view's content: formula, terms, stages, what is not
    counted, the stride."""
    e = explanation
    size = "x".join(map(str, e.input_size)) if isinstance(e.input_size, tuple) else "?"
    lines = [f"**{_md(e.model)}**: depth {e.depth}, input {size}", "", f"depth = {_md(e.formula)}"]
    if e.block:
        layers = ", ".join(map(str, e.layers))
        lines += ["", f"{e.block} blocks, layers [{layers}]: {_md(e.blocks_answer)}"]
    if e.blocks_sentence:
        lines += ["", _md(e.blocks_sentence)]
    lines += ["", _md_table(TERM_COLUMNS, term_table(e))]
    if e.stages:
        lines += ["", _md_table(STAGE_COLUMNS, stage_table(e))]
    lines += ["", "Not counted (only weighted layers on the main path count):", ""]
    lines += [f"- {_md(line)}" for line in not_counted_lines(e)]
    if e.paper is not None:
        lines += ["", "Where the stride sits:", "", *(f"- {_md(line)}" for line in paper_lines(e))]
    lines += [f"\nNote: {_md(note)}" for note in e.notes]
    return "\n".join(lines) + "\n"


def render_explanation(explanation: DepthExplanation, fmt: str) -> str:
    """One of archviz.options.FORMATS["explain"] as text, for the CLI."""
    if fmt == "json":
        return explanation.to_json(indent=2)
    if fmt == "markdown":
        return explanation_markdown(explanation)
    return explanation_text(explanation)


def _md(text: str) -> str:
    """Model-derived text as literal Markdown."""
    return md_escape(text)


def _md_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    cells = [[_md(c) for c in row] for row in rows]
    return tabulate(cells, headers=columns, tablefmt="github", disable_numparse=True)


def _html_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def explanation_html(explanation: DepthExplanation) -> str:
    """Every model-derived string is escaped: model names come from users."""
    e = explanation
    items = "".join(f"<li>{escape(line)}</li>" for line in not_counted_lines(e))
    paper = "".join(f"<li>{escape(line)}</li>" for line in paper_lines(e))
    stages = _html_table(STAGE_COLUMNS, stage_table(e)) if e.stages else ""
    return (
        f"<div><h4>{escape(e.model)}: {escape(e.formula)}</h4>"
        + (f"<p>{escape(e.blocks_answer)}</p>" if e.blocks_answer else "")
        + (f"<p>{escape(e.blocks_sentence)}</p>" if e.blocks_sentence else "")
        + _html_table(TERM_COLUMNS, term_table(e))
        + stages
        + f"<p>Not counted:</p><ul>{items}</ul>"
        + (f"<p>Where the stride sits:</p><ul>{paper}</ul>" if paper else "")
        + "</div>"
    )
