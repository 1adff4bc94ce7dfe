"""What a diagram shows: the traced dataflow graph seen down to a module depth.

Groups (container calls) nested less than `depth` deep are opened and drawn as boxes
around their children; groups at `depth` are closed, one node each. A closed group whose
children merge tensors with a residual op (an add or mul of two or more tensors) is drawn
as its skeleton instead: the merge, and each chain of children feeding it as one node, so
no shortcut disappears into a box. A run of structurally identical siblings is drawn
once and marked "x N" (graph.loose_signatures). Everything comes from `Trace.nodes` and
`Trace.edges`; nothing is read from module names. diagram.py turns a View into DOT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise

from archviz.analysis.fold import KEY, MERGE, OP_ROLES
from archviz.analysis.graph import (
    Group,
    groups,
    longest_weighted_path,
    loose_signatures,
    predecessors,
    repeat_runs,
    signatures,
    top_level,
)
from archviz.records import Edge, Node, Trace

# Ops that combine several tensors (archviz.analysis.fold's table: merges, and key ops
# such as matmul and attention): drawn as small nodes of their own, never folded.
MERGES = frozenset(op for op, role in OP_ROLES.items() if role in (MERGE, KEY))
RESIDUAL = frozenset({"add", "sub", "mul"})  # a closed group with one of these shows its skeleton
PARTS = ("stem", "head")  # a ResNet's self-described ends, drawn as one part each in presets


@dataclass(frozen=True)
class Unit:
    """One drawn node: a graph node, a closed group, a chain of a skeleton, or a part."""

    id: str  # a graph id, a group id, '<group>~<first child>' for a chain, '~stem'
    kind: str  # input | output | module | op | group | chain | part
    box: str | None  # the box (opened group, skeleton or part) it sits in
    members: tuple[str, ...]  # the graph nodes and groups it stands for
    run: tuple[str, ...] = ()  # every member of the run it stands for, when drawn once


@dataclass(frozen=True)
class Box:
    """A cluster: an opened group, a closed group's skeleton, or an opened part."""

    id: str
    parent: str | None
    kind: str  # group | skeleton | part
    run: tuple[str, ...] = ()


@dataclass
class View:
    """Units in run order, the boxes around them, and the graph edges behind each drawn edge."""

    units: dict[str, Unit] = field(default_factory=dict)
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: dict[tuple[str, str], list[Edge]] = field(default_factory=dict)
    roles: dict[tuple[str, str], str] = field(default_factory=dict)  # 'identity'/'projection'
    varied: set[str] = field(default_factory=set)  # runs whose members differ in width
    branches: set[str] = field(default_factory=set)  # units that are a residual's main branch
    depth: int = 0  # the module depth it was built to
    bundled: dict[tuple[str, str], int] = field(default_factory=dict)  # edge -> inputs it carries


