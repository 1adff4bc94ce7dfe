"""How much memory a model needs at a batch size, training or not, and where it fits.

- parameters and buffers: the traced model's own, at the dtype;
- gradients: one per trainable parameter (training only);
- optimizer state: AdamW keeps two tensors per parameter (exp_avg, exp_avg_sq), SGD with
  momentum one (the momentum buffer), plain inference none;
- activations: what autograd saves for backward, *measured* on meta with
  `saved_tensors_hooks` (archviz.tracing.saved), each storage once;
- the inference peak: the largest sum of tensors alive at once along the dataflow graph
  (a tensor lives from the node that makes it to its last consumer; views share their
  source). Temporaries inside one module are not seen, so this is a lower bound;
- an LLM's KV cache: 2 x layers x key/value heads x head size per token, from the
  model's config, where the model generates text.

`fits` is the largest batch that fits in each hardware's memory: activations are measured
at the batch and at twice it, so the per-sample slope and the fixed part are both seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from archviz.analysis.graph import predecessors
from archviz.analysis.hardware import DTYPE_BYTES, Hardware, check_dtype, hardware
from archviz.analysis.roofline import VIEW_OPS, elements
from archviz.errors import ArchvizError
from archviz.models import resolve_model
from archviz.records import Trace

OPTIMIZER_STATES = {"adamw": 2, "sgd": 1, "none": 0}  # tensors kept per trainable parameter


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes by kind at one batch size; `fits` = the largest batch per hardware."""

    model: str
    batch: int
    input_shapes: Any
    dtype: str
    train: bool
    optimizer: str
    params_bytes: int
    buffers_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int  # saved for backward (not training: in eval mode, e.g. fine-tuning)
    peak_bytes: int  # inference: activations alive at once along the dataflow graph
    kv_cache_bytes: int  # inference: the KV cache at this batch and sequence length
    kv_cache_bytes_per_token: int
    total_bytes: int
    per_sample_bytes: int  # what one more sample adds to the total
    fits: dict[str, int] = field(default_factory=dict)
    hardware: tuple[Hardware, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hardware"] = {
            hw.name: {"memory_bytes": hw.memory_bytes, "label": hw.label, "source": hw.source}
            for hw in self.hardware
        }
        return data


def optimizer_bytes(trainable: int, optimizer: str, item: int) -> int:
    """State an optimizer keeps: AdamW two tensors per parameter, SGD momentum one."""
    if optimizer not in OPTIMIZER_STATES:
        choices = ", ".join(OPTIMIZER_STATES)
        raise ArchvizError(f"unknown optimizer {optimizer!r}; choose from {choices}")
    return OPTIMIZER_STATES[optimizer] * trainable * item


def inference_peak(trace: Trace, item: int) -> int:
    """The most bytes of graph tensors alive at once (inputs included), at `item` bytes each.

    A view op's output shares its source's memory: it makes nothing new but keeps the
    source alive until the view's last consumer.
    """
    preds = predecessors(trace)
    order = {n.id: i for i, n in enumerate(trace.nodes)}
    root: dict[str, str] = {}
    size: dict[str, int] = {}
    for node in trace.nodes:
        if node.kind == "op" and node.type in VIEW_OPS and preds[node.id]:
            root[node.id] = root[preds[node.id][0]]
        else:
            root[node.id] = node.id
            size[node.id] = 0 if node.kind == "output" else elements(node.output_shapes) * item
    last = {r: order[r] for r in size}
    for node in trace.nodes:
        for src in preds[node.id]:
            last[root[src]] = max(last[root[src]], order[node.id])
    frees: dict[int, list[str]] = {}
    for r, i in last.items():
        frees.setdefault(i, []).append(r)
    live = peak = 0
    for i, node in enumerate(trace.nodes):
        live += size.get(node.id, 0)
        peak = max(peak, live)
        live -= sum(size[r] for r in frees.get(i, []))
    return peak


def kv_cache_per_token(model: nn.Module, item: int) -> int:
    """Bytes one token adds to the KV cache: 2 (K and V) x layers x kv heads x head size.

    Read from the model's config where the model generates text (it has a KV cache);
    0 for any other model.
    """
    config = getattr(model, "config", None)
    can_generate = getattr(model, "can_generate", None)
    if config is None or not callable(can_generate) or not can_generate():
        return 0
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not (layers and heads and hidden):
        return 0
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * item


