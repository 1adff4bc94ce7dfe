"""Counting the work of a forward pass, op by op, while it runs.

Conv, matmul and attention FLOPs come from PyTorch's own formulas
(`torch.utils.flop_counter`'s registry), applied with FlopCounterMode's rules (an op
without a formula is decomposed first), so totals equal FlopCounterMode's exactly.
PyTorch counts a multiply-add as 2 FLOPs; archviz reports MACs = FLOPs / 2 for those ops.

Elementwise work has no formula there, so archviz counts it by this convention, in its
own column, never mixed into the FLOP totals:

| op                                     | FLOPs counted                        |
|----------------------------------------|--------------------------------------|
| pointwise (ReLU, add, mul, sigmoid...) | 1 per output element                 |
| batch norm                             | 2 per output element (scale, shift)  |
| layer / group norm                     | 5 per output element (with stats)    |
| softmax, log-softmax                   | 3 per output element                 |
| max / avg pooling                      | kernel area per output element       |
| adaptive pooling, mean, sum            | 1 per input element                  |

Ops that move or view data (reshape, cat, copy) are free. Any other op that ran is listed
in `uncounted`, so a 0 is never mistaken for "free".
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from archviz import metacache

aten = torch.ops.aten

CONVENTIONS: dict[str, str] = {
    "pointwise": "1 FLOP per output element",
    "batch norm": "2 FLOPs per output element",
    "layer/group norm": "5 FLOPs per output element",
    "softmax": "3 FLOPs per output element",
    "pooling": "kernel area per output element",
    "adaptive pooling, mean, sum": "1 FLOP per input element",
}

_PER_OUTPUT = {
    "native_batch_norm": 2,
    "_native_batch_norm_legit": 2,
    "_native_batch_norm_legit_no_training": 2,
    "_native_batch_norm_legit_functional": 2,
    "cudnn_batch_norm": 2,
    "miopen_batch_norm": 2,
    "native_layer_norm": 5,
    "native_group_norm": 5,
    "_softmax": 3,
    "_log_softmax": 3,
    "_safe_softmax": 3,
}
_KERNEL_POOLS = {"max_pool2d_with_indices", "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"}
_PER_INPUT = {
    "_adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "mean",
    "sum",
    "amax",
    "_adaptive_avg_pool3d",
}
# Activations PyTorch does not tag as pointwise; counted like them, 1 per output element.
_ACTIVATIONS = {"hardswish", "hardsigmoid", "silu", "mish", "gelu", "elu", "leaky_relu"}
_CONVENTION_OPS = set(_PER_OUTPUT) | _KERNEL_POOLS | _PER_INPUT
_FREE = {
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "flatten",
    "clone", "detach", "contiguous", "cat", "stack", "select", "slice", "split",
    "split_with_sizes", "unsqueeze", "squeeze", "as_strided", "_to_copy", "copy_", "copy",
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like",
    "new_empty", "new_zeros", "new_ones", "full", "fill_", "unbind", "embedding",
    "index_select", "arange", "lift_fresh", "alias", "_reshape_alias", "unfold",
    "constant_pad_nd", "native_dropout", "dropout", "gather", "index", "roll", "_to_dtype",
    "chunk", "narrow", "repeat", "new_empty_strided", "masked_fill", "zero_", "scalar_tensor",
}  # fmt: skip


def _first_numel(tree: Any) -> int:
    if isinstance(tree, (tuple, list)):
        return _first_numel(tree[0]) if tree else 0
    return tree.numel() if isinstance(tree, torch.Tensor) else 0


def elementwise_flops(name: str, args: tuple, out: Any) -> int:
    """FLOPs of one conventional op (see the table above); pointwise ops are the default."""
    if name in _PER_OUTPUT:
        return _PER_OUTPUT[name] * _first_numel(out)
    if name in _KERNEL_POOLS:
        kernel = args[1] if len(args) > 1 else (1,)
        return math.prod(kernel) * _first_numel(out)
    if name in _PER_INPUT:
        return _first_numel(args[0]) if args else 0
    return _first_numel(out)


def _inplace_of_pointwise(name: str) -> bool:
    """In-place ops (`relu_`, `hardswish_`) lack the pointwise tag; their plain twin may not."""
    if name.rstrip("_") in _ACTIVATIONS:
        return True
    base = getattr(aten, name[:-1], None) if name.endswith("_") else None
    overload = getattr(base, "default", None)
    return overload is not None and torch.Tag.pointwise in overload.tags


class OpCounter(TorchDispatchMode):
    """Running totals of FLOPs (PyTorch's formulas) and elementwise FLOPs (convention)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.elementwise = 0
        self.uncounted: Counter[str] = Counter()
        self._kinds: dict[Any, tuple[str, bool, bool]] = {}

    def _kind(self, func: Any) -> tuple[str, bool, bool]:
        """(name, counted by convention, free), cached per op overload."""
        kind = self._kinds.get(func)
        if kind is None:
            name = func._overloadpacket.__name__
            pointwise = torch.Tag.pointwise in func.tags or _inplace_of_pointwise(name)
            free = name.rstrip("_") in _FREE or bool(getattr(func, "is_view", False))
            kind = (name, pointwise or name in _CONVENTION_OPS, free)
            self._kinds[func] = kind
        return kind

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        if packet in flop_registry:
            out = func(*args, **kwargs)
            self.flops += flop_registry[packet](*args, **kwargs, out_val=out)
            return out
        name, conventional, free = self._kind(func)
        if conventional or free:
            # These never decompose into ops with a formula, so skipping FlopCounterMode's
            # decomposition changes no FLOP count (and saves most of the tracing time).
            out = metacache.run(func, args, kwargs)
            if conventional:
                self.elementwise += elementwise_flops(name, args, out)
            return out
        if func is not torch.ops.prim.device.default:
            with self:  # as FlopCounterMode: composite ops are counted through their parts
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        self.uncounted[name] += 1
        return func(*args, **kwargs)
