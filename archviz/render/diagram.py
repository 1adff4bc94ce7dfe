"""Graphviz block diagrams of a Trace: DOT source from records, never from a model.

`diagram(trace, level)` builds DOT with the `graphviz` package; `Diagram` renders it with
Graphviz's `dot` only when an image is asked for. The same Trace always gives the same
bytes (ids from names or a counter, no timestamps), so diagrams in a docs repo diff cleanly.
Labels are plain text: user text is escaped here, in `_text`, and nowhere else.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import graphviz

from archviz.errors import ArchvizError
from archviz.records import ModuleRecord, Trace
from archviz.render._diagram_parts import (
    LINE,
    PROJECTION,
    Block,
    Edges,
    blocks,
    brief,
    channels,
    fill,
    graph,
    label,
    layer_text,
    node_id,
    part_leaves,
    shape_text,
    summary_lines,
)
from archviz.render.atomic import write_atomic
from archviz.render.units import si

LEVELS = ("stage", "block", "layer")
FORMATS = ("svg", "png", "pdf", "dot")  # the output file's suffix chooses one
INSTALL_HINT = (
    "install Graphviz to render images: apt-get install graphviz (macOS: brew install graphviz)"
)


@dataclass(frozen=True)
class Diagram:
    """DOT source plus rendering; shows itself as SVG in Jupyter."""

    source: str

    def render(self, fmt: str) -> bytes:
        """The diagram as `fmt` bytes, rendered by Graphviz's `dot`."""
        if fmt not in FORMATS:
            raise ArchvizError(
                f"unknown diagram format {fmt!r}; choose one of {', '.join(FORMATS)}"
            )
        if fmt == "dot":
            return self.source.encode()
        if not has_dot():
            raise ArchvizError(f"Graphviz's `dot` is not on the PATH; {INSTALL_HINT}")
        try:
            return graphviz.pipe("dot", fmt, self.source.encode(), quiet=True)
        except graphviz.CalledProcessError as exc:  # a bug here, not the user's: say what dot said
            raise ArchvizError(
                f"dot failed: {exc.stderr.decode(errors='replace').strip()}"
            ) from None

    def svg(self) -> str:
        return self.render("svg").decode()

    def _repr_svg_(self) -> str:
        return self.svg()

    def save(self, path: str | Path) -> Path:
        """Write the format the suffix names (.svg, .png, .pdf, .dot).

        Without `dot`, an image cannot be made: the DOT source is written beside it (same
        name, .dot) so nothing is lost, and ArchvizError says how to install Graphviz.
        """
        target = Path(path)
        fmt = target.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ArchvizError(
                f"cannot tell the format of {target.name!r}; end it in "
                + ", ".join(f".{f}" for f in FORMATS)
            )
        if fmt != "dot" and not has_dot():
            fallback = target.with_suffix(".dot")
            write_atomic(fallback, self.source)
            raise ArchvizError(
                f"Graphviz's `dot` is not on the PATH; wrote {fallback}; {INSTALL_HINT}"
            )
        write_atomic(target, self.render(fmt))
        return target


def has_dot() -> bool:
    """Whether Graphviz's `dot` is on the PATH (needed for images, not for .dot files)."""
    return shutil.which("dot") is not None


def diagram(trace: Trace, level: str = "stage") -> Diagram:
    """A block diagram of `trace` at `level`: stage, block or layer (see LEVELS)."""
    if level not in LEVELS:
        raise ArchvizError(f"unknown diagram level {level!r}; choose one of {', '.join(LEVELS)}")
    build = {"stage": _stage_level, "block": _block_level, "layer": _layer_level}
    return Diagram(build[level](trace).source)


def _chain(g: graphviz.Digraph, trace: Trace, records: list[ModuleRecord]) -> graphviz.Digraph:
    """Not ResNet-like: modules in call order, input to output (call order, not data flow)."""
    prev, shape = "~input", trace.input_shapes
    for record in records:
        nid = node_id(trace, record)
        g.node(nid, label(record.name, layer_text(record)))
        g.edge(prev, nid, label=label(shape_text(shape)))
        prev, shape = nid, record.output_shapes
    g.edge(prev, "~output", label=label(shape_text(trace.output_shapes)))
    return g


def _stage_level(trace: Trace) -> graphviz.Digraph:
    """Stem, one node per stage (block type x count), head; shapes on the edges."""
    g, arch = graph(trace, "stage"), trace.architecture
    if arch is None:
        return _chain(g, trace, [r for r in trace.records if r.depth == 1])
    prev, shape = "~input", trace.input_shapes
    for part in trace.stages():
        if part.name in arch.stages:
            nid = node_id(trace, trace.get(part.name))
            lines = [part.name, f"{part.blocks} × {arch.block}"]
        else:
            names = arch.stem if part.name == "stem" else arch.head
            nid, lines = f"~{part.name}", [part.name, *summary_lines(part_leaves(trace, names))]
        lines.append(f"{si(part.params, ' params', 1)} · {si(part.macs, ' MACs', 1)}")
        g.node(nid, label(*lines), fillcolor=fill(trace, part.name))
        g.edge(prev, nid, label=label(shape_text(shape)))
        prev, shape = nid, part.output_shape
    g.edge(prev, "~output", label=label(shape_text(shape)))
    return g


def _part_node(g: graphviz.Digraph, trace: Trace, part: str) -> str:
    """The stem or head as one node listing its layers."""
    arch = trace.architecture
    assert arch is not None
    lines = summary_lines(part_leaves(trace, arch.stem if part == "stem" else arch.head))
    g.node(f"~{part}", label(part, *lines), fillcolor=fill(trace, part))
    return f"~{part}"


