"""Put a model's attributes back exactly as they were after a trace, whatever it did.

`functional_call` swaps parameters and buffers only. A forward pass may also store
tensors in plain attributes: torchvision's AnchorGenerator reassigns `cell_anchors`, RAFT
keeps `corr_block.corr_pyramid`. After a meta trace those would be meta tensors and
every later real forward of the same model object would fail. So every module's
`__dict__` is snapshotted (shallowly: which object each attribute names, and the
contents of each list, dict and set) and restored on exit, raise or not.

In-place writes into a tensor's data are not undone (that would mean cloning every
tensor); on `meta` the model's own tensors are never written, because the forward runs
on stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import nn

# Hook registries live in a Module's __dict__ too; trace() adds and removes its own
# hooks around the forward pass, so restoring them here would undo that bookkeeping.
_HOOK_KEYS = frozenset(k for k in vars(nn.Module()) if "hook" in k)


@dataclass
class _Saved:
    """One module's attributes: the objects they named and the contents of containers."""

    attributes: dict[str, Any]
    contents: dict[str, Any]


def _contents(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    return None


def _refill(value: Any, saved: Any) -> None:
    """Put a mutable container's saved contents back in place (same object, old items)."""
    if isinstance(value, list):
        value[:] = saved
    elif isinstance(value, (dict, set)):
        value.clear()
        value.update(saved)


def snapshot(model: nn.Module) -> dict[nn.Module, _Saved]:
    """Every module's attributes (minus hook registries), shallowly."""
    saved = {}
    for module in model.modules():
        attributes = {k: v for k, v in vars(module).items() if k not in _HOOK_KEYS}
        contents = {k: _contents(v) for k, v in attributes.items()}
        saved[module] = _Saved(attributes, {k: c for k, c in contents.items() if c is not None})
    return saved


def restore(saved: dict[nn.Module, _Saved]) -> None:
    """Undo every attribute change since `snapshot`: rebind, refill, delete what was added."""
    for module, state in saved.items():
        current = vars(module)
        for key in [k for k in current if k not in state.attributes and k not in _HOOK_KEYS]:
            del current[key]
        for key, value in state.attributes.items():
            current[key] = value
            if key in state.contents:
                _refill(value, state.contents[key])


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Run the body, then restore every module's attributes, even if the body raised."""
    saved = snapshot(model)
    try:
        yield
    finally:
        restore(saved)
