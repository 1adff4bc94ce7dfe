"""Run a model with stand-in tensors when its module names hold a dot.

`torch.func.functional_call` finds each tensor by splitting its full name at dots, so a
child registered as `_modules["a.b"]` (PyTorch's add_module refuses the dot; the dict
does not) cannot be found. Here each stand-in goes straight into its module's own
`_parameters` / `_buffers` slot, found by identity, and every slot is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn


def has_dotted_names(model: nn.Module) -> bool:
    """True when some child's own name holds a dot, which functional_call cannot address."""
    # named_children, not _modules: a scripted module's _modules does not iterate by name
    return any("." in name for module in model.modules() for name, _ in module.named_children())


@contextmanager
def swapped(model: nn.Module, stand_ins: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """`model` holding `stand_ins` (keyed as named_parameters/named_buffers name them)."""
    originals: dict[str, torch.Tensor] = dict(model.named_parameters())
    originals.update(model.named_buffers())
    by_id = {id(originals[k]): v for k, v in stand_ins.items() if k in originals}
    saved: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for module in model.modules():
            # a stand-in is a plain tensor, as functional_call puts there
            for slots in cast(list[dict[str, Any]], [module._parameters, module._buffers]):
                for attr, tensor in list(slots.items()):
                    if tensor is not None and id(tensor) in by_id:
                        saved.append((slots, attr, tensor))
                        slots[attr] = by_id[id(tensor)]
        yield
    finally:
        for slots, attr, tensor in reversed(saved):
            slots[attr] = tensor