@dataclass
class _Builder:
    trace: Trace
    depth: int
    collapse: bool
    parts: dict[str, str]  # top-level item -> '~stem' / '~head' (ResNet presets)
    parts_open: bool
    chain_cache: dict[str, dict[str, str]] = field(default_factory=dict)
    skeletons: dict[str, bool] = field(default_factory=dict)

    @cached_property
    def tree(self) -> dict[str, Group]:
        return groups(self.trace)

    @cached_property
    def nodes(self) -> dict[str, Node]:
        return {n.id: n for n in self.trace.nodes}

    @cached_property
    def preds(self) -> dict[str, list[str]]:
        return predecessors(self.trace)

    @cached_property
    def level(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for gid, group in self.tree.items():
            out[gid] = 1 if group.parent is None else out[group.parent] + 1
        return out

    def opened(self, gid: str) -> bool:
        """Above `depth`, and holding more than one thing: a box around a single child
        shows nothing new (presets open every stage, a one-block stage too)."""
        single = len(self.tree[gid].children) == 1 and not self.parts
        return self.level[gid] < self.depth and not single

    @cached_property
    def runs(self) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, ...]], dict]:
        """Group -> (run head, index); head -> members; hidden id -> the head's counterpart."""
        member: dict[str, tuple[str, int]] = {}
        heads: dict[str, tuple[str, ...]] = {}
        alias: dict[str, str] = {}
        if not self.collapse:
            return member, heads, alias
        sig = loose_signatures(self.trace)
        siblings = [top_level(self.trace)]
        siblings += [list(g.children) for g in self.tree.values() if self.opened(g.id)]
        for items in siblings:
            for run in repeat_runs(self.trace, items, sig):
                if len(run) < 2:
                    continue
                heads[run[0]] = tuple(run)
                for i, gid in enumerate(run):
                    member[gid] = (run[0], i)
                    if i:
                        self._align(run[0], gid, alias)
        return member, heads, alias

    def _align(self, head: str, other: str, alias: dict[str, str]) -> None:
        alias[other] = head
        if other in self.tree:
            for a, b in zip(self.tree[head].children, self.tree[other].children, strict=True):
                self._align(a, b, alias)

    def resolve(self, nid: str) -> str:
        """A node of a hidden run member -> its counterpart in the member that is drawn."""
        member, _, alias = self.runs
        while True:
            chain = (*self.nodes[nid].scope, nid)
            if not any(member.get(c, ("", 0))[1] for c in chain):
                return nid
            nid = alias[nid]

    def skeleton(self, gid: str) -> bool:
        if gid not in self.skeletons:
            self.skeletons[gid] = any(self.is_merge(k, RESIDUAL) for k in self.tree[gid].children)
        return self.skeletons[gid]

    def is_merge(self, item: str, kinds: frozenset[str] = MERGES) -> bool:
        node = self.nodes.get(item)
        return (
            node is not None
            and node.kind == "op"
            and node.type in kinds
            and len(set(self.preds[item])) > 1
        )

    def chains(self, gid: str) -> dict[str, str]:
        """A skeleton's children -> the chain unit each is drawn in (merges stand alone)."""
        return _chains(self, gid)

    def unit_of(self, nid: str) -> Unit:
        node = self.nodes[nid]
        for depth, gid in enumerate(node.scope):
            if self.opened(gid):
                continue
            box = node.scope[depth - 1] if depth else self.parts.get(gid)
            if self.skeleton(gid):
                chains = self.chains(gid)
                uid = chains[(*node.scope, nid)[depth + 1]]
                kids = tuple(k for k, c in chains.items() if c == uid)
                return Unit(uid, "op" if uid in self.nodes else "chain", gid, kids)
            return Unit(gid, "group", box, (gid,), self.runs[1].get(gid, ()))
        head = node.scope[0] if node.scope else nid
        part = self.parts.get(head)
        if part is not None and not self.parts_open:
            items = tuple(k for k, v in self.parts.items() if v == part)
            return Unit(part, "part", None, items)
        box = node.scope[-1] if node.scope else (part if part else None)
        return Unit(nid, node.kind, box, (nid,))

    def inside_run(self, edge: Edge) -> bool:
        """An edge between two members of one run: drawn once, it would loop back."""
        member = self.runs[0]
        a = dict(member[c] for c in self.nodes[edge.src].scope if c in member)
        b = dict(member[c] for c in self.nodes[edge.dst].scope if c in member)
        return any(a[h] != b[h] for h in a.keys() & b.keys())


def _chains(b: _Builder, gid: str) -> dict[str, str]:
    if gid in b.chain_cache:
        return b.chain_cache[gid]
    kids = b.tree[gid].children
    holder: dict[str, str] = {}
    for node in b.trace.nodes:
        chain = (*node.scope, node.id)
        if gid in chain:
            holder[node.id] = chain[chain.index(gid) + 1]
    succs: dict[str, set[str]] = {k: set() for k in kids}
    preds: dict[str, set[str]] = {k: set() for k in kids}
    for e in b.trace.edges:
        src, dst = holder.get(e.src, "~out"), holder.get(e.dst, "~out")
        if src != dst:
            if src in succs:
                succs[src].add(dst)
            if dst in preds:
                preds[dst].add(src)
    out: dict[str, str] = {}
    prev = ""
    for kid in kids:
        joins = (
            prev
            and not b.is_merge(prev)
            and not b.is_merge(kid)
            and succs[prev] == {kid}
            and preds[kid] == {prev}
        )
        if joins:
            out[kid] = out[prev]
        elif b.is_merge(kid):
            out[kid] = kid
        elif prev and b.is_merge(prev) and _activation(b, kid, preds, prev):
            out[kid] = out[prev]  # the ReLU after a residual add: one '+ ReLU' node
        else:
            out[kid] = f"{gid}~{kid}"
        prev = kid
    b.chain_cache[gid] = out
    return out


def _activation(b: _Builder, kid: str, preds: dict[str, set[str]], merge: str) -> bool:
    """A parameter-free module right after a merge, fed by it alone (the ReLU after a
    residual add): drawn inside the merge's node."""
    node = b.nodes.get(kid)
    record = b.trace.records[node.record] if node and node.record is not None else None
    return record is not None and record.params_total == 0 and preds[kid] == {merge}


