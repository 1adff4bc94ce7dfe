"""The forward check: does the reference, holding the candidate's weights, compute what the
candidate computes? Both run in eval mode on one seeded input on the CPU.

Models return more than tensors: tuples, dicts, namedtuples and dataclass output objects
(Hugging Face's `ImageClassifierOutput` with `.logits`). The compared tensor is picked
the same way on both sides (`logits` first, else the first tensor found) and named in
the note, so "match" always says what matched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archviz.errors import ArchvizError
from archviz.run import user_code

FORWARD_INPUT = (1, 3, 64, 64)
# Same ops in the same order give 0 on a CPU; allow summation-order noise, relative to scale.
FORWARD_TOLERANCE = 1e-5
_PREFERRED = ("logits", "out", "output", "last_hidden_state")
_MAX_DEPTH = 4


@dataclass(frozen=True)
class ForwardCheck:
    """Outputs on one seeded random input, both models in eval mode on the CPU."""

    status: str  # "match", "differ", "not compared", "skipped", "failed"
    input_shape: tuple[int, ...]
    max_abs_diff: float | None
    note: str


def not_compared(why: str) -> ForwardCheck:
    return ForwardCheck("not compared", FORWARD_INPUT, None, f"outputs were not compared: {why}")


def skipped(why: str) -> ForwardCheck:
    return ForwardCheck("skipped", FORWARD_INPUT, None, why)


def compare(candidate: nn.Module, reference: nn.Module) -> ForwardCheck:
    """Run both on the same input; compare the matching output tensor."""
    x = torch.randn(FORWARD_INPUT, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad(), _eval(candidate), _eval(reference):
            with user_code("forward", model=candidate):  # sys.exit, --timeout
                actual = candidate(x)
            with user_code("forward", model=reference):
                expected = reference(x)
    except ArchvizError:
        raise
    except Exception as exc:
        return ForwardCheck("failed", FORWARD_INPUT, None, first_line(exc))
    got, want = pick(actual), pick(expected)
    if got is None or want is None:
        side = "candidate" if got is None else "reference"
        return ForwardCheck("failed", FORWARD_INPUT, None, f"the {side}'s output holds no tensor")
    (a, a_name), (e, e_name) = got, want
    what = f"candidate {a_name} vs reference {e_name}"
    if a.shape != e.shape:
        note = f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(e.shape)}"
        return ForwardCheck("differ", FORWARD_INPUT, None, note)
    diff = float((a.float() - e.float()).abs().max()) if a.numel() else 0.0
    scale = max(1.0, float(e.float().abs().max())) if e.numel() else 1.0
    same = diff <= FORWARD_TOLERANCE * scale
    note = f"{what}: " + ("outputs match" if same else "same weights, different outputs")
    return ForwardCheck("match" if same else "differ", FORWARD_INPUT, diff, note)


def pick(output: object, name: str = "output", depth: int = 0) -> tuple[Tensor, str] | None:
    """The tensor to compare and where it sat: `output.logits`, `output['out']`, `output[0]`."""
    if isinstance(output, Tensor):
        return output, name
    if depth >= _MAX_DEPTH:
        return None
    items = _items(output, name)
    named = dict(items)
    for key in _PREFERRED:
        for item_name, value in items:
            if item_name.endswith((f".{key}", f"['{key}']")) and isinstance(value, Tensor):
                return value, item_name
    for item_name, value in named.items():
        found = pick(value, item_name, depth + 1)
        if found is not None:
            return found
    return None


def _items(output: object, name: str) -> list[tuple[str, object]]:
    """Children in order, named as a user would write them."""
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        fields = [(f.name, getattr(output, f.name, None)) for f in dataclasses.fields(output)]
        return [(f"{name}.{k}", v) for k, v in fields]
    if isinstance(output, tuple) and hasattr(output, "_fields"):  # namedtuple
        return [(f"{name}.{k}", getattr(output, k)) for k in output._fields]
    if isinstance(output, Mapping):
        return [(f"{name}[{k!r}]", v) for k, v in output.items()]
    if isinstance(output, (tuple, list)):
        return [(f"{name}[{i}]", v) for i, v in enumerate(output)]
    logits = getattr(output, "logits", None)
    return [(f"{name}.logits", logits)] if isinstance(logits, Tensor) else []


@contextmanager
def _eval(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then the caller's mode back (as torchinfo does)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
