"""Diagram text: short layer texts, figures, escaped labels, the house style.

Everything comes from records (types, shapes, parameter shapes and counts). Records carry
no kernel size or stride, so both are derived: stride from the resolution change, kernel
from the weight's shape (out x in/groups x k x k), or from the parameter count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import graphviz

from archviz.records import ModuleRecord, Trace
from archviz.render.escape import term_safe
from archviz.render.units import chw, si

_SAFE_ID = re.compile(r"[A-Za-z0-9_.]+")


MAX_LABEL_CHARS = 80  # a label line longer than this is shortened in the middle
MAX_TOOLTIP_CHARS = 15_000  # DOT refuses a quoted string over 16,384 characters
# Besides the controls term_safe escapes: what XML 1.0 cannot hold (lone surrogates, the
# non-characters U+FFFE/U+FFFF), so every SVG dot writes parses.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def visible(value: object) -> str:
    """One line of user text with every control or non-XML character shown as an escape."""
    shown = term_safe(" ".join(str(value).splitlines()))
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)


def short(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    """`visible(value)`, its middle elided past `limit` characters: 'layer…block.conv'."""
    shown = visible(value)
    if len(shown) <= limit:
        return shown
    head = (limit - 1) * 5 // 8
    return f"{shown[:head]}…{shown[len(shown) - (limit - 1 - head) :]}"


def _dot_text(value: str) -> str:
    return str(graphviz.escape(value.replace("&", "&amp;")))


def text(value: str) -> str:
    """User text -> a plain-text DOT label line shown literally (no escapes, no entities),
    shortened to MAX_LABEL_CHARS: a 100 kB module name must not break `dot`."""
    return _dot_text(short(value))


def label(*lines: str) -> str:
    """Lines -> one plain (never HTML-like) label; `\\n` is DOT's centred line break."""
    return graphviz.nohtml("\\n".join(text(line) for line in lines if line))


def tooltip(*lines: str, always: bool = False) -> dict[str, str]:
    """{'tooltip': the full text} where `label` shortened a line (or `always`), else {}:
    dot's default tooltip is the label, and an SVG node's <title> its id. Capped below
    DOT's quoted-string limit; the explorer's panel holds any name whole."""
    full = [visible(line) for line in lines if line]
    if not always and all(len(line) <= MAX_LABEL_CHARS for line in full):
        return {}
    joined = "\n".join(full)
    budget = MAX_TOOLTIP_CHARS
    while len(_dot_text(joined[:budget])) > MAX_TOOLTIP_CHARS:
        budget //= 2  # `&` and `\\` grow when escaped
    cut = joined if len(joined) <= budget else joined[:budget] + "…"
    return {"tooltip": graphviz.nohtml(_dot_text(cut).replace("\n", "\\n"))}


def first_shape(tree: Any) -> tuple[int, ...] | None:
    """The first tensor shape in a shape tree (a module's first input, say)."""
    if isinstance(tree, tuple) and tree and all(isinstance(d, int) for d in tree):
        return tree
    items = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, tuple) else ()
    for item in items:
        found = first_shape(item)
        if found:
            return found
    return None


def channels(tree: Any) -> int | None:
    found = first_shape(tree)
    return found[1] if found and len(found) >= 2 else None