def build_view(
    trace: Trace, depth: int, collapse: bool = True, parts_open: bool | None = None
) -> View:
    """The graph of `trace` down to `depth`; `parts_open` given: a ResNet preset."""
    parts = _parts(trace) if parts_open is not None else {}
    b = _Builder(trace, depth, collapse, parts, bool(parts_open))
    view = View(depth=depth)
    for node in trace.nodes:
        unit = b.unit_of(b.resolve(node.id))
        if unit.id not in view.units:
            _add_boxes(b, view, unit.box)
            view.units[unit.id] = unit
    for e in trace.edges:
        if b.inside_run(e):
            continue
        src, dst = b.unit_of(b.resolve(e.src)).id, b.unit_of(b.resolve(e.dst)).id
        if src != dst:
            view.edges.setdefault((src, dst), []).append(e)
    _bundle(view)
    _shortcut_roles(b, view)
    strict = signatures(trace)
    for head, run in b.runs[1].items():
        if len({strict(g) for g in run}) > 1:
            view.varied.add(head)
    return view


BUNDLE = 3  # a node reading this many earlier nodes that feed each other: one edge


def _bundle(view: View) -> None:
    """Dense connectivity as one edge: when a node reads BUNDLE or more units that feed
    one another in a chain (each dense layer reads every earlier one), only the edge from
    the last is drawn, marked with how many inputs it stands for. Inception's parallel
    branches do not feed each other, and a residual add has two inputs: neither bundles."""
    into: dict[str, list[str]] = {}
    for src, dst in view.edges:
        into.setdefault(dst, []).append(src)
    order = {uid: i for i, uid in enumerate(view.units)}
    for dst, srcs in into.items():
        chain = sorted(srcs, key=lambda u: order.get(u, -1))
        if len(chain) < BUNDLE or not all((a, b) in view.edges for a, b in pairwise(chain)):
            continue
        for src in chain[:-1]:
            del view.edges[(src, dst)]
        view.bundled[(chain[-1], dst)] = len(chain)


def _add_boxes(b: _Builder, view: View, box: str | None) -> None:
    """The box and every box around it, outermost first, each once."""
    chain: list[str] = []
    while box is not None and box not in view.boxes and box not in chain:
        chain.append(box)
        box = b.tree[box].parent if box in b.tree else None
    for gid in reversed(chain):
        if gid in b.tree:
            group = b.tree[gid]
            parent = group.parent if group.parent else b.parts.get(gid)
            kind = "group" if b.opened(gid) else "skeleton"
            view.boxes[gid] = Box(gid, parent, kind, b.runs[1].get(gid, ()))
        else:
            view.boxes[gid] = Box(gid, None, "part")


def _shortcut_roles(b: _Builder, view: View) -> None:
    """Into each residual merge, the input on the main path (else the one with the most
    work) is the branch; the others are
    shortcuts: 'projection' when they pass through weighted layers inside the block, else
    'identity' (the block's input itself)."""
    work = {uid: sum(_macs(b, m) for m in unit.members) for uid, unit in view.units.items()}
    path = [b.unit_of(b.resolve(n)).id for n in longest_weighted_path(b.trace)]
    main = set(pairwise(path))  # edges, not nodes: a skip's source is on the path too
    for src, dst in view.edges:
        if not b.is_merge(dst, RESIDUAL):
            continue
        inputs = [s for (s, d) in view.edges if d == dst]
        branch = max(inputs, key=lambda s: ((s, dst) in main, work.get(s, 0), -inputs.index(s)))
        view.branches.add(branch)
        if src != branch:
            inside = view.units[src].box == view.units[dst].box  # a branch of this block
            role = "projection" if inside and work.get(src, 0) > 0 else "identity"
            view.roles[(src, dst)] = role


def _macs(b: _Builder, item: str) -> int:
    if item in b.tree:
        rec = b.tree[item].record
        return b.trace.records[rec].macs_total if rec is not None else 0
    node = b.nodes.get(item)
    if node is None or node.record is None:
        return 0
    return b.trace.records[node.record].macs_total


def _parts(trace: Trace) -> dict[str, str]:
    """Top-level items from a ResNet's first stem module to its last (ops between them
    included) -> '~stem'; the same for the head. Read from the model's self-description."""
    arch = trace.architecture
    if arch is None:
        return {}
    items = top_level(trace)
    out: dict[str, str] = {}
    for part, names in (("stem", arch.stem), ("head", arch.head)):
        hits = [i for i, item in enumerate(items) if item.partition(":")[0] in names]
        if hits:
            for item in items[hits[0] : hits[-1] + 1]:
                out[item] = f"~{part}"
    return out
