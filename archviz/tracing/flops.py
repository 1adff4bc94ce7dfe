"""Counting the work of a forward pass, op by op, while it runs.

Conv and matmul FLOPs come from PyTorch's own formulas (`torch.utils.flop_counter`'s
registry), applied with FlopCounterMode's rules (an op without a formula is decomposed
first). Attention is archviz's own formula (`attention.py`), one for every kernel that can
run it, because which fused kernels torch's registry knows changes with the torch version.
PyTorch counts a multiply-add as 2 FLOPs; archviz reports MACs = FLOPs / 2 for those ops.

Elementwise work has no formula there, so archviz counts it by this convention, in its
own column, never mixed into the FLOP totals:

| op                                     | FLOPs counted                        |
|----------------------------------------|--------------------------------------|
| pointwise (ReLU, add, mul, sigmoid...) | 1 per output element                 |
| batch norm                             | 2 per output element (scale, shift)  |
| layer / group norm                     | 5 per output element (with stats)    |
| softmax, log-softmax                   | 3 per output element                 |
| max / avg pooling (1-D, 2-D, 3-D)      | kernel size per output element       |
| adaptive pooling, mean, sum            | 1 per input element                  |
| fused attention (SDPA on CPU/CUDA)     | what its unfused form counts         |

Fused attention (`scaled_dot_product_attention` as one kernel) counts exactly what the
same call counts unfused, as it runs on `meta`: its two matmuls, the scaling of q and k
(1 per element), an additive mask (1 per score), softmax (3 per score). So meta, CPU and
CUDA agree, on every torch.

Ops that move or view data (reshape, cat, copy) are free. Any other op that ran is listed
in `uncounted`, so a 0 is never mistaken for "free". An op that needs tensor values
(`nonzero`, `.item()`) cannot run on `meta`; it fails with a `MetaDeviceError` naming it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from archviz.tracing import attention, metacache

aten = torch.ops.aten

CONVENTIONS: dict[str, str] = {
    "pointwise": "1 FLOP per output element",
    "batch norm": "2 FLOPs per output element",
    "layer/group norm": "5 FLOPs per output element",
    "softmax": "3 FLOPs per output element",
    "pooling": "kernel size per output element",
    "adaptive pooling, mean, sum": "1 FLOP per input element",
    "fused attention": "what the unfused attention counts (scaling, mask, softmax)",
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
    "floor_divide": 1,
}
_KERNEL_POOLS = {
    f"{kind}_pool{d}d{suffix}"
    for kind in ("max", "avg")
    for d in (1, 2, 3)
    for suffix in ("", "_with_indices")
}
_PER_INPUT = {
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "mean",
    "sum",
    "amax",
    "amin",
    "max",
    "min",
    "cumsum",  # one add per input element
}
# Ops whose output depends on tensor values: the meta device has none to give.
_DATA_DEPENDENT = {
    "nonzero", "nonzero_static", "argwhere", "_local_scalar_dense", "item", "is_nonzero",
    "masked_select", "unique_dim", "_unique", "_unique2", "unique_consecutive",
    "repeat_interleave", "bincount", "histc", "equal", "allclose", "_assert_async",
}  # fmt: skip
_DATA_DEPENDENT_NAMES = {
    "_local_scalar_dense": "Tensor.item() (or bool/int of a tensor)",
    "index": "indexing with a boolean mask (aten::index)",
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
    "linspace", "im2col", "unsafe_split", "unsafe_split_with_sizes", "_local_scalar_dense",
    "_record_function_enter", "_record_function_enter_new", "full_like", "new_full",
    "_unsafe_index", "index_put", "_index_put_impl", "nonzero", "index_fill",
    "_record_function_exit", "tril", "triu",
    # a mixture-of-experts router's selection and counting: comparisons, no multiply-adds
    "topk", "sort", "argsort", "histc",
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
        kernel = [kernel] if isinstance(kernel, int) else list(kernel)
        dims = int(name[name.index("pool") + 4])  # max_pool3d_with_indices -> 3
        return math.prod(kernel * dims if len(kernel) == 1 else kernel) * _first_numel(out)
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


class MetaDeviceError(RuntimeError):
    """An op needs tensor values, which meta tensors do not have: trace on a real device."""


def _meta_failure(name: str, args: tuple, exc: Exception) -> Exception:
    """A one-line MetaDeviceError naming the op, if `exc` is the meta device's limit."""
    on_meta = any(isinstance(a, torch.Tensor) and a.is_meta for a in _flat(args))
    limit = name in _DATA_DEPENDENT or "meta" in str(exc).lower()
    if isinstance(exc, MetaDeviceError) or not (on_meta and limit):
        return exc
    what = _DATA_DEPENDENT_NAMES.get(name, f"aten::{name}")
    return MetaDeviceError(
        f"{what} needs tensor values, which the meta device does not have; "
        "trace on a real device: --device cpu (device='cpu')"
    )


