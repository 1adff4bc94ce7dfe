"""Scaled-dot-product attention, counted by archviz whichever kernel runs it.

PyTorch runs `F.scaled_dot_product_attention` as one of several kernels: the math path
(matmuls and a softmax: what runs on `meta`), the CPU flash kernel, CUDA's flash,
memory-efficient and cuDNN kernels, and the MHA fast path (`_native_multi_head_attention`,
also on nested tensors). Which of them `torch.utils.flop_counter` knows depends on the
torch version (2.14 lacks the CPU flash kernel), so archviz counts every one of them with
one formula of its own, the math path's two matmuls:

    q @ k^T:  B * Hq * Lq * Lk * E   MACs
    attn @ v: B * Hq * Lq * Lk * Ev  MACs

B is every batch dimension, Hq the query heads (grouped-query attention repeats the fewer
key/value heads up to Hq), E the query/key width, Ev the value width. The MHA fast path
adds its projections: (2 * Lq + 2 * Lk) * E * E MACs per sequence (q, k, v in, out), and
(Lq + 2 * Lk) * E elementwise FLOPs for the q, k, v biases, as the unfused module counts.

This module only reads shapes. The elementwise work of a call (scaling, mask, softmax) is
what the math path counts for the same `Call`; `flops.OpCounter` runs that on meta.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Call:
    """One attention in the math path's layout: (batch..., length, width) per tensor."""

    query: Shape
    key: Shape
    value: Shape
    mask: Shape | None = None  # an attention mask or bias, as given (broadcastable)
    mask_dtype: torch.dtype | None = None
    causal: bool = False
    projections: int = 0  # MACs of the MHA fast path's in and out projections
    bias_adds: int = 0  # and its q, k, v bias adds: elementwise, as the unfused MHA counts

    @property
    def macs(self) -> int:
        """q @ k^T plus attn @ v (see the module docstring), plus any projections."""
        *batch, length_q, width = self.query
        length_k, width_v = self.key[-2], self.value[-1]
        return math.prod(batch) * length_q * length_k * (width + width_v) + self.projections


def _bound(func: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The op's arguments by schema name, defaults left out."""
    names = [a.name for a in func._schema.arguments]
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def _shape(tensor: Any) -> Shape | None:
    return tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else None


def _dtype(tensor: Any) -> torch.dtype | None:
    return tensor.dtype if isinstance(tensor, torch.Tensor) else None


def _sdpa(b: dict[str, Any]) -> list[Call]:
    """The SDPA family: (batch..., heads, length, width), as F.scaled_dot_product_attention."""
    mask = b.get("attn_mask", b.get("attn_bias"))
    query, key, value = (_shape(b[n]) for n in ("query", "key", "value"))
    assert query and key and value
    return [Call(query, key, value, _shape(mask), _dtype(mask), bool(b.get("is_causal")))]


def _lengths(cumulative: Any, count: int, longest: int) -> list[int]:
    """Sequence lengths of a packed (varlen) batch; the longest for each on meta."""
    if cumulative.is_meta:  # no values: an upper bound, as torch's own counter does
        return [int(longest)] * count
    return [int(n) for n in cumulative.diff().tolist()]


def _packed(b: dict[str, Any], q_lens: str, k_lens: str, longest: tuple[str, str]) -> list[Call]:
    """CUDA's flash / efficient forward: (batch, length, heads, width), or packed sequences
    (total, heads, width) with cumulative lengths."""
    query, key, value = b["query"], b["key"], b["value"]
    causal = bool(b.get("is_causal")) or b.get("custom_mask_type", 0) != 0
    heads_q, heads_k = query.shape[-2], key.shape[-2]
    width, width_v = query.shape[-1], value.shape[-1]
    if b.get(q_lens) is None:
        batch = query.shape[0]
        return [
            Call(
                (batch, heads_q, query.shape[1], width),
                (batch, heads_k, key.shape[1], width),
                (batch, heads_k, value.shape[1], width_v),
                _shape(b.get("bias")),
                _dtype(b.get("bias")),
                causal,
            )
        ]
    count = len(b[q_lens]) - 1
    pairs = zip(
        _lengths(b[q_lens], count, b[longest[0]] or 0),
        _lengths(b[k_lens], count, b[longest[1]] or 0),
        strict=True,
    )
    return [
        Call(
            (1, heads_q, lq, width),
            (1, heads_k, lk, width),
            (1, heads_k, lk, width_v),
            None,
            None,
            causal,
        )
        for lq, lk in pairs
    ]


def _flash(b: dict[str, Any]) -> list[Call]:
    return _packed(b, "cum_seq_q", "cum_seq_k", ("max_q", "max_k"))


def _efficient(b: dict[str, Any]) -> list[Call]:
    return _packed(b, "cu_seqlens_q", "cu_seqlens_k", ("max_seqlen_q", "max_seqlen_k"))


def _sequences(tensor: torch.Tensor) -> list[tuple[int, int]]:
    """(batch, length) groups of a (batch, length, width) tensor, or of a nested one."""
    if tensor.is_nested:
        return [(1, int(size[0])) for size in tensor._nested_tensor_size().tolist()]
    return [(tensor.shape[0], tensor.shape[1])] if tensor.dim() == 3 else [(1, tensor.shape[0])]


def _native_mha(b: dict[str, Any]) -> list[Call]:
    """The MHA fast path: projections in, attention over `num_head` heads, projection out."""
    width, heads = int(b["embed_dim"]), int(b["num_head"])
    masked = b.get("mask") is not None  # counted as one float mask added to the scores
    biased = b.get("qkv_bias") is not None
    calls = []
    for (batch, lq), (_, lk) in zip(_sequences(b["query"]), _sequences(b["key"]), strict=True):
        calls.append(
            Call(
                (batch, heads, lq, width // heads),
                (batch, heads, lk, width // heads),
                (batch, heads, lk, width // heads),
                (lq, lk) if masked else None,
                torch.float32 if masked else None,
                projections=batch * (2 * lq + 2 * lk) * width * width,
                bias_adds=batch * (lq + 2 * lk) * width if biased else 0,
            )
        )
    return calls


_SHAPES: dict[str, Callable[[dict[str, Any]], list[Call]]] = {
    "scaled_dot_product_attention": _sdpa,
    "_scaled_dot_product_attention_math": _sdpa,
    "_scaled_dot_product_attention_math_for_mps": _sdpa,
    "_scaled_dot_product_flash_attention_for_cpu": _sdpa,
    "_scaled_dot_product_flash_attention": _sdpa,
    "_scaled_dot_product_efficient_attention": _sdpa,
    "_scaled_dot_product_cudnn_attention": _sdpa,
    "_scaled_dot_product_fused_attention_overrideable": _sdpa,
    "_flash_attention_forward": _flash,
    "_efficient_attention_forward": _efficient,
    "_native_multi_head_attention": _native_mha,
}
# Only the kernels this torch has: an older torch simply lacks some of them.
OPS: frozenset[str] = frozenset(name for name in _SHAPES if hasattr(torch.ops.aten, name))


def calls(name: str, func: Any, args: tuple, kwargs: dict) -> list[Call]:
    """The attentions one call of the op `name` (one of OPS) computes."""
    return _SHAPES[name](_bound(func, args, kwargs))