def memory_of(
    model: str | nn.Module,
    batch: int,
    input_size: Sequence[int] | None = None,
    *,
    inputs: Any = None,
    train: bool = False,
    optimizer: str = "adamw",
    dtype: str = "float32",
    hardware_names: str | Sequence[str] = ("a100", "h100", "h200", "l4", "t4"),
    device: str = "meta",
    name: str | None = None,
) -> MemoryEstimate:
    """Memory of `model` at `batch` (training with `optimizer`, or inference) and fits."""
    check_dtype(dtype)
    if batch < 1:
        raise ArchvizError(f"batch must be a positive integer, got {batch}")
    optimizer = optimizer if train else "none"
    optimizer_bytes(0, optimizer, 1)  # checks the name
    item = DTYPE_BYTES[dtype]
    module = resolve_model(model)
    label = name or (model if isinstance(model, str) else type(model).__name__)
    one, two = (
        _measure(module, b, input_size, inputs, dtype, label, device, train)
        for b in (batch, 2 * batch)
    )
    totals = one.trace.totals
    grads = totals.trainable * item if train else 0
    state = optimizer_bytes(totals.trainable, optimizer, item) if train else 0
    per_token = kv_cache_per_token(module, item)
    varying = [m.saved if train else m.peak + per_token * m.tokens for m in (one, two)]
    params = totals.params * item  # at the dtype: the model is cast to it
    fixed = params + totals.buffer_bytes + grads + state
    total = fixed + varying[0]
    slope = max(0, (varying[1] - varying[0]) // batch)
    chosen = hardware(hardware_names, dtype, ceilings=False) if hardware_names else []
    fits = {hw.name: _largest_batch(hw.memory_bytes, total - slope * batch, slope) for hw in chosen}
    return MemoryEstimate(
        model=one.trace.model, batch=batch, input_shapes=one.trace.input_shapes, dtype=dtype,
        train=train, optimizer=optimizer, params_bytes=params,
        buffers_bytes=totals.buffer_bytes, grads_bytes=grads, optimizer_bytes=state,
        activations_bytes=one.saved, peak_bytes=one.peak, kv_cache_bytes=per_token * one.tokens,
        kv_cache_bytes_per_token=per_token, total_bytes=total, per_sample_bytes=slope,
        fits=fits, hardware=tuple(chosen), notes=_notes(train, per_token, device),
    )  # fmt: skip


@dataclass(frozen=True)
class _Measured:
    trace: Trace
    saved: int  # bytes saved for backward
    peak: int  # inference peak of graph tensors
    tokens: int  # batch x sequence length for token inputs, else 0


def _measure(
    module: nn.Module,
    batch: int,
    input_size: Any,
    inputs: Any,
    dtype: str,
    name: str,
    device: str = "meta",
    train: bool = True,
) -> _Measured:
    """Trace and measure saved tensors at `batch`, on meta (nothing allocated) by default."""
    from archviz.models.registry import input_form
    from archviz.tracing.saved import saved_tensors
    from archviz.tracing.trace import trace

    torch_dtype = getattr(torch, dtype)
    if inputs is not None:
        batched, size = _rebatch(inputs, batch, device), None
    else:
        base = tuple(input_size) if input_size else input_form(module).default
        batched, size = None, (batch, *base[1:])
    traced = trace(module, size, inputs=batched, device=device, dtype=torch_dtype, name=name)
    saved = saved_tensors(
        module, size, inputs=batched, device=device, dtype=torch_dtype, train=train
    )
    first = next(iter(_tensors(batched)), None)
    tokens = first.numel() if first is not None and not first.is_floating_point() else 0
    return _Measured(traced, saved.bytes, inference_peak(traced, DTYPE_BYTES[dtype]), tokens)


def _rebatch(value: Any, batch: int, device: str) -> Any:
    """Every tensor in `value` with its first dimension set to `batch` (on meta: shapes only)."""
    if isinstance(value, torch.Tensor):
        return value.new_zeros((batch, *value.shape[1:]), device=device)
    if isinstance(value, dict):
        return {k: _rebatch(v, batch, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_rebatch(v, batch, device) for v in value)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    items = (
        value.values()
        if isinstance(value, dict)
        else value
        if isinstance(value, (tuple, list))
        else ()
    )
    return [t for v in items for t in _tensors(v)]


def _largest_batch(memory: int, fixed: int, per_sample: int) -> int:
    if fixed + per_sample > memory:
        return 0
    return (memory - fixed) // per_sample if per_sample else 2**31 - 1


def _notes(train: bool, per_token: int, device: str) -> tuple[str, ...]:
    notes = [
        f"activations: tensors autograd saves for backward, measured on {device} "
        f"({'training' if train else 'eval'} mode), each storage once, parameters and "
        "buffers excluded",
        "peak: graph tensors alive at once in inference; temporaries inside a module unseen",
    ]
    if per_token:
        notes.append("KV cache: 2 x layers x kv heads x head size x dtype bytes per token")
    notes.append("total: " + ("params + buffers + grads + optimizer + activations" if train
                              else "params + buffers + inference peak + KV cache"))  # fmt: skip
    return tuple(notes)


def inference_fits(trace: Trace, chosen: Sequence[Hardware]) -> dict[str, int]:
    """The largest inference batch per hardware from one trace (no model run): weights and
    buffers fixed, the graph's activation peak taken as proportional to the batch."""
    item = DTYPE_BYTES.get(trace.dtype, 4)
    first = trace.nodes[0].output_shapes if trace.nodes else None
    batch = first[0] if isinstance(first, tuple) and first and isinstance(first[0], int) else 1
    fixed = trace.totals.params * item + trace.totals.buffer_bytes
    per_sample = -(-inference_peak(trace, item) // max(1, batch))
    return {hw.name: _largest_batch(hw.memory_bytes, fixed, per_sample) for hw in chosen}