def stride(record: ModuleRecord) -> int:
    """Spatial reduction, from input and output height (ceil, as padded convs round up)."""
    shape_in, shape_out = first_shape(record.input_shapes), first_shape(record.output_shapes)
    if not shape_in or not shape_out or len(shape_in) < 4 or len(shape_out) < 4:
        return 1
    return max(1, -(-shape_in[2] // shape_out[2]))


def kernel(record: ModuleRecord, groups: int = 1) -> int | None:
    """A square conv's kernel size from its weight's shape (out, in/groups, k, k), or, for
    records without parameter shapes, from its parameter count; None when it cannot be told."""
    weight = record.param_shapes[0] if record.param_shapes else ()
    if len(weight) == 4 and weight[2] == weight[3]:
        return weight[2]
    c_in, c_out = channels(record.input_shapes), channels(record.output_shapes)
    if not c_in or not c_out or record.params == 0:
        return None
    for g in sorted({1, groups}):
        for bias in (0, c_out):
            per_tap, rest = divmod(c_out * c_in, g)
            weights = record.params - bias
            if rest or weights <= 0 or weights % per_tap:
                continue
            k = math.isqrt(weights // per_tap)
            if k * k == weights // per_tap:
                return k
    return None


def layer_text(record: ModuleRecord, groups: int = 1) -> str:
    """One short line for a leaf: '3x3 conv /2, 64->128', 'BN', 'max-pool /2', 'fc 512->1000'."""
    kind = record.type
    c_in, c_out = channels(record.input_shapes), channels(record.output_shapes)
    step = f" /{stride(record)}" if stride(record) > 1 else ""
    if kind.startswith("Conv"):
        k = kernel(record, groups)
        size = f"{k}x{k} " if k else ""
        return f"{size}conv{step}, {c_in}->{c_out}"
    if kind == "Linear":
        shape_in, shape_out = first_shape(record.input_shapes), first_shape(record.output_shapes)
        if shape_in and shape_out:
            return f"fc {shape_in[-1]}->{shape_out[-1]}"
    if kind.startswith("BatchNorm"):
        return "BN"
    if "Pool" in kind:
        out = first_shape(record.output_shapes)
        if "Adaptive" in kind and out and out[2:] == (1, 1):
            return "global avg-pool" if "Avg" in kind else "global max-pool"
        return ("max-pool" if "Max" in kind else "avg-pool") + step
    return kind


def summary_lines(records: list[ModuleRecord], groups: int = 1) -> list[str]:
    """Leaves as lines: a conv, pool or fc starts a line; BN and activations join it."""
    lines: list[str] = []
    for record in records:
        part = layer_text(record, groups)
        starts = record.params_total == 0 and "Pool" not in record.type
        if lines and (part == "BN" or starts):
            lines[-1] += f" · {part}"
        else:
            lines.append(part)
    return lines


FONT = "Helvetica,Arial,sans-serif"
INK, LINE, PROJECTION = "#3c4043", "#5f6368", "#1a73e8"
PART_FILLS = {"~stem": "#f1f3f4", "~head": "#f3e8fd"}
STAGE_FILLS = ("#e8f0fe", "#e6f4ea", "#fef7e0", "#fce8e6")  # cycled for more stages


def graph(trace: Trace, level: str) -> graphviz.Digraph:
    """An empty digraph in the house style."""
    g = graphviz.Digraph("archviz")
    title = f"{trace.model} · {level} · input {shape_text(trace.input_shapes)}"
    g.attr(
        label=label(title),
        **tooltip(title),
        labelloc="t",
        fontname=FONT,
        fontsize="13",
        fontcolor=INK,
    )
    g.attr(rankdir="TB", nodesep="0.25", ranksep="0.28")
    g.attr("node", shape="box", style="rounded,filled", fillcolor="white", color=LINE)
    g.attr("node", fontname=FONT, fontsize="10", fontcolor=INK, height="0.3", margin="0.1,0.04")
    g.attr("edge", color=LINE, fontname=FONT, fontsize="8", fontcolor=LINE, arrowsize="0.6")
    return g


def shape_text(tree: Any) -> str:
    """The first tensor's shape without the batch: '64x56x56'."""
    found = first_shape(tree)
    return chw(found) if found else "-"


def moved_text(via: tuple[str, ...], before: Any, after: Any) -> str:
    """An edge that carries data-moving ops: 'view · transpose: 128x64 -> 4x128x16'."""
    names = list(dict.fromkeys(via))
    ops = " · ".join(names if len(names) <= 3 else [*names[:2], f"+{len(names) - 2}"])
    if before is None or first_shape(before) == first_shape(after):
        return f"{ops}: {shape_text(after)}"
    return f"{ops}: {shape_text(before)} -> {shape_text(after)}"


def figures(shape: Any, params: int, macs: int, runs: int = 1) -> str:
    """'256x56x56 · 70.4 k params · 218.0 M MACs'; zero figures are left out. For a run
    drawn once, the shape is each member's and the figures are the run's: 'all 6: ...'."""
    work = [f"{si(params, '', 1)} params"] if params else []
    work += [f"{si(macs, '', 1)} MACs"] if macs else []
    if runs > 1 and work:
        work[0] = f"all {runs}: {work[0]}"
    return " · ".join(([shape_text(shape)] if shape is not None else []) + work)


def brief(records: list[ModuleRecord]) -> str:
    """A long branch in one line, its weighted layers only: '1x1, 64 · 3x3 /2, 64 · 1x1, 256'."""
    parts = []
    for r in records:
        if r.params_total == 0 or r.macs_total == 0:
            continue
        if r.type.startswith("Conv"):
            k, s = kernel(r), stride(r)
            size = f"{k}x{k}" if k else "conv"
            parts.append(f"{size}{f' /{s}' if s > 1 else ''}, {channels(r.output_shapes)}")
        else:
            parts.append(layer_text(r))
    return " · ".join(parts)


@dataclass
class Edges:
    """Edges collected while clusters are built, drawn last at the top level: an edge
    written inside a cluster would pull both its ends into that cluster."""

    items: list[tuple[str, str, dict[str, str | None]]] = field(default_factory=list)

    def add(self, tail: str, head: str, **attrs: str | None) -> None:
        self.items.append((tail, head, attrs))

    def draw(self, g: graphviz.Digraph) -> graphviz.Digraph:
        for tail, head, attrs in self.items:
            g.edge(tail, head, **{k: v for k, v in attrs.items() if v is not None})
        return g
