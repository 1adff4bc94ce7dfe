"""A Trace as a pandas DataFrame, a torchinfo-like text summary, and notebook HTML."""

from __future__ import annotations

from dataclasses import asdict
from html import escape
from typing import TYPE_CHECKING

import pandas as pd

from archviz.render.escape import md_escape, term_safe
from archviz.render.units import nbytes, shape, si

if TYPE_CHECKING:
    from archviz.records import Trace

# The summary's columns: header -> how a record becomes that cell.
SUMMARY_COLUMNS = ("Layer (type)", "Output shape", "Params", "MACs", "Elementwise")


def trace_dataframe(trace: Trace) -> pd.DataFrame:
    """One row per module call, raw integers, shapes as strings for readability."""
    rows = []
    for record in trace.records:
        row = asdict(record)
        row["input_shapes"] = shape(record.input_shapes)
        row["output_shapes"] = shape(record.output_shapes)
        rows.append(row)
    return pd.DataFrame(rows)


def _rows(trace: Trace, depth: int) -> list[tuple[str, ...]]:
    """Display rows down to `depth`; depth 0 is the model's own row (its whole sums), also
    shown when nothing ran inside it (one layer, or TorchScript not opened)."""
    rows: list[tuple[str, ...]] = []
    alone = len(trace.records) == 1
    for r in trace.records:
        if ((r.depth == 0) != (depth == 0) and not alone) or r.depth > depth:
            continue
        collapsed = r.depth == depth or r.is_leaf  # a collapsed row shows its subtree's sums
        own = term_safe(r.name.rpartition(".")[2] or trace.model)  # the model author's text
        kind = term_safe(r.type) + (f"; {term_safe(r.note)}" if r.note else "")
        label = f"{'  ' * max(r.depth - 1, 0)}{own} ({kind})"
        if r.call and r.called:  # a container row shown again is not a second call
            label += f" [call {r.call + 1}]"
        params = r.params_total if collapsed and r.call == 0 else r.params
        macs = r.macs_total if collapsed else r.macs
        elementwise = r.elementwise_flops_total if collapsed else r.elementwise_flops
        rows.append(
            (
                label,
                shape(r.output_shapes),
                f"{params:,}" if params else "--",
                si(macs) if macs else "--",
                si(elementwise) if elementwise else "--",
            )
        )
    return rows


def trace_summary(trace: Trace, depth: int = 3) -> str:
    """Rows down to `depth` (deeper work folded into the last shown level), then totals."""
    rows: list[tuple[str, ...]] = [SUMMARY_COLUMNS, *_rows(trace, depth)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]
    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))

    def line(row: tuple[str, ...]) -> str:
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([row[0].ljust(widths[0]), *rest])

    t = trace.totals
    footer = [
        f"Total params: {t.params:,} ({nbytes(t.param_bytes)}); trainable: {t.trainable:,}",
        f"Total MACs: {t.macs:,} ({si(t.macs, 'MACs')}); FLOPs: {si(t.flops, 'FLOPs')}",
        f"Elementwise FLOPs (BN, ReLU, add, pooling; not in the totals above): "
        f"{si(t.elementwise_flops)}",
        f"Input: {shape(trace.input_shapes)} ({nbytes(t.input_bytes)}); "
        f"activations: {nbytes(t.activation_bytes)}; device: {trace.device}, {trace.dtype}",
    ]
    if trace.uncounted_ops:
        ops = ", ".join(f"{name} x{n}" for name, n in trace.uncounted_ops)
        footer.append(f"Ops without a FLOP formula (counted as 0): {ops}")
    footer += [f"Note: {term_safe(note)}" for note in trace.extra.get("notes", ())]
    body = [line(rows[0]), rule, *(line(r) for r in rows[1:]), rule, *footer]
    return f"{term_safe(trace.model)}\n" + "\n".join(body)


def trace_markdown(trace: Trace, depth: int = 3) -> str:
    """The summary as a GitHub table: the same rows and footer as the text table."""
    rows = _rows(trace, depth)

    def cell(text: str) -> str:  # indentation kept as non-breaking spaces; Markdown escaped
        stripped = text.lstrip(" ")
        return "&nbsp;" * (len(text) - len(stripped)) + md_escape(stripped)

    lines = [f"**{cell(trace.model)}**", "", "| " + " | ".join(SUMMARY_COLUMNS) + " |"]
    lines.append("|" + "---|" + "--:|" * (len(SUMMARY_COLUMNS) - 1))
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    footer = trace_summary(trace, depth).splitlines()[len(rows) + 4 :]
    return "\n".join([*lines, "", *(f"- {cell(line)}" for line in footer)]) + "\n"


def render_trace(trace: Trace, fmt: str, depth: int = 3) -> str:
    """One of archviz.options.FORMATS["trace"] as text, for the CLI."""
    if fmt == "json":
        return trace.to_json(indent=2)
    if fmt == "csv":
        return trace_dataframe(trace).to_csv(index=False)
    if fmt == "markdown":
        return trace_markdown(trace, depth)
    return trace_summary(trace, depth)


def trace_html(trace: Trace, depth: int = 2) -> str:
    """A compact HTML table for notebooks; every model-derived string is escaped.

    The name column keeps its indentation (`white-space: pre`), and is left-aligned:
    notebooks right-align table cells by default.
    """
    rows = [SUMMARY_COLUMNS, *_rows(trace, depth)]
    head = "".join(f"<th>{escape(c)}</th>" for c in rows[0])
    first = '<td style="white-space: pre; text-align: left">'
    body = "".join(
        f"<tr>{first}{escape(row[0])}</td>"
        + "".join(f"<td>{escape(c)}</td>" for c in row[1:])
        + "</tr>"
        for row in rows[1:]
    )
    t = trace.totals
    caption = escape(f"{trace.model}: {t.params:,} params, {si(t.macs, 'MACs')}")
    return f"<table><caption>{caption}</caption><tr>{head}</tr>{body}</table>"
