"""A View (diagram_view.py) as DOT: boxes as clusters, units as nodes, labels escaped.

Node ids are the graph's own ids where they are plain ('layer1.0.conv1', 'add_3'; a
second call 'fc:1' becomes 'fc~1'), else '#' + the unit's position: stable for the same
model, and never equal to a plain id. All user text goes through `label`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import graphviz

from archviz.analysis.graph import Group, groups
from archviz.records import ModuleRecord, Node, Trace
from archviz.render.diagram.parts import (
    LINE,
    PART_FILLS,
    PROJECTION,
    STAGE_FILLS,
    Edges,
    brief,
    figures,
    first_shape,
    graph,
    label,
    layer_text,
    moved_text,
    shape_text,
    summary_lines,
    tooltip,
)
from archviz.render.diagram.view import View
from archviz.render.explain import CONTAINERS

_PLAIN = re.compile(r"[A-Za-z0-9_.]+(:\d+)?")
SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "matmul": "@"}
MAX_LINES = 2  # a longer leaf summary becomes one line of its weighted layers
MAX_ID_CHARS = 200  # a longer plain id becomes '#' + position (DOT's IDs are bounded)


@dataclass
class _Labels:
    trace: Trace
    view: View

    @cached_property
    def tree(self) -> dict[str, Group]:
        return groups(self.trace)

    @cached_property
    def nodes(self) -> dict[str, Node]:
        return {n.id: n for n in self.trace.nodes}

    @cached_property
    def flat(self) -> set[str]:
        """Skeletons with one merge: no box; their branch's node carries the title."""
        ops = [u.box for u in self.view.units.values() if u.kind == "op"]
        return {
            b for b, box in self.view.boxes.items() if box.kind == "skeleton" and ops.count(b) == 1
        }

    @cached_property
    def ids(self) -> dict[str, str]:
        out = {}
        for i, uid in enumerate([*self.view.units, *self.view.boxes]):
            parts = uid.lstrip("~").split("~")
            plain = all(_PLAIN.fullmatch(p) for p in parts) and uid.count("~") <= 1
            plain = plain and len(uid) <= MAX_ID_CHARS  # a 100 kB name is no node id
            out[uid] = uid.replace(":", "~") if plain else f"#{i}"
        return out

    def record(self, item: str) -> ModuleRecord | None:
        index = self.tree[item].record if item in self.tree else None
        node = self.nodes.get(item)
        if node is not None:
            index = node.record
        return self.trace.records[index] if index is not None else None

    def leaves(self, items: tuple[str, ...]) -> list[ModuleRecord]:
        """The module records under `items` (nodes or groups), in run order."""
        wanted = set(items)
        out = []
        for node in self.trace.nodes:
            if node.record is not None and wanted & {node.id, *node.scope}:
                out.append(self.trace.records[node.record])
        return out

    def totals(self, items: tuple[str, ...]) -> tuple[int, int]:
        records = [r for r in (self.record(i) for i in items) if r is not None]
        if len(records) < len(items):  # ops or parts inside: sum the leaves instead
            records = self.leaves(items)
        return sum(r.params_total for r in records), sum(r.macs_total for r in records)

    def summary(self, items: tuple[str, ...]) -> list[str]:
        leaves = self.leaves(items)
        lines = summary_lines(leaves)
        return lines if len(lines) <= MAX_LINES else [brief(leaves)]

    def name(self, item: str, box: str | None) -> str:
        """A module's name inside its box: 'conv1' in box 'layer1.0'."""
        record = self.record(item)
        full = record.name if record is not None else item
        parent = self.record(box) if box and box in self.tree else None
        prefix = f"{parent.name}." if parent is not None and parent.name else ""
        short = full[len(prefix) :] if prefix and full.startswith(prefix) else full
        return full if short.isdigit() else short  # 'layer1.0', not '0'

    def kind_text(self, gid: str) -> str:
        """'3 × Bottleneck' when every child is a group of one type (several, or inside a
        plain container), else the group's own type."""
        group = self.tree[gid]
        kids = [self.tree[k].type for k in group.children if k in self.tree]
        plain = group.type in CONTAINERS  # a Sequential is what it holds
        if (
            kids
            and len(kids) == len(group.children)
            and len(set(kids)) == 1
            and (len(kids) > 1 or plain)
        ):
            return f"{len(kids)} × {kids[0]}"
        return group.type

    def title(self, gid: str, run: tuple[str, ...], box: str | None) -> list[str]:
        """A group's name and type; a run's first and last names and 'x N'."""
        if len(run) > 1:
            names = f"{self.name(run[0], box)} … {self.name(run[-1], box)}"
            return [names, f"× {len(run)} {self.tree[gid].type}"]
        return [self.name(gid, box), self.kind_text(gid)]

    def unit_lines(self, uid: str) -> list[str]:
        unit = self.view.units[uid]
        record = self.record(uid)
        if unit.kind in ("input", "output"):
            return [unit.kind, shape_text(self.nodes[uid].output_shapes)]
        if unit.kind == "op":
            after = [layer_text(r) for r in self.leaves(unit.members[1:])]
            return [" ".join([SYMBOLS.get(self.nodes[uid].type, self.nodes[uid].type), *after])]
        if unit.kind == "module" and record is not None:
            out, params, macs = record.output_shapes, record.params_total, record.macs_total
            return [layer_text(record), figures(out, params, macs)]
        run = unit.run or (uid,)
        params, macs = self.totals(run)
        out = self._output(unit.members[-1] if unit.kind == "chain" else run[-1])
        if unit.kind == "group":
            lines = self.title(uid, unit.run, unit.box)
            summary = summary_lines(self.leaves((uid,)))
            lines += summary if len(summary) <= 2 else []
            return [*lines, figures(out, params, macs, len(run))]
        if unit.kind == "part":
            return [
                uid.lstrip("~"),
                *self.summary(unit.members),
                figures(None, *self.totals(unit.members)),
            ]
        params, macs = self.totals(unit.members)
        if unit.box in self.flat and uid in self.view.branches:
            box = self.view.boxes[unit.box]
            params, macs = self.totals(box.run or (box.id,))
            title = self.title(box.id, box.run, box.parent)
            out = self._output(box.run[-1] if box.run else box.id)
            lines = [" · ".join(title), *self.summary(unit.members)]
            return [*lines, figures(out, params, macs, len(box.run))]
        if unit.box and (params, macs) == self.totals((unit.box,)):
            return self.summary(unit.members) or self.op_names(unit.members)
        lines = [
            line for line in (*self.summary(unit.members), figures(None, params, macs)) if line
        ]
        return lines or self.op_names(unit.members)

    def op_names(self, items: tuple[str, ...]) -> list[str]:
        """A chain of ops only (FPN's upsampling): their names, as an op node shows one."""
        names = [self.nodes[i].type for i in items if i in self.nodes]
        return [" · ".join(dict.fromkeys(names))] if names else []

    def _output(self, item: str):
        record = self.record(item)
        if record is not None:
            return record.output_shapes
        node = self.nodes.get(item)
        return node.output_shapes if node is not None else None


