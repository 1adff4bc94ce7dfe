"""Shapes of slow meta kernels, computed once per signature.

On the meta device PyTorch computes batch norm's output shapes by running its Python
decomposition, about 3 ms a call: most of a resnet152 meta forward. The result depends
only on the inputs' shapes, strides and dtypes and on the other arguments, so archviz runs
each distinct call once and hands out fresh empty tensors of the same layout after that.
Only ops that return new tensors (no views, no in-place writes) are cached.
"""

from __future__ import annotations

from typing import Any

import torch

aten = torch.ops.aten

CACHED = {
    aten.native_batch_norm.default,
    aten._native_batch_norm_legit_no_training.default,
    aten._native_batch_norm_legit.default,
    aten._native_batch_norm_legit.no_stats,
    aten.native_layer_norm.default,
    aten.native_group_norm.default,
}

_Layout = tuple[tuple[int, ...], tuple[int, ...], torch.dtype]
_memo: dict[tuple, tuple[_Layout, ...]] = {}


def _key(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), value.stride(), value.dtype)
    if isinstance(value, (tuple, list)):
        return tuple(_key(v) for v in value)
    return value


def run(func: Any, args: tuple, kwargs: dict) -> Any:
    """func(*args, **kwargs), from the cache when every tensor argument is on meta."""
    if func not in CACHED or not all(
        a.device.type == "meta" for a in args if isinstance(a, torch.Tensor)
    ):
        return func(*args, **kwargs)
    key = (func, _key(args), _key(tuple(sorted(kwargs.items()))))
    try:
        layouts = _memo.get(key)
    except TypeError:  # an unhashable argument: no cache for this call
        return func(*args, **kwargs)
    if layouts is None:
        out = func(*args, **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        _memo[key] = tuple((tuple(o.shape), o.stride(), o.dtype) for o in outs)
        return out
    fresh = tuple(
        torch.empty_strided(shape, stride, dtype=dtype, device="meta")
        for shape, stride, dtype in layouts
    )
    return fresh if len(fresh) > 1 else fresh[0]
