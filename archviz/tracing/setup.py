"""What trace() does around the forward pass: check the device, build or move the inputs,
make stand-in weights, and cope with the models hooks cannot see as they are.

The awkward models, and what happens to each (said in the Trace's `extra["notes"]`):
- DataParallel / DistributedDataParallel: the wrapped `module` is traced, as fvcore does.
- Lazy modules (nn.LazyLinear...): a copy is traced (copies.py: it shares the weights),
  their shapes are inferred from their first input as PyTorch's own pre-hook does, and
  their parameters are counted once they exist; the user's model stays uninitialised.
- TorchScript modules made by `torch.jit.script`: the copy holds their Python classes
  rebuilt around the scripted weights, so their submodules are rows (copies.py). The rest
  (traced, or loaded from a file) cannot take hooks: each outermost one is one opaque node,
  "scripted: not opened", seen through PyTorch's global module hooks; its ops are still
  counted, only its inside is not broken down.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import is_lazy
from torch.nn.utils.rnn import PackedSequence
from torch.utils.hooks import RemovableHandle

from archviz.errors import ArchvizError
from archviz.models.inputs import input_form
from archviz.options import MAX_DIM, MAX_ELEMENTS
from archviz.tracing.copies import NOT_OPENED, open_scripts, shared_copy
from archviz.tracing.lazy import lazy_hooks, lazy_stand_ins

DEVICES = ("meta", "cpu", "cuda")
_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def check_device(device: str | torch.device) -> torch.device:
    """A device archviz can trace on, or one line saying which ones it can."""
    choices = f"use {', '.join(DEVICES)}"
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError):
        raise ArchvizError(f"unknown device {device!r}; {choices}") from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ArchvizError("CUDA was requested but is not available on this machine")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise ArchvizError(
                f"{target} was requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s): use cuda:0 or cuda"
            )
    elif target.type == "mps":
        if not torch.backends.mps.is_available():
            raise ArchvizError(f"MPS was requested but is not available here; {choices}")
    elif target.type not in DEVICES:
        raise ArchvizError(f"device {str(device)!r} is not supported; {choices}")
    return target


def prepare(
    model: nn.Module, device: torch.device, dtype, open_scripted: bool = True
) -> tuple[nn.Module, list[str]]:
    """The module to trace in place of `model`, and notes on what was done to trace it."""
    if not isinstance(model, nn.Module):
        raise ArchvizError(
            f"trace() takes a torch.nn.Module, got {type(model).__name__}; "
            "archviz.get_model(NAME) builds one"
        )
    notes = []
    if isinstance(model, _WRAPPERS):
        notes.append(f"traced the module inside {type(model).__name__}: names lack 'module.'")
        model = model.module
    swap: dict[int, Any] = {}
    if any(is_lazy(t) for t in chain(model.parameters(), model.buffers())):
        notes.append("lazy modules were initialised on a copy; your model is left as it was")
        swap = lazy_stand_ins(model, device, dtype)
    opened: dict[int, Any] = open_scripts(model)[0] if open_scripted else {}
    if swap or opened:
        model = _copy(model, swap, opened)
    if opened:
        notes.append(
            "TorchScript modules were opened: their Python classes ran with the scripted "
            "weights, hooked like any module (the scripted code itself did not run)"
        )
    if isinstance(model, torch.jit.ScriptModule) and not _fits(model, device, dtype):
        model = _script_copy(model, device, dtype)  # functional_call refuses TorchScript
    for name in script_roots(model).values():
        notes.append(
            f"{name or 'the model'} is TorchScript ({NOT_OPENED}: traced or loaded, or its "
            "Python class failed): one node; its ops are counted, its inside is not shown"
        )
    return model, notes


def _copy(model: nn.Module, lazy: dict[int, Any], opened: dict[int, Any]) -> nn.Module:
    """shared_copy, or one line on why the lazy modules cannot be traced on a copy."""
    try:
        return shared_copy(model, {**lazy, **opened})
    except Exception as exc:  # deepcopy runs the model's own __deepcopy__/__reduce__
        if not lazy:
            return model  # the TorchScript modules stay closed: one node each
        raise ArchvizError(
            f"cannot copy {type(model).__name__} to initialise its lazy modules without "
            f"touching yours: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            "; run one forward pass first (model(example)) to initialise them"
        ) from None


def script_roots(model: nn.Module) -> dict[nn.Module, str]:
    """The outermost TorchScript modules of `model` (itself, if scripted), by name."""
    roots: dict[nn.Module, str] = {}
    inside: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.jit.ScriptModule) and id(module) not in inside:
            roots[module] = name
            inside.update(id(m) for m in module.modules())
    return roots


def register_hooks(
    handles: list[Any],
    model: nn.Module,
    names: Mapping[nn.Module, str],
    recorder: Any,
    refresh_params: Callable[[], None],
) -> None:
    """Hooks on every module (appended to `handles` as they are made, so all are removed)."""
    roots = script_roots(model)
    for module in names:
        if isinstance(module, torch.jit.ScriptModule):
            continue  # hooks are unsupported there; the roots get global hooks below
        handles.append(module.register_forward_pre_hook(recorder.pre, with_kwargs=True))
        handles.append(module.register_forward_hook(recorder.post, with_kwargs=True))
        if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
            handles += lazy_hooks(module, names[module], recorder.counter, refresh_params)
    if roots:
        handles += _opaque_hooks(roots, recorder)


def _opaque_hooks(roots: Mapping[nn.Module, str], recorder: Any) -> list[RemovableHandle]:
    def pre(module: nn.Module, args: tuple) -> None:
        if module in roots:
            recorder.pre(module, args, {})

    def post(module: nn.Module, args: tuple, output: Any) -> None:
        if module in roots:
            recorder.post(module, args, {}, output)

    return [
        _module.register_module_forward_pre_hook(pre),
        _module.register_module_forward_hook(post),
    ]


def noted(result: Any, notes: list[str]) -> Any:
    """The Trace with what archviz had to do to trace it in `extra["notes"]`."""
    if notes:
        result.extra["notes"] = [*result.extra.get("notes", []), *notes]
    return result


def numel(tensor: torch.Tensor) -> int:
    """Elements of a tensor; 0 for a lazy module's parameter that does not exist yet."""
    return 0 if is_lazy(tensor) else tensor.numel()