def draw(trace: Trace, view: View, level: str) -> graphviz.Digraph:
    """The View as a digraph: nested clusters, nodes, then every edge at the top level."""
    g = graph(trace, level)
    labels = _Labels(trace, view)
    contents: dict[str | None, list[tuple[str, str]]] = {}
    for bid, box in view.boxes.items():
        contents.setdefault(box.parent, []).append(("box", bid))
    for uid, unit in view.units.items():
        contents.setdefault(unit.box, []).append(("unit", uid))
    order = {uid: i for i, uid in enumerate([*view.units, *view.boxes])}
    first = {bid: min(_first_unit(view, contents, bid), default=0) for bid in view.boxes}
    for items in contents.values():
        items.sort(key=lambda kv: first[kv[1]] if kv[0] == "box" else order[kv[1]])
    fills = iter(STAGE_FILLS * 64)
    _fill(g, labels, contents, None, fills)
    edges, said = Edges(), set()
    for (src, dst), found in view.edges.items():
        role = view.roles.get((src, dst))
        shapes = {e.shape for e in found}
        tails = {e.src for e in found}
        shape = next(iter(shapes)) if len(shapes) == 1 else None
        text = _edge_text(labels, src, shape) if (src, shape) not in said else None
        said.add((src, shape))  # a fan-out says its shape once
        # several tensors into one node (a run's outputs into a cat): say how many
        if len(tails) > 1 and len({e.dst for e in found}) == 1 and shape is not None:
            text = f"{len(tails)} × {shape_text(shape)}"
        if (src, dst) in view.bundled:  # dense connectivity: one edge for all the inputs
            text = f"+ {view.bundled[(src, dst)] - 1} earlier inputs"
        moves = {(getattr(e, "via", ()), getattr(e, "before", None)) for e in found}
        via, before = next(iter(moves))
        if len(moves) == 1 and via and shape is not None:  # glue carried by the edge
            text = moved_text(via, before, shape)
        edges.add(
            labels.ids[src],
            labels.ids[dst],
            label=label(text) if text else None,
            style="dashed" if role == "identity" else None,
            color=PROJECTION if role == "projection" else None,
        )
    return edges.draw(g)


