"""A network's depth, and the formula behind it, derived from the observed dataflow graph.

Depth is the number of weighted layers (conv, linear, attention) on the longest
input-to-output path: He et al. count ResNets this way, Simonyan & Zisserman count VGG
this way, Szegedy et al. count GoogLeNet this way. The formula groups that path's layers
by the units that hold them, found by structure:

- a container call (nn.Sequential, ModuleList, ModuleDict and subclasses) only chains
  its children, so it is opened; a run of two or more structurally similar blocks in it
  becomes one term, "3 x 4" (4 Bottlenecks of 3 layers each);
- any other module with children is a unit (a Bottleneck, an Inception module), counted
  as the layers of its own that lie on the path;
- a module holding a run of like blocks that it calls from a ModuleList (a
  transformer's layers: the list itself never runs) is opened the same way, "4 x 12";
- equal terms side by side merge, "3 x (3 + 4 + 6 + 3)", and so do terms that repeat in
  an interleaved pattern (DenseNet's dense blocks between its transitions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from archviz.analysis.graph import groups, is_weighted, longest_weighted_path, record_of, top_level
from archviz.records import Trace


@dataclass(frozen=True)
class Term:
    """One term of the formula: `per_unit` weighted layers in each unit, `counts` per run."""

    unit: str  # the unit's type: "Bottleneck", "_DenseLayer", "Conv2d"
    within: str  # the type of what holds the units: "Sequential", "_Transition", "ResNet"
    per_unit: int
    counts: tuple[int, ...]  # units per run: (3, 4, 6, 3)
    where: tuple[str, ...]  # graph ids of the runs' parents (or of single units)
    layer_types: tuple[str, ...]  # the weighted layers' types on the path ("Conv2d",)

    @property
    def layers(self) -> int:
        return self.per_unit * sum(self.counts)

    @property
    def text(self) -> str:
        """'3 x (3 + 4 + 6 + 3)', '2 x 9', '13'."""
        if self.per_unit == 1:
            return str(sum(self.counts))
        if len(self.counts) == 1:
            return (
                str(self.per_unit) if self.counts[0] == 1 else f"{self.per_unit} x {self.counts[0]}"
            )
        return f"{self.per_unit} x ({' + '.join(map(str, self.counts))})"


@dataclass(frozen=True)
class Depth:
    """The main path and its formula: '1 + 3 x (3 + 4 + 6 + 3) + 1 = 50'."""

    depth: int
    formula: str
    terms: tuple[Term, ...]
    main_path: tuple[str, ...]  # graph ids of the weighted layers on the path, in order
    beside: tuple[str, ...]  # weighted layers off the path: shortcuts, parallel branches


@dataclass
class _Raw:
    unit: str
    per_unit: int
    parent: str  # the enclosing group's id ("" for the model)
    parent_type: str
    counts: list[int] = field(default_factory=lambda: [1])
    where: list[str] = field(default_factory=list)
    layer_types: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, int, str]:
        return self.unit, self.per_unit, self.parent_type


def derive_depth(trace: Trace) -> Depth:
    """Count the weighted layers on the main path and group them into a formula."""
    path = longest_weighted_path(trace)
    nodes = {n.id: n for n in trace.nodes}
    weighted = [i for i in path if is_weighted(record_of(trace, nodes[i]))]
    on_path = Counter[str]()
    inside = Counter[str]()
    for node in trace.nodes:
        if is_weighted(record_of(trace, node)):
            for gid in (*node.scope, node.id):
                inside[gid] += 1
    for i in weighted:
        for gid in (*nodes[i].scope, i):
            on_path[gid] += 1
    walker = _Walker(trace, on_path, inside)
    raws = [r for item in top_level(trace) if on_path[item] for r in walker.terms(item, "", "")]
    terms = tuple(_term(r) for r in _merge(raws))
    depth = len(weighted)
    formula = " + ".join(t.text for t in terms) + f" = {depth}" if terms else "0"
    beside = tuple(
        n.id for n in trace.nodes if is_weighted(record_of(trace, n)) and n.id not in set(weighted)
    )
    return Depth(depth, formula, terms, tuple(weighted), beside)


class _Walker:
    """Turns the groups on the main path into raw terms (see the module docstring)."""

    def __init__(self, trace: Trace, on_path: Counter[str], inside: Counter[str]) -> None:
        self.trace = trace
        self.tree = groups(trace)
        self.nodes = {n.id: n for n in trace.nodes}
        self.on_path = on_path
        self.inside = inside
        self._stacks: dict[str, bool] = {}

    def _container(self, gid: str) -> bool:
        rec = self.tree[gid].record
        return rec is not None and self.trace.records[rec].container

    def _kids(self, gid: str) -> list[str]:
        return [k for k in self.tree[gid].children if self.on_path[k]]

    def _run(self, kids: list[str]) -> bool:
        """Two or more blocks of one type, each with the same layers on the path."""
        return (
            len(kids) >= 2
            and all(k in self.tree for k in kids)
            and len({(self.tree[k].type, self.on_path[k]) for k in kids}) == 1
        )

    def _stack(self, gid: str) -> bool:
        return gid in self.tree and self._container(gid) and self._run(self._kids(gid))

    def _types(self, item: str) -> set[str]:
        return {
            n.type for n in self.trace.nodes
            if item in (*n.scope, n.id) and is_weighted(record_of(self.trace, n))
        }  # fmt: skip

    def terms(self, item: str, parent: str, parent_type: str) -> list[_Raw]:
        if item not in self.tree:
            node = self.nodes[item]
            return [_Raw(node.type, 1, parent, parent_type, where=[item], layer_types={node.type})]
        group = self.tree[item]
        kids = self._kids(item)
        if self._container(item):
            if self._run(kids):
                unit = self.tree[kids[0]].type
                raw = _Raw(unit, self.on_path[kids[0]], item, group.type, [len(kids)], [item])
                raw.layer_types = self._types(item)
                return [raw]
            return [r for k in kids for r in self.terms(k, item, group.type)]
        # A module that only wraps a stack of blocks (a ViT Encoder) is opened like one.
        wrapper = self.inside[item] == self.on_path[item] and len(kids) == 1
        if wrapper and self._stack(kids[0]):
            return self.terms(kids[0], item, group.type)
        if self._has_stack(item):  # a transformer's blocks in a ModuleList: never called
            return self._open(kids, item, group.type)
        raw = _Raw(group.type, self.on_path[item], parent, parent_type, where=[item])
        raw.layer_types = self._types(item)
        return [raw]

    def _has_stack(self, gid: str) -> bool:
        """Whether a module (not a container) holds, at any depth below modules like it,
        two or more neighbouring blocks of one type with the same layers on the path."""
        if gid not in self.tree or self._container(gid):
            return False
        if gid not in self._stacks:
            kids = self._kids(gid)
            self._stacks[gid] = any(self._in_run(kids)) or any(self._has_stack(k) for k in kids)
        return self._stacks[gid]

    def _in_run(self, kids: list[str]) -> list[bool]:
        """Per child: a block with a neighbour of its type and layers on the path (2+)."""
        keys = [(self.tree[k].type, self.on_path[k]) if k in self.tree else None for k in kids]
        like = [a is not None and a == b and a[1] >= 2 for a, b in pairwise(keys)]
        return [(i > 0 and like[i - 1]) or (i < len(like) and like[i]) for i in range(len(kids))]

    def _open(self, kids: list[str], item: str, kind: str) -> list[_Raw]:
        """Terms of a module's children, each run of like blocks one term ("4 x 12"); a
        child that holds such a run itself is opened in turn (Whisper's encoder)."""
        out: list[_Raw] = []
        previous = None
        for kid, in_run in zip(kids, self._in_run(kids), strict=True):
            key = (self.tree[kid].type, self.on_path[kid]) if in_run else None
            if key is not None and key == previous:
                out[-1].counts[-1] += 1
                out[-1].where.append(kid)
            elif in_run or (
                self.on_path[kid] >= 2 and not self._has_stack(kid) and kid in self.tree
            ):
                raw = _Raw(self.tree[kid].type, self.on_path[kid], item, kind, where=[kid])
                raw.layer_types = self._types(kid)
                out.append(raw)
            else:
                out += self.terms(kid, item, kind)
            previous = key
        return out


def _merge(raws: list[_Raw]) -> list[_Raw]:
    """Merge neighbours with one key; then interleaved repeats (only where all between recur)."""
    merged: list[_Raw] = []
    for raw in raws:
        last = merged[-1] if merged else None
        if last is not None and last.key == raw.key:
            if (
                last.parent == raw.parent
                and raw.per_unit == last.per_unit
                and len(raw.counts) == 1
                and raw.where[0] != raw.parent
            ):
                last.counts[-1] += raw.counts[0]
            else:
                last.counts += raw.counts
            last.where += raw.where
            last.layer_types |= raw.layer_types
        else:
            merged.append(raw)
    keys = Counter(r.key for r in merged)
    out: list[_Raw] = []
    for i, raw in enumerate(merged):
        first = next(j for j, r in enumerate(merged) if r.key == raw.key)
        between = merged[first + 1 : i]
        if first < i and all(keys[r.key] > 1 for r in between):
            target = next(r for r in out if r.key == raw.key)
            target.counts += raw.counts
            target.where += raw.where
            target.layer_types |= raw.layer_types
        else:
            out.append(raw)
    return out


def _term(raw: _Raw) -> Term:
    return Term(
        raw.unit,
        raw.parent_type,
        raw.per_unit,
        tuple(raw.counts),
        tuple(raw.where),
        tuple(sorted(raw.layer_types)),
    )
