"""Lazy modules (nn.LazyLinear...): shapes inferred from the first input, on a copy.

PyTorch initialises a lazy module in a forward pre-hook that reads its input's shape and
then turns the module into its ordinary class, in place. trace() runs that on a copy whose
lazy tensors are fresh ones on the trace's device (on meta: shapes only, nothing
allocated), so the user's model stays lazy; the hooks here run the same inference first,
so a failure is one line naming the module, and count the parameters once they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from torch.utils.hooks import RemovableHandle

from archviz.errors import ArchvizError


def lazy_stand_ins(model: nn.Module, device: torch.device, dtype: torch.dtype) -> dict[int, Any]:
    """Fresh uninitialised tensors on `device` for each lazy one (by id), for shared_copy."""
    out: dict[int, Any] = {}
    for module in model.modules():
        for store, kind in ((module._parameters, UninitializedParameter),
                            (module._buffers, UninitializedBuffer)):  # fmt: skip
            for tensor in store.values():
                if tensor is not None and is_lazy(tensor) and id(tensor) not in out:
                    target = dtype if tensor.dtype.is_floating_point else tensor.dtype
                    out[id(tensor)] = kind(  # type: ignore[call-arg]
                        requires_grad=tensor.requires_grad, device=device, dtype=target
                    )
    return out


def lazy_hooks(
    module: nn.Module, name: str, counter: Any, refresh: Callable[[], None]
) -> list[RemovableHandle]:
    """Infer the lazy module's shapes from its input, as PyTorch's own pre-hook does, with
    counting paused (random init is not the model's work) and a failure said in one line;
    then count its parameters before anything returns."""

    def infer(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        counter.paused = True
        try:
            mod.initialize_parameters(*args, **kwargs)  # type: ignore[operator]
        except Exception as exc:
            counter.paused = False
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArchvizError(
                f"cannot infer the shapes of lazy module {name or 'the model'} "
                f"({type(mod).__name__}) from its input {_shapes(args)}: {first}"
            ) from None

    def resume(*_: Any) -> None:
        counter.paused = False
        refresh()

    return [
        module.register_forward_pre_hook(infer, prepend=True, with_kwargs=True),
        module.register_forward_pre_hook(resume),
    ]


def _shapes(args: tuple) -> str:
    """Positional arguments as shapes (non-tensors by type), for a one-line message."""
    return (
        ", ".join(
            "x".join(map(str, a.shape)) or "0-d"
            if isinstance(a, torch.Tensor)
            else type(a).__name__
            for a in args
        )
        or "(none)"
    )


def lazy_left(model: nn.Module) -> list[str]:
    """A note naming the lazy tensors the forward never initialised (counted as 0)."""
    left = [n for n, t in chain(model.named_parameters(), model.named_buffers()) if is_lazy(t)]
    if not left:
        return []
    more = f" and {len(left) - 3} more" if len(left) > 3 else ""
    return [
        f"{', '.join(left[:3])}{more}: lazy, and still uninitialised after the forward "
        "(no module initialised them); counted as 0 parameters"
    ]