def _first_unit(view: View, contents, bid: str) -> list[int]:
    order = {uid: i for i, uid in enumerate(view.units)}
    found = []
    for kind, item in contents.get(bid, []):
        found += [order[item]] if kind == "unit" else _first_unit(view, contents, item)
    return found


def _edge_text(labels: _Labels, src: str, shape) -> str | None:
    """An edge's shape, unless the node it leaves already shows it."""
    if shape is None:
        return None
    if shape in {e.shape for (_, d), found in labels.view.edges.items() if d == src for e in found}:
        return None  # unchanged by the node it leaves: said on the way in
    unit = labels.view.units[src]
    shown = None
    if unit.kind in ("module", "group", "input"):
        shown = labels._output(src if unit.kind != "group" else (unit.run or (src,))[-1])
    elif unit.box in labels.flat and src in labels.view.branches:  # titled with its block
        box = labels.view.boxes[unit.box]
        shown = labels._output(box.run[-1] if box.run else box.id)
    if shown is not None and first_shape(shown) == shape:
        return None
    return shape_text(shape)


def _fill(g, labels: _Labels, contents, parent: str | None, fills) -> None:
    """Draw the boxes and units inside `parent`, boxes as clusters, recursively."""
    for kind, item in contents.get(parent, []):
        if kind == "unit":
            _node(g, labels, item, fills if parent is None else None)
            continue
        box = labels.view.boxes[item]
        if item in labels.flat:
            _flat(g, labels, contents, item)
            continue
        with g.subgraph(name=f"cluster_{labels.ids[item]}") as c:
            if box.kind == "part":
                name = item.lstrip("~")
                c.attr(label=label(name), labeljust="l", fontsize="11", **tooltip(name))
                shade = PART_FILLS[item]
            else:
                text = " · ".join(labels.title(item, box.run, box.parent))
                if box.kind == "group" and item in labels.view.varied:
                    text += " · widths vary, first shown"  # DenseNet's widening layers
                if box.kind == "skeleton":
                    params, macs = labels.totals(box.run or (item,))
                    text += " · " + figures(None, params, macs, len(box.run))
                size = "10" if parent else "11"
                c.attr(label=label(text), labeljust="l", fontsize=size, **tooltip(text))
                shade = next(fills) if parent is None else "white"
            style = "rounded,filled" if shade != "white" else "rounded"
            c.attr(style=style, fillcolor=shade, color=shade if shade != "white" else LINE)
            _fill(c, labels, contents, item, fills)


def _flat(g, labels: _Labels, contents, box: str) -> None:
    """A block drawn without a box: its branch beside its merge (or beside its projection,
    the merge below), so the shortcuts run straight down beside the blocks."""
    units = [uid for kind, uid in contents.get(box, []) if kind == "unit"]
    cuts = {s for (s, _), r in labels.view.roles.items() if r == "projection"} & set(units)
    beside = cuts or {u for u in units if labels.view.units[u].kind == "op"}
    row = sorted(u for u in units if u in labels.view.branches or u in beside)
    row.sort(key=lambda u: u not in labels.view.branches)  # the branch left, the rest right
    for uid in units:
        if uid not in row:
            _node(g, labels, uid, None, group="~cut")
    with g.subgraph() as same:
        same.attr(rank="same")
        for uid in row:
            side = "~branch" if uid in labels.view.branches else "~cut"
            _node(same, labels, uid, None, group=side)


def _node(g, labels: _Labels, uid: str, fills, **extra: str) -> None:
    """One node; `extra` attributes (a layout group) are passed on."""
    unit = labels.view.units[uid]
    lines = [line for line in labels.unit_lines(uid) if line]
    attrs: dict[str, str] = dict(extra)
    if unit.kind == "op":
        small = len(lines[0]) <= 1
        attrs.update(shape="circle" if small else "box", width="0.22", height="0.22",
                     fixedsize="true" if small else "false", fontsize="9", margin="0.06,0.02",
                     style="filled" if small else "rounded,filled")  # fmt: skip
    elif unit.kind in ("input", "output"):
        attrs.update(shape="plain", style="", fontcolor=LINE)
    elif unit.kind == "part":
        attrs.update(fillcolor=PART_FILLS[uid])
    elif unit.kind == "group" and fills is not None:
        attrs.update(fillcolor=next(fills))
    elif any(s == uid and r == "projection" for (s, _), r in labels.view.roles.items()):
        attrs.update(color=PROJECTION, fontcolor=PROJECTION)
    named = labels.ids[uid].startswith("#")  # its name is not its id: say it on hover
    tip = tooltip(uid.lstrip("~"), *lines, always=True) if named else tooltip(*lines)
    g.node(labels.ids[uid], label(*lines), **attrs, **tip)
