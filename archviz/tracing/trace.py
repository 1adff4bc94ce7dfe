"""trace(): one forward pass with hooks on every module -> a Trace of ModuleRecords.

The only place in archviz that registers hooks. On the `meta` device the model's own
weights are never touched: `torch.func.functional_call` runs it with meta stand-ins, so
nothing is allocated and nothing is moved. Hooks are removed and train/eval flags restored
in a `finally`, whatever the forward pass does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from archviz.errors import ArchvizError
from archviz.models.describe import Layout, layout
from archviz.models.facts import config_facts
from archviz.models.inputs import model_dtype
from archviz.records import Architecture, ModuleRecord, ShapeTree, Trace
from archviz.run import user_code
from archviz.tracing.copies import NOT_OPENED, type_name
from archviz.tracing.counts import architecture, fold_uncalled, param_counts, totals
from archviz.tracing.dataflow import DataflowRecorder, OpWatcher, PendingNode
from archviz.tracing.flops import OpCounter
from archviz.tracing.lazy import lazy_left
from archviz.tracing.memory_guard import check_fits
from archviz.tracing.setup import (
    check_device,
    make_inputs,
    noted,
    prepare,
    register_hooks,
    script_roots,
    substitutes,
)
from archviz.tracing.shapes import first_dtype, input_tree, shape_tree, tensor_bytes
from archviz.tracing.standins import has_dotted_names, swapped
from archviz.tracing.state import preserved_state
from archviz.tracing.tree_rows import with_tree_rows

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class TraceError(ArchvizError):
    """The forward pass failed; the message names the module and its input shapes."""


def trace(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    inputs: Any = None,
    device: str | torch.device = "meta",
    dtype: torch.dtype | None = None,
    name: str | None = None,
) -> Trace:
    """Trace one forward pass of `model` in eval mode.

    `inputs` (a tensor, a tuple of positional inputs, or a dict of keyword inputs) wins
    over `input_size` (one shape, or a list of shapes for several positional inputs). With
    neither, the model's family default is used (`archviz.models.INPUT_FORMS`): 1x3x224x224
    for classifiers, a list of images for detection, two frames for optical flow, token
    ids for a model whose forward takes `input_ids` (`archviz.models.inputs`). `dtype`
    defaults to the model's own (float32, or the dtype its config was built in).
    """
    target = check_device(device)
    dtype = model_dtype(model) if dtype is None and isinstance(model, nn.Module) else dtype
    dtype = torch.float32 if dtype is None else dtype
    # before any real allocation: a meta trace bounds what the real one needs
    meta = partial(trace, model, input_size, inputs=inputs, device="meta", dtype=dtype)
    check_fits(model, input_size, inputs, target, dtype, meta)
    prepared, notes = prepare(model, target, dtype)
    try:
        result = _run(prepared, input_size, inputs, target, dtype, name)
    except TraceError:
        if not script_roots(model):
            raise
        # An opened TorchScript module's Python class failed (an attribute TorchScript
        # ignored, say): trace the scripted modules as they are, one node each.
        prepared, notes = prepare(model, target, dtype, open_scripted=False)
        result = _run(prepared, input_size, inputs, target, dtype, name)
    return noted(result, notes + lazy_left(prepared))


def _run(model: nn.Module, input_size, inputs, target: torch.device, dtype, name) -> Trace:
    """The forward pass with hooks on `model` as prepared, and its records."""
    args, kwargs = make_inputs(model, input_size, inputs, target, dtype)
    names = {m: n for n, m in model.named_modules()}
    params = param_counts(model)
    found = layout(model)
    leaves = {m: not m._modules for m in names}
    recorder = _Recorder(names, params, leaves, architecture(model, found), found)
    stand_ins = substitutes(model, target, dtype)
    modes = {m: m.training for m in model.modules()}
    handles: list[Any] = []
    try:
        register_hooks(handles, model, names, recorder, lambda: params.update(param_counts(model)))
        model.eval()
        recorder.graph.inputs(args, kwargs, shape_tree)
        # inference_mode makes flop counting silently see nothing; no_grad does not.
        with (
            torch.inference_mode(False),
            torch.no_grad(),
            no_fused_attention(),
            recorder.counter,
            preserved_state(model),  # attributes the forward rebinds come back afterwards
            user_code("forward", where=lambda: recorder.where(name)),  # sys.exit, --timeout
        ):
            try:
                if stand_ins is None:
                    output = model(*args, **kwargs)
                elif has_dotted_names(model):  # functional_call splits names at dots
                    with swapped(model, stand_ins):
                        output = model(*args, **kwargs)
                else:
                    output = functional_call(model, stand_ins, args, kwargs, tie_weights=True)
            finally:
                recorder.watcher.off()
        recorder.graph.output(output, shape_tree)
    except Exception as exc:
        raise _batch_hint(recorder.failure(exc), args if inputs is None else ()) from exc
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.train(training)
    result = recorder.finish(
        model=name or type_name(model),
        device=str(target),
        dtype=str(dtype).removeprefix("torch."),
        inputs=input_tree(args, kwargs),
        output=shape_tree(output),
        totals=totals(
            model,
            params,
            recorder.counter,
            recorder.activation_bytes,
            tensor_bytes(args) + tensor_bytes(kwargs),
        ),
    )
    facts = config_facts(model)  # a transformer's config, as plain values (heads, vocab...)
    if facts:
        result.extra["config"] = facts
    return result


@contextmanager
def no_fused_attention() -> Iterator[None]:
    """Keep nn.MultiheadAttention and nn.TransformerEncoderLayer off their fused fast path.

    In eval mode under no_grad on cpu/cuda they call `_native_multi_head_attention`, one op
    with no FLOP formula, so attention would count 0 there (and not on meta, where the fast
    path is never taken). The regular path runs the same maths as ops with formulas.
    """
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


@dataclass
class _Call:
    """A module call in flight; becomes a ModuleRecord when it returns."""

    module: nn.Module
    name: str
    call: int
    parent: str | None
    inputs: ShapeTree
    flops0: int
    elementwise0: int
    child_flops: int = 0
    child_elementwise: int = 0
    index: int = 0
    id: str = ""  # graph id: the name, with ":k" for the k-th later call
    leaf: bool = False
    depth: int = 0  # call depth: how many module calls enclose this one
    scope: tuple[str, ...] = ()  # graph ids of the enclosing calls, root excluded
    inner: tuple[str, ...] = ()  # the scope of what runs inside this call
    sources: list = field(default_factory=list)  # producers of the inputs
    ops: list[int] = field(default_factory=list)  # op nodes recorded directly in this call
    child_calls: int = 0


@dataclass
class _Recorder:
    names: dict[nn.Module, str]
    params: dict[str, tuple[int, int, int, int]]  # own, total, trainable total, buffers total
    leaves: dict[nn.Module, bool]  # read once before the forward: no child modules
    arch: Architecture | None
    layout: Layout | None
    counter: OpCounter = field(default_factory=OpCounter)
    stack: list[_Call] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    records: list[ModuleRecord | None] = field(default_factory=list)
    activation_bytes: int = 0
    graph: DataflowRecorder = field(default_factory=DataflowRecorder)
    watcher: OpWatcher = field(init=False)

    def __post_init__(self) -> None:
        self.watcher = OpWatcher(self.graph, self._op_scope, shape_tree)

    def _op_scope(self) -> tuple[tuple[str, ...], list[int]] | None:
        """Where a functional op runs now; None inside a leaf module or outside the model."""
        if not self.stack or self.stack[-1].leaf:
            return None
        return self.stack[-1].inner, self.stack[-1].ops

    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.watcher.off()  # our own shape reads are not the model's ops
        name = self.names[module]
        call = self.calls.get(name, 0)
        self.calls[name] = call + 1
        caller = self.stack[-1] if self.stack else None
        inputs = input_tree(args, kwargs)
        frame = _Call(
            module,
            name,
            call,
            caller.name if caller else None,
            inputs,
            self.counter.flops,
            self.counter.elementwise,
        )
        frame.index = len(self.records)
        frame.id = name if call == 0 else f"{name}:{call}"
        frame.leaf = self.leaves[module]
        frame.depth = len(self.stack)
        frame.scope = caller.inner if caller else ()
        frame.inner = (*frame.scope, frame.id) if name else frame.scope
        frame.sources = self.graph.sources((args, kwargs))
        if caller:
            caller.child_calls += 1
        self.records.append(None)  # keep call order: the record is filled in on return
        self.stack.append(frame)
        self._resume()

    def _resume(self) -> None:
        """Watch functional ops again if a container's own code runs next."""
        if self.stack and not self.stack[-1].leaf:
            self.watcher.on()

    def post(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.watcher.off()
        frame = self.stack.pop()
        self._node(frame, module, output)
        flops_total = self.counter.flops - frame.flops0
        elementwise_total = self.counter.elementwise - frame.elementwise0
        if self.stack:
            self.stack[-1].child_flops += flops_total
            self.stack[-1].child_elementwise += elementwise_total
        is_leaf = self.leaves[module]
        # After the forward: a lazy module's parameters exist only now.
        shapes = tuple(tuple(p.shape) for p in module._parameters.values() if p is not None)
        out_bytes = tensor_bytes(output)
        if is_leaf:
            self.activation_bytes += out_bytes
        own, total, trainable, buffers = self.params[frame.name]
        stage, block = self.layout.locate(frame.name) if self.layout else (None, None)
        flops = flops_total - frame.child_flops
        self.records[frame.index] = ModuleRecord(
            name=frame.name,
            type=type_name(module),
            depth=frame.depth,
            parent=frame.parent,
            stage=stage,
            block=block,
            call=frame.call,
            input_shapes=frame.inputs,
            output_shapes=shape_tree(output),
            dtype=first_dtype(output),
            is_leaf=is_leaf,
            params=own if frame.call == 0 else 0,
            params_total=total,
            trainable_total=trainable,
            buffers_total=buffers,
            macs=flops // 2,
            macs_total=flops_total // 2,
            flops=flops,
            flops_total=flops_total,
            elementwise_flops=elementwise_total - frame.child_elementwise,
            elementwise_flops_total=elementwise_total,
            output_bytes=out_bytes,
            param_shapes=shapes,
            container=isinstance(module, _CONTAINERS),
            note=NOT_OPENED if isinstance(module, torch.jit.ScriptModule) else "",
        )
        self._resume()

    def _node(self, frame: _Call, module: nn.Module, output: Any) -> None:
        """A call that ran no child module is one graph node; its own ops fold into it."""
        if not frame.leaf and frame.child_calls:
            return
        for index in frame.ops:
            self.graph.nodes[index].alive = False
        label = frame.id or "model"
        node = PendingNode("module", type(module).__name__, frame.scope, frame.index,
                        shape_tree(output), frame.sources, label)  # fmt: skip
        self.graph.add(node, output)

    def where(self, model: str | None) -> str:
        """The module running now (and the model's name), for a --timeout message."""
        of = f" of {_short(model)}" if model else ""
        if not self.stack:
            return f"during the forward{of}"
        frame = self.stack[-1]
        shown = _short(frame.name) if frame.name else "the model"
        return f"in module {shown} ({type(frame.module).__name__}){of} during the model's forward"

    def failure(self, exc: Exception) -> Exception:
        if isinstance(exc, ArchvizError) or not self.stack:
            return exc
        frame = self.stack[-1]
        where = frame.name or "the model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        expects = getattr(frame.module, "in_channels", None) or getattr(
            frame.module, "in_features", None
        )
        hint = f"; it expects {expects} input channels/features" if expects else ""
        if not frame.name and isinstance(exc, TypeError) and "positional argument" in first:
            hint = (
                "; it takes more inputs: archviz.trace(model, [(1, 10), ()]) gives one "
                "shape per positional input (() is a 0-d tensor)"
            )
        return TraceError(
            f"forward pass failed in {where} ({type_name(frame.module)}) "
            f"with input shapes {frame.inputs}: {first}{hint}"
        )

    def finish(self, *, model, device, dtype, inputs, output, totals) -> Trace:
        kept = [i for i, r in enumerate(self.records) if r is not None]
        tree = {n: (type_name(m), self.params[n]) for m, n in self.names.items()}
        rows, moved = with_tree_rows([r for r in self.records if r is not None], tree,
                                     set(self.calls))  # fmt: skip
        listed = {*self.calls, *(r.name for r in rows if not r.called)}
        records = fold_uncalled(rows, self.params, listed)
        uncounted = tuple(sorted(self.counter.uncounted.items()))
        nodes, edges = self.graph.finish(dict(zip(kept, moved, strict=True)))
        return Trace(
            model, inputs, output, device, dtype, records, totals, uncounted, self.arch,
            nodes=nodes, edges=edges,
        )  # fmt: skip


def _short(name: str, limit: int = 80) -> str:
    return repr(name if len(name) <= limit else name[:limit] + "...")


def _batch_hint(error: Exception, made: tuple) -> Exception:
    """A failure on one 3-d input made from a size is most often a missing batch dimension."""
    one = made[0] if len(made) == 1 else None
    if not isinstance(error, TraceError) or not isinstance(one, torch.Tensor) or one.dim() != 3:
        return error
    size = (1, *one.shape)
    return TraceError(
        f"{error}; is the batch dimension missing? Try input size {size} "
        f"(--input {'x'.join(map(str, size))})"
    )