def _script_copy(model: nn.Module, device: torch.device, dtype) -> nn.Module:
    """A TorchScript model's copy on `device` in `dtype` (TorchScript cannot be deep-copied)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # torch.jit.save/load announce their deprecation
        warnings.simplefilter("ignore", FutureWarning)
        try:
            torch.jit.save(model, buffer)
        except Exception as exc:  # e.g. a call to a @torch.jit.ignore'd Python function
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArchvizError(
                f"cannot move the TorchScript model to {device} to trace it (torch.jit.save "
                f"refuses it: {first}); trace it where its weights are: --device cpu"
            ) from None
        buffer.seek(0)
        loaded = torch.jit.load(buffer, map_location=device)
    return loaded.to(dtype) if dtype != torch.float32 else loaded


def _fits(model: nn.Module, device: torch.device, dtype) -> bool:
    tensors = chain(model.parameters(), model.buffers())
    return all(_fits_tensor(t, device, dtype) for t in tensors)


def _fits_tensor(t: torch.Tensor, device: torch.device, dtype) -> bool:
    if is_lazy(t):
        return True  # created on the right device by the forward (see _lazy_copy)
    same_device = t.device.type == device.type and (
        device.index is None or t.device.index == device.index
    )
    return same_device and (not t.is_floating_point() or t.dtype == dtype)


def make_inputs(
    model: nn.Module, input_size, inputs, device: torch.device, dtype
) -> tuple[tuple, dict]:
    """Positional and keyword inputs on `device`: `inputs` moved, or fresh ones of a size."""
    if inputs is not None:
        moved = move(inputs, device)
        if isinstance(moved, Mapping):
            return (), dict(moved)
        if isinstance(moved, (tuple, list)) and not _is_namedtuple(moved):
            return tuple(moved), {}
        return (moved,), {}
    form = input_form(model)
    size = form.default if input_size is None else input_size
    if isinstance(size, torch.Tensor) or (
        isinstance(size, (tuple, list)) and any(isinstance(s, torch.Tensor) for s in size)
    ):
        raise ArchvizError(
            "input_size takes shapes such as (1, 3, 224, 224); pass tensors as inputs="
        )
    if not size:
        raise ArchvizError(
            "give an input_size such as (1, 3, 224, 224), [(1, 10), ()] for a 0-d input "
            "beside it, or inputs"
        )
    sizes: list[Any] = list(size) if isinstance(size[0], (tuple, list)) else [size]
    for at, one in enumerate(sizes, 1):
        _check_size(one, at, len(sizes))
        if max(one, default=0) > MAX_DIM or math.prod(one) > MAX_ELEMENTS:
            raise ArchvizError(
                f"input size {tuple(one)} is too large: each size at most {MAX_DIM:,} and at "
                "most 2^62 elements in all; an image is e.g. (1, 3, 224, 224)"
            )
    if len(sizes) == 1:
        make = lambda s: fresh(s, device, dtype)  # noqa: E731
        return form.inputs(sizes[0], make, _ints(device), device.type == "meta")
    return tuple(fresh(tuple(s), device, dtype) for s in sizes), {}


def _check_size(one: Any, at: int, count: int) -> None:
    """One positional input's shape: positive integers; () is a 0-d (scalar) tensor."""
    where = f"input size #{at} of {count}" if count > 1 else "input size"
    if not isinstance(one, (tuple, list)):
        raise ArchvizError(
            f"{where} is {one!r}, not a shape: give one shape per positional input, () for "
            "a 0-d tensor; pass other values (numbers, flags) with inputs="
        )
    if not all(isinstance(d, int) and d > 0 for d in one):
        raise ArchvizError(f"malformed {where} {tuple(one)}: need positive integers")


