"""Pair a candidate module's layers with a reference's by where they sit in the observed
dataflow graph, not by name or registration order.

Both models are traced on `meta` (no memory, weights untouched). Every node starts with
a label that names no module: its parameter shapes, or its normalised op type (`ReLU`
module and `relu` op alike). Labels are then refined by the labels of their producers
and consumers until nothing changes (colour refinement, the 1-dimensional
Weisfeiler-Leman test), on both graphs at once so colours compare. A projection
shortcut consumes the block's input and feeds the add; conv3 consumes the main path's
ReLU: their colours differ after one round, whatever order their weights were stored in.
A colour held by exactly one weighted layer on each side pairs them.
"""

from __future__ import annotations

from collections.abc import Hashable

from torch import nn

from archviz.analysis.graph import predecessors
from archviz.checkpoints.forward_check import FORWARD_INPUT, first_line
from archviz.records import Trace

# Ops and modules that pass their input through unchanged (in eval mode): contracted away,
# so an `nn.Identity` shortcut reads like a plain skip connection.
PASS_THROUGH = {"identity", "dropout", "dropout2d", "dropout1d", "droppath", "contiguous", "clone"}
_OP_NAMES = {"iadd": "add", "addinplace": "add"}


def by_graph(
    candidate: nn.Module | None, reference: nn.Module | None
) -> tuple[dict[str, str], str | None]:
    """Candidate module path -> reference module path for layers the graph pins down, and
    a note when the graph could not be used (then names and shapes pair, and the forward
    check still runs)."""
    if candidate is None or reference is None:
        return {}, None
    try:
        traces = [_trace(candidate), _trace(reference)]
    except Exception as exc:  # a model that does not trace on meta is paired by name instead
        return {}, f"no dataflow graph ({first_line(exc)}): paired by names and shapes"
    return pair_traces(*traces), None


def pair_traces(cand: Trace, ref: Trace) -> dict[str, str]:
    """Pair weighted module nodes whose refined colours are unique on both sides."""
    table: dict[Hashable, int] = {}
    graphs = [_contract(cand), _contract(ref)]
    colours = [{n: _id(table, label) for n, label in g[0].items()} for g in graphs]
    count = len(set(colours[0].values()) | set(colours[1].values()))
    for _ in range(len(graphs[0][0]) + len(graphs[1][0])):
        colours = [_refine(c, g[1], g[2], table) for c, g in zip(colours, graphs, strict=True)]
        new_count = len(set(colours[0].values()) | set(colours[1].values()))
        if new_count == count:
            break
        count = new_count
    weighted = [_weighted(t) for t in (cand, ref)]
    by_colour: list[dict[int, list[str]]] = [{}, {}]
    for side in (0, 1):
        for node, colour in colours[side].items():
            if node in weighted[side]:
                by_colour[side].setdefault(colour, []).append(node)
    pairs = {}
    for colour, nodes in by_colour[0].items():
        others = by_colour[1].get(colour, [])
        if len(nodes) == 1 and len(others) == 1:
            pairs[nodes[0]] = others[0]
    return pairs


def _trace(model: nn.Module) -> Trace:
    from archviz.tracing.trace import trace

    return trace(model, FORWARD_INPUT)


def _weighted(trace: Trace) -> set[str]:
    """Module nodes called once that hold parameters: the layers a state_dict names."""
    return {
        n.id
        for n in trace.nodes
        if n.kind == "module"
        and ":" not in n.id
        and n.record is not None
        and trace.records[n.record].param_shapes
    }


def _label(trace: Trace, node_id: str, kind: str, type_: str, record: int | None) -> Hashable:
    if record is not None and trace.records[record].param_shapes:
        return ("weights", trace.records[record].param_shapes)
    return (kind if kind in ("input", "output") else "op", _normalise(type_))


def _normalise(type_: str) -> str:
    """`MaxPool2d` and `max_pool2d`, `ReLU` and `relu_`, `add_` and `iadd` read the same."""
    word = type_.lower().replace("_", "")
    return _OP_NAMES.get(word, word)


def _contract(
    trace: Trace,
) -> tuple[dict[str, Hashable], dict[str, list[str]], dict[str, list[str]]]:
    """Labels, producers and consumers, with pass-through nodes bridged over."""
    preds = predecessors(trace)
    labels: dict[str, Hashable] = {}
    through: dict[str, list[str]] = {}  # a pass-through node -> the real producers it forwards
    real_preds: dict[str, list[str]] = {}
    for n in trace.nodes:
        sources: list[str] = []
        for p in preds[n.id]:
            sources += through.get(p, [p])
        if n.kind in ("module", "op") and _normalise(n.type) in PASS_THROUGH:
            through[n.id] = sources
            continue
        labels[n.id] = _label(trace, n.id, n.kind, n.type, n.record)
        real_preds[n.id] = sources
    succs: dict[str, list[str]] = {node_id: [] for node_id in labels}
    for node_id, sources in real_preds.items():
        for p in sources:
            succs[p].append(node_id)
    return labels, real_preds, succs


def _refine(
    colours: dict[str, int],
    preds: dict[str, list[str]],
    succs: dict[str, list[str]],
    table: dict[Hashable, int],
) -> dict[str, int]:
    return {
        n: _id(
            table,
            (
                c,
                tuple(sorted(colours[p] for p in preds[n])),
                tuple(sorted(colours[s] for s in succs[n])),
            ),
        )
        for n, c in colours.items()
    }


def _id(table: dict[Hashable, int], key: Hashable) -> int:
    return table.setdefault(key, len(table))
