"""The dataflow graph's analysis: one graph, read by explain, diagram, explorer and verify.

Pure functions of a Trace's `nodes` and `edges` (see archviz/tracing/dataflow.py for how they
are recorded). Nothing here looks at module names for structure: groups come from the
call scopes the trace observed, repeated units from structural signatures, depth from
the longest weighted path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from archviz.records import Edge, ModuleRecord, Node, Trace


@dataclass(frozen=True)
class Group:
    """A container module call (Sequential, a residual block): the nodes that ran inside it."""

    id: str
    type: str
    record: int | None  # index into Trace.records
    parent: str | None  # the enclosing group's id; None at the top level
    children: tuple[str, ...]  # ids of the nodes and groups directly inside, in run order


def predecessors(trace: Trace) -> dict[str, list[str]]:
    preds: dict[str, list[str]] = {n.id: [] for n in trace.nodes}
    for e in trace.edges:
        preds[e.dst].append(e.src)
    return preds


def record_of(trace: Trace, node: Node) -> ModuleRecord | None:
    return trace.records[node.record] if node.record is not None else None


def is_weighted(record: ModuleRecord | None) -> bool:
    """A weighted layer holds parameters and does multiply-adds: conv, linear, attention.

    Batch norm holds parameters but only scales and shifts (no MACs); ReLU and pooling
    hold none. Structural, so a user's Conv2d subclass counts without a name match.
    """
    return record is not None and record.params_total > 0 and record.macs_total > 0


def longest_weighted_path(trace: Trace) -> list[str]:
    """The input-to-output path with the most weighted layers: the network's main path.

    Nodes are in execution order, which is topological, so one pass finds it. Ties go to
    the earlier predecessor, so the answer is deterministic.
    """
    preds = predecessors(trace)
    best = _best_paths(trace, preds, lambda node: node.kind == "input")
    ends = [n.id for n in trace.nodes if n.kind == "output" and n.id in best]
    if not ends:  # the input's link was lost (a batch in an object the trace cannot see)
        best = _best_paths(trace, preds, lambda node: not preds[node.id])
        ends = [n.id for n in trace.nodes if n.kind == "output" and n.id in best]
    if not ends:
        return []
    path: list[str] = []
    current: str | None = ends[0]
    while current is not None:
        path.append(current)
        current = best[current][1]
    return path[::-1]


def _best_paths(
    trace: Trace, preds: dict[str, list[str]], starts: Callable[[Node], bool]
) -> dict[str, tuple[int, str | None]]:
    """Node -> (weighted layers on the best path to it, the predecessor it came by)."""
    best: dict[str, tuple[int, str | None]] = {}
    for node in trace.nodes:
        weight = int(is_weighted(record_of(trace, node)))
        choices = [(best[p][0], -i, p) for i, p in enumerate(preds[node.id]) if p in best]
        if choices:
            score, _, via = max(choices)
            best[node.id] = (score + weight, via)
        elif starts(node):
            best[node.id] = (weight, None)
    return best


def record_ids(trace: Trace) -> dict[str, int]:
    """Graph id ('layer1.0', 'fc:1') -> index of that call's record."""
    return {call_id(r): i for i, r in enumerate(trace.records)}


def call_id(record: ModuleRecord) -> str:
    """The graph id of a module call: its name, with ':k' for the k-th later call."""
    return record.name if record.call == 0 else f"{record.name}:{record.call}"


_RECENT: list[tuple[Trace, dict[str, Group]]] = []  # groups() of the last few traces


def groups(trace: Trace) -> dict[str, Group]:
    """Every container call seen in a node's scope, with its direct children in run order.

    Remembered for the last few traces (by identity: a Trace holds dicts, so it has no
    hash): a diagram asks for them once per run of siblings, 800 times for Llama-3-70B."""
    for seen, tree in _RECENT:
        if seen is trace:
            return tree
    tree = _groups(trace)
    _RECENT.insert(0, (trace, tree))
    del _RECENT[4:]
    return tree


