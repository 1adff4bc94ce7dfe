"""The roofline of one traced forward pass: per module, per block, per stage, per hardware.

Each unit of work is a node of the dataflow graph: a module that does its own work (a
leaf, or a module whose children never ran) or a functional op between modules (the
residual `+`, attention's `scaled_dot_product_attention`). For each:

- FLOPs: the trace's FLOPs plus its elementwise FLOPs (BN, activations, adds);
- bytes: its inputs, its outputs and its own parameters at the dtype, each read or
  written once. That is what an *unfused* kernel moves; a fused kernel (conv+BN+ReLU in
  one pass) moves less, and a kernel whose operands overflow the caches moves more.
  View ops (view, transpose, reshape...) move nothing and are left out;
- predicted seconds on each hardware: max(FLOPs / peak, bytes / bandwidth), and which of
  the two bounds it (compute or memory).

Sums over units give blocks, stages and the total: the time of unfused kernels run one
after another at their roofs, a lower bound when the roofs are this machine's measured
ones. Stages are the parts a timer can measure by hooks (see archviz.benchmark.segments):
a ResNet's stem / layer1..layer4 / head, or stem / each repeated block / head elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from archviz.analysis.graph import call_id
from archviz.analysis.hardware import DTYPE_BYTES, Hardware
from archviz.records import ModuleRecord, Node, ShapeTree, Trace

BYTES_NOTE = (
    "bytes = each unit's inputs + outputs + own parameters at the dtype: what an unfused "
    "kernel reads and writes (fusion moves less; cache misses move more)"
)
# Ops that only re-describe a tensor's memory: no FLOPs, no bytes moved.
VIEW_OPS = frozenset((
    "view", "reshape", "transpose", "permute", "flatten", "unflatten", "getitem", "split",
    "chunk", "unbind", "squeeze", "unsqueeze", "expand", "expand_as", "view_as", "narrow",
    "select", "t", "T", "mT", "movedim", "swapaxes", "as_strided", "size", "dim",
))  # fmt: skip
# Ops whose FLOPs the trace counts as 2 x MACs (the rest of a module's own work is elementwise).
MATMUL_OPS = frozenset((
    "matmul", "mm", "bmm", "addmm", "baddbmm", "einsum", "linear", "bilinear",
    "scaled_dot_product_attention", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d",
))  # fmt: skip
STEM, HEAD, WHOLE = "stem", "head", "model"


@dataclass(frozen=True)
class Unit:
    """One node's work and its predicted time on each hardware."""

    name: str
    type: str
    part: str
    block: str
    flops: int
    bytes: int
    seconds: dict[str, float] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else math.inf


