"""Recording the dataflow graph during the one traced forward pass.

Every tensor is tagged with the graph node that produced it (a model input, a module
call, or a functional op). A module call or op then gets one edge per distinct producer
of the tensors it consumes. Functional ops are seen at the torch-function level
(`TorchFunctionMode`), so `out += identity` is one `add` node and `torch.cat` one `cat`
node, named as the user wrote them; ops inside a leaf module are that module's own work
and are not nodes. In-place ops (`add_`, `relu_`, `x[i] = v`) re-tag the tensor they
changed, so later consumers point at the op that last wrote it.

trace.py drives this from its hooks; nothing here registers hooks.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode, _len_torch_function_stack, _pop_mode, _push_mode

from archviz.records import Edge, Node, ShapeTree

# Ops that only change a tensor's dtype/device/layout: the result keeps its producer.
_PASS_THROUGH = {
    "to", "contiguous", "detach", "clone", "float", "half", "double", "bfloat16", "type_as",
    "cpu", "cuda", "requires_grad", "type",
}  # fmt: skip
# Python operator spellings -> the op's plain name.
_OPERATORS = {
    "iadd": "add", "radd": "add", "isub": "sub", "rsub": "sub", "imul": "mul", "rmul": "mul",
    "truediv": "div", "itruediv": "div", "rtruediv": "div", "imatmul": "matmul",
    "rmatmul": "matmul", "ior": "or", "iand": "and", "ipow": "pow", "rpow": "pow",
}  # fmt: skip


def tensors(value: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor in nested tuples, lists and dicts, and in the attributes of a plain
    object (torchvision's ImageList: a detector's transform hands its batch on in one)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors(item, depth)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from tensors(item, depth)
    elif (
        depth < 2 and hasattr(value, "__dict__") and not isinstance(value, (torch.nn.Module, type))
    ):
        for item in vars(value).values():
            yield from tensors(item, depth + 1)


def op_name(func: Any) -> str:
    """`Tensor.__iadd__` -> 'add', `Tensor.relu_` -> 'relu', `Tensor.T.__get__` -> 'T'."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":
        name = getattr(getattr(func, "__self__", None), "__name__", "get")
    name = name.strip("_")
    return _OPERATORS.get(name, name)


def _writes_in_place(func: Any) -> bool:
    name = getattr(func, "__name__", "")
    return (
        name == "__setitem__"
        or (name.endswith("_") and not name.endswith("__"))
        or (name.startswith("__i") and name.endswith("__"))
    )


@dataclass
class PendingNode:
    """A node not yet final: ops inside a module are dropped if the module has no children."""

    kind: str
    type: str
    scope: tuple[str, ...]
    record: int | None
    output_shapes: ShapeTree
    sources: list[tuple[int, tuple[int, ...]]]  # (source node index, shape)
    label: str = ""  # fixed id for inputs, modules and output; ops are numbered at the end
    alive: bool = True


@dataclass
class DataflowRecorder:
    """Tensor -> producing node, and the nodes and edges seen so far."""

    nodes: list[PendingNode] = field(default_factory=list)
    producers: dict[int, tuple[weakref.ref, int]] = field(default_factory=dict)

    def producer(self, tensor: torch.Tensor) -> int | None:
        entry = self.producers.get(id(tensor))
        if entry is None or entry[0]() is not tensor:  # an id reused by a new tensor
            return None
        return entry[1]

    def sources(self, value: Any) -> list[tuple[int, tuple[int, ...]]]:
        """Distinct producers of the tensors in `value`, in argument order."""
        seen: dict[int, tuple[int, ...]] = {}
        for t in tensors(value):
            src = self.producer(t)
            if src is not None and src not in seen:
                seen[src] = tuple(t.shape)
        return list(seen.items())

    def add(self, pending: PendingNode, produced: Any) -> int:
        """Append a node and tag the tensors it produced (in place or new) as its own."""
        index = len(self.nodes)
        self.nodes.append(pending)
        for t in tensors(produced):
            self.producers[id(t)] = (weakref.ref(t), index)
        return index

    def inputs(self, args: tuple, kwargs: dict, shape_of) -> None:
        """The model's inputs: 'input' for one tensor, else input_0.. and input_<kwarg>."""
        named = [(str(i), t) for i, t in enumerate(tensors(args))]
        named += [(str(k), t) for k, v in kwargs.items() for t in tensors(v)]
        for key, t in named:
            label = "input" if len(named) == 1 else f"input_{key}"
            self.add(PendingNode("input", "input", (), None, shape_of(t), [], label), t)

    def output(self, value: Any, shape_of) -> None:
        self.add(PendingNode("output", "output", (), None, shape_of(value), self.sources(value),
                          "output"), None)  # fmt: skip

    def finish(self, record_index: dict[int, int]) -> tuple[tuple[Node, ...], tuple[Edge, ...]]:
        """Number the ops in order ('add_0', 'add_1', ...) and drop what was folded away."""
        counts: Counter[str] = Counter()
        ids: dict[int, str] = {}
        nodes = []
        for i, p in enumerate(self.nodes):
            if not p.alive:
                continue
            if p.kind == "op":
                ids[i] = f"{p.type}_{counts[p.type]}"
                counts[p.type] += 1
            else:
                ids[i] = p.label
            record = record_index.get(p.record) if p.record is not None else None
            nodes.append(Node(ids[i], p.kind, p.type, p.scope, record, p.output_shapes))
        edges = [
            Edge(ids[src], ids[i], shape)
            for i, p in enumerate(self.nodes)
            if p.alive
            for src, shape in p.sources
            if src in ids
        ]
        return tuple(nodes), tuple(edges)


class OpWatcher(TorchFunctionMode):
    """Makes a node of every functional op that runs outside leaf modules.

    The mode is switched on only while a container module's own code runs (trace.py's
    hooks call `on`/`off`), so the ops inside convs and norms, and the hooks' own shape
    reads, pay nothing for it. `where()` gives the current scope, or None where ops are
    not nodes (inside a leaf module).
    """

    def __init__(self, graph: DataflowRecorder, where, shape_of) -> None:
        super().__init__()
        self.graph = graph
        self.where = where
        self.shape_of = shape_of
        self.active = False

    def on(self) -> None:
        if not self.active:
            _push_mode(self)
            self.active = True

    def off(self) -> None:
        """Pop this mode, unless the model pushed a mode of its own above it."""
        if not self.active:
            return
        top = _len_torch_function_stack() - 1
        if top >= 0 and torch._C._get_function_stack_at(top) is self:
            _pop_mode()
            self.active = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        scope = self.where()
        if scope is None:
            return out
        produced = args[0] if out is None and _writes_in_place(func) and args else out
        if not any(True for _ in tensors(produced)):
            return out  # sizes, bools, None: no tensor flows on
        sources = self.graph.sources((args, kwargs))
        if not sources:
            return out  # built from parameters or constants only: not part of the dataflow
        name = op_name(func)
        if name in _PASS_THROUGH and len(sources) == 1:
            for t in tensors(produced):
                self.graph.producers[id(t)] = (weakref.ref(t), sources[0][0])
            return out
        scope_ids, frame_ops = scope
        index = self.graph.add(
            PendingNode("op", name, scope_ids, None, self.shape_of(produced), sources), produced
        )
        frame_ops.append(index)
        return out
