"""The model's own figures around a trace: parameters per module, totals, self-description.

Read from the module tree, not from the forward pass; trace.py combines them with what
the forward recorded.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from archviz.models.describe import Layout
from archviz.records import Architecture, ModuleRecord, Totals
from archviz.tracing.flops import OpCounter
from archviz.tracing.setup import numel


def fold_uncalled(
    records: list[ModuleRecord], params: dict[str, tuple[int, int, int, int]], calls: Container
) -> tuple[ModuleRecord, ...]:
    """Give the parameters of modules that never ran to their nearest ancestor with a row
    (`calls`: the names that ran, and the containers listed for what ran inside them).

    nn.MultiheadAttention reads `out_proj.weight` without calling `out_proj`; without this,
    vit_b_16's records would hold 7.1M fewer parameters than its total.
    """
    extra: dict[str, int] = {}
    for name, (own, *_) in params.items():
        if own and name not in calls:
            owner = name
            while owner and owner not in calls:
                owner = owner.rpartition(".")[0]
            extra[owner] = extra.get(owner, 0) + own
    return tuple(
        replace(r, params=r.params + extra[r.name]) if r.call == 0 and r.name in extra else r
        for r in records
    )


def architecture(model: nn.Module, found: Layout | None) -> Architecture | None:
    if found is None:
        return None
    blocks = [getattr(model, s) for s in found.stages]
    first = blocks[0][0]
    block = getattr(model, "block", type(first))
    return Architecture(
        block=block.__name__,
        layers=tuple(len(s) for s in blocks),
        expansion=int(getattr(block, "expansion", 1)),
        convs_per_block=sum(
            isinstance(m, nn.Conv2d) for n, m in first.named_modules() if "downsample" not in n
        ),
        stages=found.stages,
        stem=found.stem,
        head=found.head,
        groups=int(getattr(model, "groups", getattr(first.conv2, "groups", 1))),
        width_per_group=int(getattr(model, "base_width", 64)),
    )


def param_counts(model: nn.Module) -> dict[str, tuple[int, int, int, int]]:
    """Per module: own params, subtree params, subtree trainable, subtree buffers.

    Tensors are counted by identity, so a tied weight counts once (for its first owner).
    """
    owner: dict[int, str] = {}
    for name, param in model.named_parameters():  # deduplicates tied tensors
        owner[id(param)] = name.rpartition(".")[0]
    counts = {}
    for name, module in model.named_modules():
        own = sum(numel(p) for p in module.parameters(recurse=False) if owner[id(p)] == name)
        unique = {id(p): p for p in module.parameters()}.values()
        buffers = {id(b): b for b in module.buffers()}.values()
        counts[name] = (
            own,
            sum(numel(p) for p in unique),
            sum(numel(p) for p in unique if p.requires_grad),
            sum(numel(b) for b in buffers),
        )
    return counts


def totals(model: nn.Module, params: dict, counter: OpCounter, activation_bytes: int,
           input_bytes: int) -> Totals:  # fmt: skip
    """Whole-model figures: unique parameters and buffers, and the counter's sums."""
    unique = {id(p): p for p in model.parameters()}.values()
    buffers = {id(b): b for b in model.buffers()}.values()
    _, total, trainable, buffer_count = params[""]
    return Totals(
        params=total,
        trainable=trainable,
        buffers=buffer_count,
        param_bytes=sum(_bytes(p) for p in unique),
        buffer_bytes=sum(_bytes(b) for b in buffers),
        macs=counter.flops // 2,
        flops=counter.flops,
        elementwise_flops=counter.elementwise,
        activation_bytes=activation_bytes,
        input_bytes=input_bytes,
    )


def _bytes(tensor: torch.Tensor) -> int:
    """A tensor's bytes; 0 for a lazy one (its element_size() raises)."""
    return 0 if is_lazy(tensor) else tensor.numel() * tensor.element_size()