@dataclass(frozen=True)
class Rollup:
    """A block's or stage's sums; `measured` where a timer ran it."""

    name: str
    flops: int
    bytes: int
    seconds: dict[str, float]
    measured: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Roofline:
    """Per-unit, per-block, per-stage and total predictions, and measurements beside them."""

    model: str
    input_shapes: ShapeTree
    dtype: str
    hardware: tuple[Hardware, ...]
    modules: tuple[Unit, ...]
    blocks: tuple[Rollup, ...]
    parts: tuple[Rollup, ...]
    boundaries: tuple[str, ...]  # module calls the timer hooks: each is one stage
    total: Rollup
    notes: tuple[str, ...] = ()

    def attained(self, hw: str) -> float | None:
        """Predicted / measured total: the fraction of the roof the run reached."""
        measured = self.total.measured.get(hw)
        return self.total.seconds[hw] / measured if measured else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: hardware.{hw}, modules[], blocks[], parts[], totals."""
        return {
            "model": self.model,
            "input": self.input_shapes,
            "dtype": self.dtype,
            "bytes_note": BYTES_NOTE,
            "hardware": {hw.name: _hardware_dict(hw) for hw in self.hardware},
            "modules": [_unit_dict(u) for u in self.modules],
            "blocks": [asdict(b) for b in self.blocks],
            "parts": [asdict(p) for p in self.parts],
            "totals": {
                **asdict(self.total),
                "attained": {hw: self.attained(hw) for hw in self.total.measured},
            },
        }


def roofline(trace: Trace, hardware: Sequence[Hardware], dtype: str | None = None) -> Roofline:
    """The roofline of `trace` on each of `hardware` (all at one dtype)."""
    dtype = dtype or (hardware[0].dtype if hardware else trace.dtype)
    item = DTYPE_BYTES.get(dtype, 4)
    bounds = boundaries(trace)
    units = [_timed(u, hardware) for u in _units(trace, item, bounds)]
    blocks = _rollup(units, "block", hardware)
    parts = _rollup(units, "part", hardware)
    total = _sum("total", units, hardware)
    notes = (BYTES_NOTE,)
    return Roofline(
        trace.model, trace.input_shapes, dtype, tuple(hardware), tuple(units),
        tuple(blocks), tuple(parts), bounds, total, notes,
    )  # fmt: skip


def with_measured(result: Roofline, hw: str, parts: dict[str, float], total: float) -> Roofline:
    """`result` with the measured seconds of each stage and of the whole forward on `hw`."""
    new_parts = tuple(
        replace(p, measured={**p.measured, hw: parts[p.name]}) if p.name in parts else p
        for p in result.parts
    )
    new_total = replace(result.total, measured={**result.total.measured, hw: total})
    return replace(result, parts=new_parts, total=new_total)


def predict(flops: float, nbytes: float, hw: Hardware) -> tuple[float, str]:
    """max(FLOPs / peak, bytes / bandwidth), and which of the two it is.

    Where the hardware's last-level cache was measured, the bytes that fit in it are
    charged at the cache's rate (they may be served from it), the rest at memory's.
    """
    cached = min(nbytes, hw.cache_bytes) if hw.cache_bandwidth else 0
    compute = flops / hw.peak_flops
    memory = cached / hw.cache_bandwidth if cached else 0.0
    memory += (nbytes - cached) / hw.bandwidth
    return (compute, "compute") if compute >= memory else (memory, "memory")


def boundaries(trace: Trace) -> tuple[str, ...]:
    """The calls that are stages: a ResNet's stages, else the longest run of repeated blocks.

    Blocks are consecutive calls by one parent of the same type and parameter shapes
    (ViT's encoder layers, GPT-2's `h.0`..`h.11`); the run with the most FLOPs wins ties.
    """
    if trace.architecture is not None:
        return trace.architecture.stages
    siblings: dict[str | None, list[ModuleRecord]] = {}
    for record in trace.records:
        siblings.setdefault(record.parent, []).append(record)
    best: tuple[int, int, list[ModuleRecord]] = (0, 0, [])
    for calls in siblings.values():
        for run in _runs(calls):
            score = (len(run), sum(r.flops_total for r in run), run)
            if len(run) >= 2 and score[:2] > best[:2]:
                best = score
    return tuple(call_id(r) for r in best[2])


def _runs(calls: list[ModuleRecord]) -> Iterable[list[ModuleRecord]]:
    run: list[ModuleRecord] = []
    for record in calls:
        same = run and (record.type, record.param_shapes) == (run[0].type, run[0].param_shapes)
        if record.is_leaf or not same:
            if run:
                yield run
            run = [] if record.is_leaf else [record]
        else:
            run.append(record)
    if run:
        yield run


def _units(trace: Trace, item: int, bounds: tuple[str, ...]) -> list[Unit]:
    """One Unit per working node, in run order, with its stage and block."""
    shapes = {n.id: n.output_shapes for n in trace.nodes}
    edge_elems: dict[str, int] = {}
    for e in trace.edges:
        edge_elems[e.dst] = edge_elems.get(e.dst, 0) + (math.prod(e.shape) if e.shape else 0)
    op_flops = _op_flops(trace)
    containers = {call_id(r): r for r in trace.records}
    units, where = [], _Where(bounds, containers)
    for node in trace.nodes:
        part, block = where.locate(node)
        if node.kind == "module" and node.record is not None:
            record = trace.records[node.record]
            params = sum(math.prod(s) for s in record.param_shapes)
            params += 0 if record.is_leaf else record.params_total - record.params
            flops = record.flops + record.elementwise_flops
            if not flops:  # a lookup table (nn.Embedding) reads only the rows it returns
                params = min(params, elements(record.output_shapes))
            elems = elements(record.input_shapes) + elements(record.output_shapes) + params
            units.append(Unit(node.id, record.type, part, block, flops, elems * item))
        elif node.kind == "op" and node.type not in VIEW_OPS:
            elems = edge_elems.get(node.id, 0) + elements(shapes[node.id])
            units.append(Unit(node.id, node.type, part, block, op_flops.get(node.id, 0),
                              elems * item))  # fmt: skip
    return units


class _Where:
    """Walks nodes in run order and says which stage and block each belongs to."""

    def __init__(self, bounds: tuple[str, ...], containers: dict[str, ModuleRecord]) -> None:
        self.bounds = bounds
        self.containers = containers
        self.seen: str | None = None

    def locate(self, node: Node) -> tuple[str, str]:
        if not self.bounds:
            return WHOLE, node.scope[0] if node.scope else node.id
        chain = (*node.scope, node.id)
        inside = next((b for b in self.bounds if b in chain), None)
        if inside is not None:
            self.seen = inside
            after = chain[chain.index(inside) + 1 :]
            record = self.containers.get(inside)
            nested = record is not None and record.container and len(after) > 1
            return inside, after[0] if nested else inside
        if self.seen is None:
            return STEM, STEM
        if self.seen == self.bounds[-1]:
            return HEAD, HEAD
        return self.seen, self.seen


def _op_flops(trace: Trace) -> dict[str, int]:
    """Share each module's own FLOPs (those it did outside its children) among its ops.

    The trace counts them per module, not per op: matmul-class FLOPs go to the module's
    matmul-class ops, elementwise ones to the rest, in proportion to output size.
    """
    by_scope: dict[str, list[Node]] = {}
    for node in trace.nodes:
        if node.kind == "op" and node.type not in VIEW_OPS:
            by_scope.setdefault(node.scope[-1] if node.scope else "", []).append(node)
    owners = {call_id(r): r for r in trace.records}
    shares: dict[str, int] = {}
    for scope, ops in by_scope.items():
        record = owners.get(scope)
        if record is None:
            continue
        heavy = [o for o in ops if o.type in MATMUL_OPS] or ops
        light = [o for o in ops if o.type not in MATMUL_OPS] or ops
        _share(shares, heavy, record.flops)
        _share(shares, light, record.elementwise_flops)
    return shares


def _share(shares: dict[str, int], ops: list[Node], amount: int) -> None:
    sizes = [max(1, elements(o.output_shapes)) for o in ops]
    left = amount
    for i, (op, size) in enumerate(zip(ops, sizes, strict=True)):
        part = left if i == len(ops) - 1 else amount * size // sum(sizes)
        shares[op.id] = shares.get(op.id, 0) + part
        left -= part


def elements(tree: ShapeTree) -> int:
    """Elements of every tensor in a shape tree."""
    if tree is None:
        return 0
    if isinstance(tree, tuple) and all(isinstance(d, int) for d in tree):
        return math.prod(tree)  # type: ignore[arg-type]
    items: Any = tree.values() if isinstance(tree, dict) else tree
    return sum(elements(t) for t in items)


def _timed(unit: Unit, hardware: Sequence[Hardware]) -> Unit:
    seconds, bound = {}, {}
    for hw in hardware:
        seconds[hw.name], bound[hw.name] = predict(unit.flops, unit.bytes, hw)
    return replace(unit, seconds=seconds, bound=bound)


def _sum(name: str, units: Sequence[Unit], hardware: Sequence[Hardware]) -> Rollup:
    seconds = {hw.name: sum(u.seconds[hw.name] for u in units) for hw in hardware}
    return Rollup(name, sum(u.flops for u in units), sum(u.bytes for u in units), seconds)


def _rollup(units: Sequence[Unit], level: str, hardware: Sequence[Hardware]) -> list[Rollup]:
    groups: dict[str, list[Unit]] = {}
    for unit in units:
        groups.setdefault(getattr(unit, level), []).append(unit)
    return [_sum(name, members, hardware) for name, members in groups.items()]


def _hardware_dict(hw: Hardware) -> dict[str, Any]:
    """The hardware entry: every field but the key it sits under and the shared dtype."""
    return {k: v for k, v in asdict(hw).items() if k not in ("name", "dtype")}


def _unit_dict(unit: Unit) -> dict[str, Any]:
    return {**asdict(unit), "intensity": unit.intensity if unit.bytes else None}
