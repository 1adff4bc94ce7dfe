"""What people compare LLMs on, from one trace: parameters split into embedding and
non-embedding, FLOPs per token, KV-cache bytes per token, the config's shape (layers,
heads, KV heads, sizes, vocabulary), the attention kind, experts, and the repeated blocks.

Counts come from the trace; the shape from the config the model was built from (the
Trace's `extra["config"]`, see archviz/models/facts.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from archviz.analysis.blocks import Stack, repeated_blocks
from archviz.records import Trace

TOKEN_INPUTS = ("input_ids", "decoder_input_ids")  # whose elements are the tokens


@dataclass(frozen=True)
class LLMFacts:
    """One model's figures; None where its config does not say."""

    embedding_params: int  # lookup tables (token, position embeddings), counted once
    non_embedding_params: int
    tokens: int  # token ids in the traced input (N x T)
    flops_per_token: int  # the forward's FLOPs / tokens, at the traced sequence length
    kv_cache_bytes_per_token: int | None  # 2 (K, V) x layers x KV heads x head dim x dtype
    dtype: str
    layers: int | None
    decoder_layers: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None
    hidden: int | None
    intermediate: int | None
    vocab: int | None
    attention: str  # "full (MHA)", "GQA (8 KV heads)", "MQA", "+ sliding window 4096"
    experts: int | None
    top_k: int | None
    blocks: tuple[Stack, ...]


def llm_facts(result: Trace) -> LLMFacts | None:
    """The LLM view of a trace of a model built from a config; None for other models."""
    config = result.extra.get("config")
    tokens = _tokens(result.input_shapes)
    if not config or not tokens:
        return None
    embedding = sum(
        r.params
        for r in result.records
        if r.is_leaf and r.macs_total == 0 and any(len(s) == 2 for s in r.param_shapes)
    )
    return LLMFacts(
        embedding_params=embedding,
        non_embedding_params=result.totals.params - embedding,
        tokens=tokens,
        flops_per_token=result.totals.flops // tokens,
        kv_cache_bytes_per_token=_kv_bytes(config, result.dtype),
        dtype=result.dtype,
        layers=_int(config, "layers"),
        decoder_layers=_int(config, "decoder_layers"),
        heads=_int(config, "heads"),
        kv_heads=_int(config, "kv_heads"),
        head_dim=_int(config, "head_dim"),
        hidden=_int(config, "hidden"),
        intermediate=_int(config, "intermediate"),
        vocab=_int(config, "vocab"),
        attention=attention_kind(config),
        experts=_int(config, "experts"),
        top_k=_int(config, "top_k"),
        blocks=repeated_blocks(result),
    )


def attention_kind(config: dict) -> str:
    """Full multi-head, grouped-query or multi-query attention, and a sliding window."""
    heads, kv = _int(config, "heads"), _int(config, "kv_heads")
    if heads is None or kv is None or kv == heads:
        kind = "full (MHA)"
    elif kv == 1:
        kind = "MQA (1 KV head)"
    else:
        kind = f"GQA ({kv} KV heads)"
    window = _int(config, "sliding_window")
    return f"{kind}, sliding window {window}" if window else kind


def _kv_bytes(config: dict, dtype: str) -> int | None:
    """Keys and values of every decoder layer's self-attention for one token."""
    layers = _int(config, "decoder_layers") or _int(config, "layers")
    kv, head_dim = _int(config, "kv_heads"), _int(config, "head_dim")
    if layers is None or kv is None or head_dim is None:
        return None
    size = torch.empty((), dtype=getattr(torch, dtype, torch.float32)).element_size()
    return 2 * layers * kv * head_dim * size


def _tokens(inputs: object) -> int:
    """Token ids in the input: input_ids' elements (a speech model's decoder tokens)."""
    if isinstance(inputs, tuple) and not all(isinstance(d, int) for d in inputs):
        return next((n for n in map(_tokens, inputs) if n), 0)  # keywords follow positionals
    if isinstance(inputs, dict):
        for key in TOKEN_INPUTS:
            shape = inputs.get(key)
            if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape):
                return math.prod(shape)
    return 0


def _int(config: dict, key: str) -> int | None:
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
