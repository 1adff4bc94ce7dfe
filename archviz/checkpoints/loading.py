"""Load a state_dict into a reference as PyTorch would, and say what did not fit.

The key check runs on a weightless copy (every tensor on `meta`), so a failing load copies
no weights; only a load that fits is repeated strictly on a real copy, whose module the
forward check then runs.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archviz.checkpoints import remap
from archviz.checkpoints.forward_check import first_line


@dataclass(frozen=True)
class ShapeMismatch:
    key: str
    candidate: tuple[int, ...]
    reference: tuple[int, ...]


@dataclass(frozen=True)
class DtypeMismatch:
    key: str
    candidate: str
    reference: str


@dataclass(frozen=True)
class Loaded:
    """What one load attempt found; `module` holds the weights when it loaded strictly."""

    matched: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    shapes: tuple[ShapeMismatch, ...]
    dtypes: tuple[DtypeMismatch, ...]
    error: str | None
    module: nn.Module | None

    @property
    def loads(self) -> bool:
        return not (self.missing or self.unexpected or self.shapes or self.error)


def load(
    state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor], module: nn.Module | None
) -> Loaded:
    """Load into a copy of the reference module as PyTorch would; key logic without one."""
    both = [k for k in expected if k in state_dict]
    shapes = tuple(
        ShapeMismatch(k, tuple(state_dict[k].shape), tuple(expected[k].shape))
        for k in both
        if not remap.same_shape(tuple(state_dict[k].shape), tuple(expected[k].shape))
    )
    bad = {m.key for m in shapes}
    dtypes = tuple(
        DtypeMismatch(k, _dtype(state_dict[k]), _dtype(expected[k]))
        for k in both
        if k not in bad and state_dict[k].dtype != expected[k].dtype
    )
    matched = len(both) - len(bad)
    if module is None:
        missing = tuple(k for k in expected if k not in state_dict)
        unexpected = tuple(k for k in state_dict if k not in expected)
        return Loaded(matched, missing, unexpected, shapes, dtypes, None, None)
    fitting = {k: v for k, v in state_dict.items() if k not in bad}
    try:
        with warnings.catch_warnings():  # "copying into a meta parameter is a no-op": intended
            warnings.simplefilter("ignore", UserWarning)
            found = _skeleton(module).load_state_dict(fitting, strict=False)
        missing = tuple(k for k in found.missing_keys if k not in bad)
        unexpected = tuple(found.unexpected_keys)
        if not (missing or unexpected or shapes):
            probe = copy.deepcopy(module)
            probe.load_state_dict(state_dict, strict=True)  # the verdict, confirmed
            return Loaded(matched, (), (), (), dtypes, None, probe)
    except Exception as exc:
        return Loaded(matched, (), (), shapes, dtypes, first_line(exc), None)
    return Loaded(matched, missing, unexpected, shapes, dtypes, None, None)


def _skeleton(module: nn.Module) -> nn.Module:
    """A copy with every tensor on `meta`: PyTorch's own key logic, without copying weights."""
    memo: dict[int, object] = {}
    for t in module.parameters():
        memo[id(t)] = nn.Parameter(torch.empty_like(t, device="meta"), t.requires_grad)
    for b in module.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(module, memo)


def _dtype(tensor: Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")