def _stage_attrs(c: graphviz.Digraph, trace: Trace, stage: str, count: int, block: str) -> None:
    shade = fill(trace, stage)
    c.attr(label=label(f"{stage} · {count} × {block}"), labeljust="l", fontsize="11")
    c.attr(style="rounded,filled", fillcolor=shade, color=shade)


def _shortcut(edges: Edges, block: Block, tail: str, add: str) -> None:
    """Identity shortcuts dashed; projections solid, coloured and labelled."""
    if not block.shortcut:
        edges.add(tail, add, style="dashed")
        return
    text = " · ".join(summary_lines(list(block.shortcut)))
    edges.add(tail, add, label=label(text), color=PROJECTION, fontcolor=PROJECTION)


def _block_level(trace: Trace) -> graphviz.Digraph:
    """Every block a node in a cluster per stage; each block's add and shortcut drawn."""
    g, arch, edges = graph(trace, "block"), trace.architecture, Edges()
    if arch is None:
        return _chain(g, trace, [r for r in trace.records if r.depth == 1])
    prev = _part_node(g, trace, "stem")
    edges.add("~input", prev, label=label(shape_text(trace.input_shapes)))
    for i, stage in enumerate(arch.stages):
        with g.subgraph(name=f"cluster_{i}") as c:
            _stage_attrs(c, trace, stage, arch.layers[i], arch.block)
            for j, block in enumerate(blocks(trace, stage)):
                nid = node_id(trace, block.record)
                add = node_id(trace, block.record, "~add")
                with c.subgraph() as row:  # block and its add side by side: half the height
                    row.attr(rank="same")
                    row.node(nid, label(block.record.name, brief(block, arch.groups)))
                    row.node(add, "+", shape="circle", width="0.22", fixedsize="true")
                shape = label(shape_text(block.record.input_shapes)) if j == 0 else None
                edges.add(prev, nid, label=shape)
                edges.add(nid, add)
                _shortcut(edges, block, prev, add)
                prev = add
    head = _part_node(g, trace, "head")
    edges.add(prev, head, label=label(shape_text(trace.get(arch.head[0]).input_shapes)))
    edges.add(head, "~output", label=label(shape_text(trace.output_shapes)))
    return edges.draw(g)


def _layer_level(trace: Trace) -> graphviz.Digraph:
    """Inside the blocks: conv, BN, ReLU and the add; node width follows the channels."""
    g, arch, edges = graph(trace, "layer"), trace.architecture, Edges()
    if arch is None:
        return _chain(g, trace, trace.leaves())
    prev = _leaf_cluster(g, edges, trace, "stem", "~input")
    for i, stage in enumerate(arch.stages):
        with g.subgraph(name=f"cluster_{i}") as c:
            _stage_attrs(c, trace, stage, arch.layers[i], arch.block)
            for j, block in enumerate(blocks(trace, stage)):
                prev = _block_inside(c, edges, trace, block, prev, f"cluster_{i}_{j}")
    prev = _leaf_cluster(g, edges, trace, "head", prev)
    edges.add(prev, "~output", label=label(shape_text(trace.output_shapes)))
    return edges.draw(g)


def _leaf_cluster(g: graphviz.Digraph, edges: Edges, trace: Trace, part: str, prev: str) -> str:
    """The stem or head as a cluster of its leaves in call order; returns the last id."""
    arch = trace.architecture
    assert arch is not None
    shade = fill(trace, part)
    with g.subgraph(name=f"cluster_{part}") as c:
        c.attr(label=label(part), labeljust="l", fontsize="11")
        c.attr(style="rounded,filled", fillcolor=shade, color=shade)
        shown = None  # label an edge only where the shape changes
        for record in part_leaves(trace, arch.stem if part == "stem" else arch.head):
            nid, shape = node_id(trace, record), shape_text(record.input_shapes)
            c.node(nid, label(layer_text(record)))
            edges.add(prev, nid, label=label(shape) if shape != shown else None)
            prev, shown = nid, shape
    return prev


def _block_inside(
    g: graphviz.Digraph, edges: Edges, trace: Trace, block: Block, prev: str, name: str
) -> str:
    """One block as a cluster: the branch's leaves, the add, the shortcut, what follows."""
    groups = trace.architecture.groups if trace.architecture else 1
    widest = max(channels(r.output_shapes) or 1 for r in (*block.main, *block.after))
    add = node_id(trace, block.record, "~add")
    with g.subgraph(name=name) as c:
        c.attr(label=label(f"{block.record.name} · {block.record.type}"), fontsize="9")
        c.attr(style="rounded,filled", fillcolor="white", color=LINE)
        tail, first = prev, label(shape_text(block.record.input_shapes))
        for record in (*block.main, None, *block.after):
            if record is None:  # the residual add, between the branch and the activation
                c.node(add, "+", shape="circle", width="0.22", fixedsize="true")
                edges.add(tail, add)
                tail = add
                continue
            nid = node_id(trace, record)
            width = 0.45 + 2.0 * (channels(record.output_shapes) or 1) / widest
            c.node(nid, label(layer_text(record, groups)), width=f"{width:.2f}")
            edges.add(tail, nid, label=first if tail == prev else None)
            tail = nid
        cut = prev
        for record in block.shortcut:
            nid = node_id(trace, record)
            c.node(nid, label(layer_text(record, groups)), color=PROJECTION, fontcolor=PROJECTION)
            edges.add(cut, nid, color=PROJECTION)
            cut = nid
        style = "solid" if block.shortcut else "dashed"
        edges.add(cut, add, style=style, color=PROJECTION if block.shortcut else None)
    return tail