def _groups(trace: Trace) -> dict[str, Group]:
    index = record_ids(trace)
    children: dict[str, list[str]] = {}
    parents: dict[str, str | None] = {}
    for node in trace.nodes:
        chain = node.scope
        for depth, gid in enumerate(chain):
            if gid not in children:
                children[gid] = []
                parents[gid] = chain[depth - 1] if depth else None
                if depth:
                    children[chain[depth - 1]].append(gid)
        if chain:
            children[chain[-1]].append(node.id)
    out = {}
    for gid, kids in children.items():
        rec = index.get(gid)
        kind = trace.records[rec].type if rec is not None else "?"
        out[gid] = Group(gid, kind, rec, parents[gid], tuple(kids))
    return out


def top_level(trace: Trace) -> list[str]:
    """Ids directly under the model: groups and nodes with an empty scope, in run order."""
    seen: list[str] = []
    for node in trace.nodes:
        head = node.scope[0] if node.scope else node.id
        if head not in seen:
            seen.append(head)
    return seen


def signatures(trace: Trace) -> Callable[[str], str]:
    """Structural signature of a node or group: type, parameter shapes, internal edges.

    Two sibling blocks with equal signatures are the same computation with different
    weights, so a diagram may draw them once as "x N". Names play no part.
    """
    return _signatures(trace, lambda record: _shapes(trace, record))


def loose_signatures(trace: Trace) -> Callable[[str], str]:
    """Like `signatures`, but a parameter's input width may differ, and the output must match.

    DenseNet's layers in one dense block are one repeated unit although each reads a wider
    input (the growth rate): same types, same internal edges, the same weights but for
    their input dimension (a conv's dim 1, a norm's length), the same output. Inception
    modules with different branch widths, and ResNet stages of different widths, differ.
    """
    nodes = {n.id: n for n in trace.nodes}
    tree = groups(trace)
    ranked = _signatures(trace, lambda r: tuple(map(_but_input, _shapes(trace, r))))

    def sig(item: str) -> str:
        group = tree.get(item)
        if group is not None:
            out = trace.records[group.record].output_shapes if group.record is not None else None
        else:
            out = nodes[item].output_shapes
        return f"{ranked(item)}:{out!r}"

    return sig


def _but_input(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A weight's shape without its input width: (out, -1, k, k); a 1-D parameter: (-1,)."""
    return (-1,) if len(shape) < 2 else (shape[0], -1, *shape[2:])


def _signatures(trace: Trace, shapes: Callable[[int | None], tuple]) -> Callable[[str], str]:
    nodes = {n.id: n for n in trace.nodes}
    tree = groups(trace)
    inside: dict[str, list[Edge]] = {gid: [] for gid in tree}
    for e in trace.edges:
        a, b = nodes[e.src].scope, nodes[e.dst].scope
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        if common:
            inside[a[common - 1]].append(e)

    @cache
    def sig(item: str) -> str:
        if item in tree:
            group = tree[item]
            kids = list(group.children)
            pos = {k: i for i, k in enumerate(kids)}
            local = sorted(
                (pos[_under(nodes[e.src], item, kids)], pos[_under(nodes[e.dst], item, kids)])
                for e in inside[item]
            )
            head = (group.type, shapes(group.record), tuple(sig(k) for k in kids), local)
        else:
            node = nodes[item]
            head = (node.kind, node.type, shapes(node.record))  # type: ignore[assignment]
        return hashlib.sha1(repr(head).encode()).hexdigest()[:16]

    return sig


def _under(node: Node, group: str, kids: list[str]) -> str:
    """The child of `group` that holds `node` (the node itself if it sits directly in it)."""
    chain = (*node.scope, node.id)
    return chain[chain.index(group) + 1] if group in chain else kids[0]


def _shapes(trace: Trace, record: int | None) -> tuple:
    return trace.records[record].param_shapes if record is not None else ()


def repeat_runs(trace: Trace, items: list[str], sig: Callable[[str], str]) -> list[list[str]]:
    """Split sibling `items` into runs of consecutive structurally identical groups."""
    tree = groups(trace)
    runs: list[list[str]] = []
    for item in items:
        if runs and item in tree and runs[-1][0] in tree and sig(runs[-1][0]) == sig(item):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
