"""Copies of the user's model that share its weights, for the models hooks cannot see as they are.

- Lazy modules (nn.LazyLinear...) initialise themselves in place on their first forward.
  The copy holds fresh uninitialised tensors on the trace's device (lazy.py) instead of
  the user's, so the forward materialises those (on meta: shapes only) and the user's model
  stays lazy.
- TorchScript modules cannot take hooks, and run their insides in the TorchScript
  interpreter. A module made by `torch.jit.script` remembers its Python class, constants
  and attributes (its `_concrete_type`); the copy holds that class rebuilt around the
  scripted module's own parameters and buffers, so every submodule is a row. Modules
  without a Python class (loaded from a file, or made by `torch.jit.trace`) stay as they
  are: one row, "scripted: not opened".

Nothing here copies a weight: parameters and buffers are shared through deepcopy's memo.
"""

from __future__ import annotations

import copy
from itertools import chain
from typing import Any

import torch
from torch import nn

NOT_OPENED = "scripted: not opened"


def shared_copy(model: nn.Module, swap: dict[int, Any]) -> nn.Module:
    """A copy of the module tree that shares every tensor, with `swap`'s objects (by id)
    standing in for the originals."""
    memo: dict[int, Any] = {id(t): t for t in chain(model.parameters(), model.buffers())}
    # TorchScript modules not swapped stay themselves (one opaque node each), not clones
    memo.update({id(m): m for m in model.modules() if isinstance(m, torch.jit.ScriptModule)})
    memo.update(swap)
    return copy.deepcopy(model, memo)


def open_scripts(model: nn.Module) -> tuple[dict[int, nn.Module], list[str]]:
    """Python stand-ins (by id) for the outermost TorchScript modules that can be rebuilt,
    and the qualified names of those that cannot."""
    swap: dict[int, nn.Module] = {}
    closed: list[str] = []
    inside: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, torch.jit.ScriptModule) or id(module) in inside:
            continue
        inside.update(id(m) for m in module.modules())
        try:
            rebuilt = rebuild(module)
        except Exception:  # an attribute TorchScript keeps but Python cannot set, say
            rebuilt = module
        if rebuilt is module:
            closed.append(name)
        else:
            swap[id(module)] = rebuilt
    return swap, closed


def rebuild(script: nn.Module) -> nn.Module:
    """The scripted module's Python class around its own tensors; `script` itself if its
    class is unknown. Children that cannot be rebuilt stay scripted."""
    cls = python_class(script)
    if cls is None:
        return script
    concrete: Any = getattr(script, "_concrete_type")  # noqa: B009 (not in torch's stubs)
    module = cls.__new__(cls)
    nn.Module.__init__(module)
    for key, value in concrete.get_constants().items():
        object.__setattr__(module, key, value)
    params = dict(script.named_parameters(recurse=False))
    buffers = dict(script.named_buffers(recurse=False))
    children = dict(script.named_children())
    for key in concrete.get_attributes():
        if key in params:
            module._parameters[key] = params[key]
        elif key in buffers:
            module._buffers[key] = buffers[key]
        elif key not in children and key != "training":
            object.__setattr__(module, key, getattr(script, key))
    for key, child in children.items():
        module._modules[key] = rebuild(child)
    module.training = script.training
    return module


def python_class(module: nn.Module) -> type[nn.Module] | None:
    """The nn.Module subclass `torch.jit.script` compiled, or None (traced, or loaded)."""
    if not isinstance(module, torch.jit.ScriptModule) or isinstance(module, torch.jit.TracedModule):
        return None
    cls = getattr(getattr(module, "_concrete_type", None), "py_class", None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        return None
    lists = (nn.ModuleList, nn.ModuleDict)  # iterated by their parent, no forward
    return cls if cls.forward is not nn.Module.forward or issubclass(cls, lists) else None


def type_name(module: nn.Module) -> str:
    """A module's class name; a TorchScript module's is the class it was made from."""
    if isinstance(module, torch.jit.ScriptModule):
        return str(getattr(module, "original_name", "") or type(module).__name__)
    return type(module).__name__
