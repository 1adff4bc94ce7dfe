"""Glue folds into edges: ops that only move data are not nodes of the drawn graph.

An op that reshapes, moves, selects or casts a tensor (view, permute, getitem, to, ...)
computes nothing: a diagram or the explorer draws it on the edge it sits on, which keeps
its ops' names and the shape change. Ops that compute or merge (add, cat, matmul,
softmax, attention) stay nodes; a run of them that ran one after another in one module's
own forward (Llama's rotary embedding: mul, neg, cat, add for the queries and the keys)
becomes one node, named after the module outside its own whose output it reads where
there is one (`rotary_emb · 10 ops`), else `10 ops`. `OP_ROLES` is the one table that
says which op is which; an op it does not name computes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from archviz.options import OPS
from archviz.records import Edge, Node, Shape, Trace

GLUE, MERGE, KEY, COMPUTE = "glue", "merge", "key", "compute"
_GLUE_OPS = (
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "T", "mT",
    "swapaxes", "swapdims", "movedim", "moveaxis", "getitem", "unsqueeze", "squeeze",
    "contiguous", "flatten", "unflatten", "expand", "expand_as", "broadcast_to", "to", "type",
    "type_as", "float", "half", "double", "bfloat16", "int", "long", "bool", "cpu", "cuda",
    "chunk", "split", "split_with_sizes", "tensor_split", "unbind", "narrow", "select",
    "detach", "clone", "flip", "roll", "repeat", "repeat_interleave", "tile", "as_strided",
    "dropout", "alias", "identity", "real", "imag",
)  # fmt: skip
# Ops whose own work is the point: never folded into a run of other ops.
_KEY_OPS = (
    "matmul", "bmm", "mm", "einsum", "linear", "conv1d", "conv2d", "conv3d", "softmax",
    "log_softmax", "scaled_dot_product_attention", "multi_head_attention_forward", "baddbmm",
    "addmm", "layer_norm", "group_norm", "batch_norm", "interpolate", "grid_sample", "nms",
    "roi_align", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "topk",
)  # fmt: skip
# Ops that combine tensors: they compute (and join runs), and a diagram draws a lone one as
# a merge node (the residual +, a concatenation).
_MERGE_OPS = (
    "add", "sub", "mul", "div", "cat", "stack", "concat", "concatenate", "hstack", "vstack",
    "where", "maximum", "minimum",
)  # fmt: skip
OP_ROLES: dict[str, str] = {
    **dict.fromkeys(_GLUE_OPS, GLUE),
    **dict.fromkeys(_MERGE_OPS, MERGE),
    **dict.fromkeys(_KEY_OPS, KEY),
}
LOOP = 3  # a key op this often in one stretch of ops is a loop's body, folded with it
MODES = tuple(OPS)  # "folded" (glue on edges, the default) or "all" (every op a node)


def op_role(op: str) -> str:
    """'glue' (moves data), 'merge' (combines tensors), 'key' (a named computation that
    stands alone) or 'compute' (anything else)."""
    return OP_ROLES.get(op, COMPUTE)


@dataclass(frozen=True)
class CarriedEdge(Edge):
    """An edge of the folded graph that carries data-moving ops: their names (`via`:
    'view', 'transpose') and the shape before them (`before`); `shape` is the one after."""

    via: tuple[str, ...] = ()
    before: Shape | None = None


@dataclass(frozen=True)
class Folding:
    """The folded graph, and what each of its run nodes stands for."""

    trace: Trace  # the same trace, nodes and edges folded
    runs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # run node -> its ops
    glue: frozenset[str] = frozenset()  # the op nodes carried by edges


def fold_ops(trace: Trace, coarse: bool = False) -> Folding:
    """Glue ops onto edges, then runs of compute ops into one node each; `coarse`: of
    every op, the key ones too (a diagram over its node budget draws RAFT's 12 refinement
    steps so, each step's correlation lookup one node)."""
    nodes = {n.id: n for n in trace.nodes}
    glue = frozenset(n.id for n in trace.nodes if n.kind == "op" and op_role(n.type) == GLUE)
    edges = _bridge(trace, nodes, glue)
    kept = [n for n in trace.nodes if n.id not in glue]
    runs = _runs(kept, {COMPUTE, MERGE, KEY} if coarse else {COMPUTE, MERGE})
    member = {op: run for run, ops in runs.items() for op in ops}
    out_nodes = []
    for node in kept:
        run = member.get(node.id)
        if run is None:
            out_nodes.append(node)
        elif node.id == runs[run][-1]:
            out_nodes.append(_run_node(run, runs[run], nodes, edges))
    seen: set[Edge] = set()
    out_edges = []
    for e in edges:
        moved = replace(e, src=member.get(e.src, e.src), dst=member.get(e.dst, e.dst))
        if moved.src != moved.dst and moved not in seen:
            seen.add(moved)
            out_edges.append(moved)
    folded = replace(trace, nodes=tuple(out_nodes), edges=tuple(out_edges))
    return Folding(folded, runs, glue)


def _bridge(trace: Trace, nodes: dict[str, Node], glue: frozenset[str]) -> list[Edge]:
    """Every edge into a non-glue node, re-rooted at the tensor's last real producer.

    A glue op's data is its first input (`x.view(...)`, `x[idx]`, `x.to(y)`); its other
    inputs (an index tensor, a target dtype's tensor) are not data it passes on."""
    origin: dict[str, tuple[str, tuple[str, ...], Shape | None]] = {}
    for e in trace.edges:  # edges are recorded in execution order, first input first
        if e.dst in glue and e.dst not in origin:
            if e.src in glue:
                if e.src in origin:
                    src, via, before = origin[e.src]
                    origin[e.dst] = (src, (*via, nodes[e.dst].type), before)
            else:
                origin[e.dst] = (e.src, (nodes[e.dst].type,), e.shape)
    out: list[Edge] = []
    for e in trace.edges:
        if e.dst in glue:
            continue
        if e.src in glue:
            if e.src not in origin:  # glue on a constant: nothing to draw
                continue
            src, via, before = origin[e.src]
            out.append(CarriedEdge(src, e.dst, e.shape, via=via, before=before))
        else:
            out.append(e)
    return out


def _runs(kept: list[Node], roles: set[str]) -> dict[str, tuple[str, ...]]:
    """Two or more ops of `roles` in one scope that ran one after another -> one run.

    A key op that ran three or more times in one stretch of ops is a loop's body (Mask
    R-CNN pastes each of 100 masks with an interpolate and 15 ops): it joins the run."""
    runs: list[list[Node]] = []
    for stretch in _stretches(kept):
        looped = Counter(n.type for n in stretch if op_role(n.type) == KEY)
        current: list[Node] = []
        for node in stretch:
            if op_role(node.type) in roles or looped[node.type] >= LOOP:
                current.append(node)
                continue
            runs.append(current)
            current = []
        runs.append(current)
    return {f"{run[0].id}_ops": tuple(n.id for n in run) for run in runs if len(run) > 1}


def _stretches(kept: list[Node]) -> list[list[Node]]:
    """Maximal stretches of op nodes that ran one after another in one scope."""
    out: list[list[Node]] = []
    for node in kept:
        if node.kind != "op":
            out.append([])
        elif out and out[-1] and out[-1][-1].scope == node.scope:
            out[-1].append(node)
        else:
            out.append([node])
    return [s for s in out if s]


def _run_node(run: str, ops: tuple[str, ...], nodes: dict[str, Node], edges: list[Edge]) -> Node:
    """One node for a run: named after a module outside its scope whose output it reads."""
    first = nodes[ops[0]]
    inside = set(ops)
    outer = [
        nodes[e.src]
        for e in edges
        if e.dst in inside
        and e.src not in inside
        and nodes[e.src].kind == "module"
        and (not first.scope or first.scope[-1] not in nodes[e.src].scope)
    ]
    keys = Counter(nodes[op].type for op in ops if op_role(nodes[op].type) == KEY)
    label = f"{len(ops)} ops"
    if keys:  # the loop's work: '1600 ops: 100 × interpolate'
        label += ": " + ", ".join(f"{n} × {op}" for op, n in sorted(keys.items()))
    if outer and first.scope:  # at the top level every module is outside: no name says more
        label = f"{outer[0].id.rsplit('.', 1)[-1].split(':')[0]} · {label}"
    return Node(run, "op", label, first.scope, None, nodes[ops[-1]].output_shapes)
