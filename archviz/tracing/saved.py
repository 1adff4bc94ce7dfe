"""What autograd keeps for backward: one forward with `saved_tensors_hooks`, on any device.

Training memory beyond the weights is mostly the tensors autograd saves between the
forward and the backward. They are observed here, not estimated: every tensor autograd
packs passes through a hook, which notes its storage. Each storage counts once (a ReLU's
output saved by it and by the next conv is one buffer); the parameters' and buffers'
storages are left out (they are the weights, counted apart). On `meta` nothing is
allocated, so a model of any size is measured in milliseconds; the same hooks on a CPU
run give the same figure, which the tests check. One op chooses its kernel by device:
on meta, `scaled_dot_product_attention` always takes its math path (which saves the
attention matrix), where a CPU picks its flash kernel (which saves the output and the
log-sum-exp); on meta it is steered to the kernel the CPU would pick.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from torch.nn.attention import SDPBackend

from archviz.errors import ArchvizError
from archviz.tracing.setup import check_device, make_inputs, prepare
from archviz.tracing.state import preserved_state


@dataclass(frozen=True)
class SavedTensors:
    """Bytes autograd saved for backward in one forward, by distinct storage."""

    bytes: int
    storages: int  # distinct storages saved
    tensors: int  # tensors packed (a storage saved twice is two tensors, one storage)
    device: str
    dtype: str


def saved_tensors(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    inputs: Any = None,
    device: str | torch.device = "meta",
    dtype: torch.dtype = torch.float32,
    train: bool = True,
) -> SavedTensors:
    """Run one forward with grad (train mode unless `train=False`) and measure what is saved.

    The model's own tensors are never touched: it runs with stand-ins (meta ones, or
    copies on `device` in `dtype`) that require grad where its parameters do.
    """
    target = check_device(device)
    model, _ = prepare(model, target, dtype)
    args, kwargs = make_inputs(model, input_size, inputs, target, dtype)
    stand_ins = _stand_ins(model, target, dtype)
    weights = {id(s): s for s in (t.untyped_storage() for t in stand_ins.values())}
    seen: dict[int, Any] = {}  # storage id -> storage, kept alive so ids stay unique
    packed = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal packed
        packed += 1
        storage = tensor.untyped_storage()
        if id(storage) not in weights:
            seen.setdefault(id(storage), storage)
        return tensor

    modes = {m: m.training for m in model.modules()}
    try:
        model.train(train)
        with (
            torch.enable_grad(),
            preserved_state(model),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            _attention_as_on_cpu() if target.type == "meta" else nullcontext(),
        ):
            output = functional_call(model, stand_ins, args, kwargs, tie_weights=True)
        del output
    except ArchvizError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        mode = "training" if train else "eval"
        raise ArchvizError(
            f"the forward pass with gradients ({mode} mode) failed: {first}"
        ) from exc
    finally:
        for module, training in modes.items():
            module.train(training)
    return SavedTensors(
        sum(s.nbytes() for s in seen.values()), len(seen), packed, str(target),
        str(dtype).removeprefix("torch."),
    )  # fmt: skip


def _stand_ins(model: nn.Module, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Parameters and buffers on `device` in `dtype` (floating ones), grad as the model's."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in [*model.named_parameters(), *model.named_buffers()]:
        target = dtype if tensor.is_floating_point() else tensor.dtype
        if device.type == "meta":
            copy = torch.empty_like(tensor, device="meta", dtype=target)
        else:
            copy = tensor.detach().to(device=device, dtype=target, copy=True)
        grad = isinstance(tensor, nn.Parameter) and tensor.requires_grad
        out[key] = copy.requires_grad_(grad and copy.is_floating_point())
    return out


_FLASH = SDPBackend.FLASH_ATTENTION.value
_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


@contextmanager
def _attention_as_on_cpu() -> Iterator[None]:
    """On meta, run scaled_dot_product_attention with the kernel a CPU would choose.

    Patched where callers look it up (torch.nn.functional's attribute: nn.MultiheadAttention
    and transformers both call it through there), and restored whatever happens.
    """
    original = F.scaled_dot_product_attention

    def attention(*args: Any, **kwargs: Any) -> Any:
        call: dict[str, Any] = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False}
        call["scale"] = None
        call.update(zip(_SDPA_ARGS, args, strict=False))
        call.update(kwargs)
        q = call["query"]
        if q.device.type != "meta" or call.get("enable_gqa") or _cpu_choice(call) != _FLASH:
            return original(*args, **kwargs)
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, call["key"], call["value"], call["dropout_p"], call["is_causal"],
            attn_mask=call["attn_mask"], scale=call["scale"],
        )[0]  # fmt: skip

    F.scaled_dot_product_attention = attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _cpu_choice(call: dict[str, Any]) -> int:
    """The backend a CPU picks for these shapes, asked with stand-ins that hold one row."""

    def like(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        row = torch.zeros(t.shape[-1], dtype=t.dtype, requires_grad=t.requires_grad)
        return row.expand(t.shape)

    return int(
        torch._fused_sdp_choice(
            like(call["query"]),
            like(call["key"]),
            like(call["value"]),
            like(call["attn_mask"]),
            call["dropout_p"],
            call["is_causal"],
            scale=call["scale"],
        )
    )
