"""What a transformer's config says about it, as plain values: layers, heads, KV heads,
sizes, vocabulary, attention window, experts, dtype.

Read from the config object the model was built from (`model.config`, as Hugging Face
models carry it), through the standard attribute names transformers maps every config
to (`num_hidden_layers` is GPT-2's `n_layer` and T5's `num_layers`). Counts (parameters,
FLOPs) never come from here: they come from the trace.
"""

from __future__ import annotations

from typing import Any

from torch import nn

Fact = int | str | bool | None

# fact -> the config attributes that give it, first found wins.
_SOURCES: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "encoder_layers"),
    "decoder_layers": ("num_decoder_layers", "decoder_layers"),
    "heads": ("num_attention_heads", "n_head", "encoder_attention_heads"),
    "kv_heads": ("num_key_value_heads", "multi_query_group_num"),
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "intermediate": ("intermediate_size", "n_inner", "d_ff", "encoder_ffn_dim", "ffn_dim"),
    "head_dim": ("head_dim", "d_kv"),
    "vocab": ("vocab_size",),
    "max_positions": ("max_position_embeddings", "n_positions"),
    "experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "top_k": ("num_experts_per_tok", "moe_top_k"),
    "sliding_window": ("sliding_window",),
}


def config_facts(model: nn.Module) -> dict[str, Fact]:
    """The config's figures by their archviz names; {} for a model without a config."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return {}
    facts: dict[str, Fact] = {name: _first(config, keys) for name, keys in _SOURCES.items()}
    facts["model_type"] = _plain(getattr(config, "model_type", None))
    names = getattr(config, "architectures", None) or [type(model).__name__]
    facts["architecture"] = str(names[0])
    facts["encoder_decoder"] = bool(getattr(config, "is_encoder_decoder", False))
    if not facts["encoder_decoder"]:
        facts["decoder_layers"] = None
    heads, hidden = facts["heads"], facts["hidden"]
    if facts["kv_heads"] is None and isinstance(heads, int):
        facts["kv_heads"] = 1 if getattr(config, "multi_query", False) else heads
    if facts["head_dim"] is None and isinstance(heads, int) and isinstance(hidden, int):
        facts["head_dim"] = hidden // heads
    if facts["intermediate"] is None and isinstance(hidden, int):
        facts["intermediate"] = 4 * hidden  # GPT-2's n_inner=None means 4 x n_embd
    if getattr(config, "use_sliding_window", True) is False:
        facts["sliding_window"] = None  # Qwen2 carries a window it does not use
    # transformers 5 calls it `dtype` and warns on reading `torch_dtype`; 4.x has only that.
    key = "dtype" if hasattr(config, "dtype") else "torch_dtype"
    dtype = getattr(config, key, None)
    facts["dtype"] = str(dtype).removeprefix("torch.") if dtype is not None else None
    return facts


def _first(config: Any, keys: tuple[str, ...]) -> Fact:
    for key in keys:
        value = _plain(getattr(config, key, None))
        if value is not None:
            return value
    return None


def _plain(value: Any) -> Fact:
    """Only plain scalars: a config's nested objects and lists are not facts here."""
    return value if isinstance(value, (int, str, bool)) else None