def _flat(tree: Any) -> list[Any]:
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _flat(item)]
    return [tree]


class OpCounter(TorchDispatchMode):
    """Running totals of FLOPs (PyTorch's formulas) and elementwise FLOPs (convention)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.elementwise = 0
        self.uncounted: Counter[str] = Counter()
        self.paused = False  # while a lazy module initialises its parameters
        self._kinds: dict[Any, tuple[str, bool, bool]] = {}

    def _kind(self, func: Any) -> tuple[str, bool, bool]:
        """(name, counted by convention, free), cached per op overload."""
        kind = self._kinds.get(func)
        if kind is None:
            name = func._overloadpacket.__name__
            pointwise = torch.Tag.pointwise in func.tags or _inplace_of_pointwise(name)
            # `fill_` and `zero_` are listed as they are; `relu_` is free only if `relu` is.
            free = (
                name in _FREE or name.rstrip("_") in _FREE or bool(getattr(func, "is_view", False))
            )
            # Data movement stays free even where PyTorch tags it pointwise (clone, masked_fill).
            kind = (name, (pointwise or name in _CONVENTION_OPS) and not free, free)
            self._kinds[func] = kind
        return kind

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        try:
            return self._count(func, args, kwargs)
        except (NotImplementedError, RuntimeError) as exc:
            failure = _meta_failure(func._overloadpacket.__name__, args, exc)
            if failure is exc:
                raise
            raise failure from exc

    def _count(self, func: Any, args: tuple, kwargs: dict) -> Any:
        packet = func._overloadpacket
        if packet is aten._grouped_mm:
            out = grouped_mm(func, args, kwargs)
            self.flops += grouped_mm_flops(args[0], args[1], out)
            return out
        if packet.__name__ in attention.OPS:  # before torch's registry: one formula always
            out = func(*args, **kwargs)
            for call in attention.calls(packet.__name__, func, args, kwargs):
                self.flops += 2 * call.macs
                elementwise, uncounted = _unfused_elementwise(call)
                self.elementwise += elementwise + call.bias_adds
                self.uncounted.update(uncounted)
            return out
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


_unfused: dict[attention.Call, tuple[int, Counter[str]]] = {}


def _unfused_elementwise(call: attention.Call) -> tuple[int, Counter[str]]:
    """Elementwise FLOPs (and uncounted ops) of the math path for `call`, run once on meta."""
    if call not in _unfused:
        query, key, value = (
            torch.empty(s, device="meta") for s in (call.query, call.key, call.value)
        )
        mask = (
            None
            if call.mask is None
            else torch.empty(call.mask, dtype=call.mask_dtype, device="meta")
        )
        gqa = {"enable_gqa": True} if call.query[:-2] != call.key[:-2] else {}  # torch >= 2.5 only
        counter = OpCounter()
        with counter:  # its parts, not the op itself (which the counter would count as one)
            aten._scaled_dot_product_attention_math.default.decompose(
                query, key, value, mask, 0.0, call.causal, **gqa
            )
        _unfused[call] = (counter.elementwise, counter.uncounted)
    return _unfused[call]


def grouped_mm(func: Any, args: tuple, kwargs: dict) -> torch.Tensor:
    """Run `_grouped_mm` (mixture-of-experts layers); on meta, in any dtype.

    Its meta kernel accepts only bf16/fp16, while the model may be traced in float32: on
    meta the shape is taken from a bf16 run and given the dtype the op would return.
    """
    a = args[0]
    if not a.is_meta or a.dtype in (torch.bfloat16, torch.float16):
        return func(*args, **kwargs)
    half = [x.to(torch.bfloat16) if isinstance(x, torch.Tensor) and x.is_floating_point()
            else x for x in args[:2]]  # fmt: skip
    out = func(*half, *args[2:], **{k: v for k, v in kwargs.items() if k != "out_dtype"})
    return torch.empty_like(out, dtype=kwargs.get("out_dtype") or a.dtype)


def grouped_mm_flops(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> int:
    """2 x M x K x N over the groups: every row of `a` meets one group's matrix once.

    A mixture-of-experts layer sorts each token's top-k (token, expert) pairs into the rows
    of `a` (2-D, M x K) and stacks the experts' weights in `b` (E x K x N): each pair costs
    one K x N matmul, so the count is each token's top-k experts, never all of them. With
    both 3-D (a batch of groups) it is a batched matmul; with both 2-D the groups split K.
    """
    if a.dim() == 2 and b.dim() == 2:  # out: G x M x N, the groups partition K
        return 2 * a.shape[0] * a.shape[1] * b.shape[1]
    return 2 * out.numel() * a.shape[-1]
