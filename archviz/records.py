"""The records a trace produces: frozen dataclasses of plain values.

No tensors or modules in here, so records compare with `==`, serialise to JSON and
become a DataFrame with one call. Raw integers; "4.09 GMACs" is the renderer's job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Union

Shape = tuple[int, ...]
# A tensor's shape, a tuple/list of trees, or a dict of trees; None for non-tensor values.
# `input_shapes` and `output_shapes` are both trees of what they describe: one tensor is a
# flat shape, (1, 3, 224, 224), in and out alike; several positional inputs are a tuple of
# trees, and keyword inputs a dict after them.
ShapeTree = Union[Shape, tuple["ShapeTree", ...], dict[str, "ShapeTree"], None]  # noqa: UP007


def first_shape(tree: ShapeTree) -> Shape | None:
    """The first tensor shape in a tree: a module's (first) input, say."""
    if isinstance(tree, tuple) and all(isinstance(d, int) for d in tree):
        return tree  # type: ignore[return-value]
    items = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, tuple) else ()
    for item in items:
        found = first_shape(item)  # type: ignore[arg-type]
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class ModuleRecord:
    """One call of one module. `*_total` fields include the module's children."""

    name: str  # qualified name; "" is the model itself
    type: str
    depth: int
    parent: str | None  # the calling module's name; None for the model
    stage: str | None  # "stem", "layer1".."layer4", "head" for ResNet-like models
    block: int | None  # block index within its stage
    call: int  # 0 for a module's first call, 1 for its second, ...
    input_shapes: ShapeTree
    output_shapes: ShapeTree
    dtype: str | None
    is_leaf: bool
    params: int  # parameters this module holds directly; a tied tensor counts once, model-wide
    params_total: int
    trainable_total: int
    buffers_total: int
    macs: int  # multiply-adds from torch.utils.flop_counter formulas, this module's own ops
    macs_total: int
    flops: int  # = 2 x macs for conv/matmul/attention
    flops_total: int
    elementwise_flops: int  # BN, activations, the residual add, pooling: archviz's convention
    elementwise_flops_total: int
    output_bytes: int
    param_shapes: tuple[Shape, ...] = ()  # the module's own parameters: its structural identity
    container: bool = False  # an nn.Sequential/ModuleList/ModuleDict: it only chains children


@dataclass(frozen=True)
class Totals:
    """Whole-model figures. Parameters are unique tensors, counted once however shared."""

    params: int
    trainable: int
    buffers: int
    param_bytes: int
    buffer_bytes: int
    macs: int
    flops: int
    elementwise_flops: int
    activation_bytes: int  # sum of leaf modules' outputs: what a forward pass materialises
    input_bytes: int


@dataclass(frozen=True)
class Architecture:
    """A ResNet-like model's self-description, read from the model (not from names)."""

    block: str
    layers: tuple[int, ...]
    expansion: int
    convs_per_block: int
    stages: tuple[str, ...]
    stem: tuple[str, ...]
    head: tuple[str, ...]
    groups: int = 1
    width_per_group: int = 64


@dataclass(frozen=True)
class StageSummary:
    """Sums over one part of a ResNet-like model (stem, a stage, head)."""

    name: str
    blocks: int
    params: int
    macs: int
    flops: int
    elementwise_flops: int
    output_shape: ShapeTree


@dataclass(frozen=True)
class Node:
    """One node of the observed dataflow graph.

    Module nodes are the calls that do their own work (leaf modules, and modules whose
    children never ran, such as nn.MultiheadAttention); container modules are not nodes
    but groups, given by `scope`. Op nodes are functional ops that ran *between* modules
    (the residual `+`, `torch.cat`, `flatten`, indexing), so merges are observed.
    """

    id: str  # "input", "layer1.0.conv1", "blk.fc:1" (a second call), "add_3", "output"
    kind: str  # "input" | "module" | "op" | "output"
    type: str  # module class name, op name ("add", "cat", "flatten"), "input", "output"
    scope: tuple[str, ...]  # ids of the enclosing module calls, outermost first, root excluded
    record: int | None  # index into Trace.records for module nodes, else None
    output_shapes: ShapeTree


@dataclass(frozen=True)
class Edge:
    """A tensor that `src` produced and `dst` consumed."""

    src: str
    dst: str
    shape: Shape | None


@dataclass(frozen=True, repr=False)
class Trace:
    """Every module call of one forward pass, in call order, plus totals."""

    model: str
    input_shapes: ShapeTree
    output_shapes: ShapeTree
    device: str
    dtype: str
    records: tuple[ModuleRecord, ...]
    totals: Totals
    uncounted_ops: tuple[tuple[str, int], ...] = ()  # ran, but have no FLOP formula
    architecture: Architecture | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    nodes: tuple[Node, ...] = ()  # the dataflow graph, in execution (topological) order
    edges: tuple[Edge, ...] = ()

    def leaves(self) -> list[ModuleRecord]:
        return [r for r in self.records if r.is_leaf]

    def get(self, name: str, call: int = 0) -> ModuleRecord:
        for record in self.records:
            if record.name == name and record.call == call:
                return record
        raise KeyError(name)

    def stages(self) -> list[StageSummary]:
        """Stem, each stage and head, summed over their top-level modules (ResNet-like only)."""
        arch = self.architecture
        if arch is None:
            return []
        tops = [r for r in self.records if r.depth == 1]
        parts = [("stem", arch.stem), *((s, (s,)) for s in arch.stages), ("head", arch.head)]
        blocks = dict(zip(arch.stages, arch.layers, strict=True))
        summaries = []
        for part, names in parts:
            rows = [r for r in tops if r.name in names]
            summaries.append(
                StageSummary(
                    name=part,
                    blocks=blocks.get(part, 0),
                    params=sum(r.params_total for r in rows if r.call == 0),
                    macs=sum(r.macs_total for r in rows),
                    flops=sum(r.flops_total for r in rows),
                    elementwise_flops=sum(r.elementwise_flops_total for r in rows),
                    output_shape=rows[-1].output_shapes if rows else None,
                )
            )
        return summaries

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self):
        """One row per module call (pandas)."""
        from archviz.render.tables import trace_dataframe

        return trace_dataframe(self)

    def summary(self, depth: int = 3) -> str:
        """A torchinfo-like text table down to `depth`, with a totals footer."""
        from archviz.render.tables import trace_summary

        return trace_summary(self, depth=depth)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """One line: the generated dataclass repr of resnet18 ran to 32,000 characters."""
        t = self.totals
        return (
            f"<Trace {self.model!r}: input {self.input_shapes}, {len(self.records)} module "
            f"calls, {t.params:,} params, {t.macs:,} MACs, {self.device} {self.dtype}>"
        )

    def _repr_html_(self) -> str:
        from archviz.render.tables import trace_html

        return trace_html(self)