def _ints(device: torch.device) -> Callable[[tuple[int, ...], int, int], torch.Tensor]:
    """int64 tensors with values in [low, high): token ids, attention masks."""

    def make(size: tuple[int, ...], low: int, high: int) -> torch.Tensor:
        if device.type == "meta":
            return torch.empty(size, device=device, dtype=torch.long)
        return torch.randint(low, max(high, low + 1), size, device=device)

    return make


def fresh(size: tuple[int, ...], device: torch.device, dtype) -> torch.Tensor:
    if device.type == "meta":
        return torch.empty(size, device=device, dtype=dtype)
    return torch.randn(size, device=device, dtype=dtype)


def move(value: Any, device: torch.device) -> Any:
    """`value` with every tensor on `device` (empty on meta), containers rebuilt as they were."""
    if isinstance(value, torch.Tensor):
        if device.type == "meta":
            return torch.empty_like(value, device="meta")
        return value.to(device)
    if isinstance(value, PackedSequence):
        # batch_sizes stays a CPU tensor of real values: the RNN kernels read it everywhere.
        return PackedSequence(
            move(value.data, device),
            value.batch_sizes,
            move(value.sorted_indices, device),
            move(value.unsorted_indices, device),
        )
    if _is_namedtuple(value):
        return type(value)(*(move(v, device) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(move(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: move(v, device) for k, v in value.items()}
    return value


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def substitutes(model: nn.Module, device: torch.device, dtype) -> dict[str, Any] | None:
    """Stand-in parameters and buffers on `device` in `dtype`; None if the model's own fit."""
    # One entry per tensor: functional_call(tie_weights=True) gives a tied tensor's other
    # names the same stand-in, and refuses two different values for tied names.
    tensors: dict[str, torch.Tensor] = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    tensors = {k: t for k, t in tensors.items() if not is_lazy(t)}
    if all(_fits_tensor(t, device, dtype) for t in tensors.values()):
        return None
    if device.type != "meta" and any(t.is_meta for t in tensors.values()):
        raise ArchvizError(
            f"the model's weights are on the meta device (no values), so it cannot run on "
            f"{device.type}; trace it on meta (--device meta), or give it real weights "
            f"first: model.to_empty(device='{device.type}'), then load_state_dict"
        )
    out = {}
    for key, t in tensors.items():
        target = dtype if t.is_floating_point() else t.dtype
        if device.type == "meta":
            out[key] = torch.empty_like(t, device="meta", dtype=target)
        else:
            out[key] = t.detach().to(device=device, dtype=target)
        # Parameters counted during the forward (a lazy module's, once it exists) read the
        # stand-ins: they say "trainable" as the model's own tensors do.
        out[key].requires_grad_(t.requires_grad and target.is_floating_point)
    return out
