"""Does a model or checkpoint load into a reference architecture, and if not, exactly why?

PyTorch's own `load_state_dict` is the ground truth: the reference module (a copy) loads
the candidate's tensors, its missing/unexpected keys are reported as PyTorch computes them
(with its allowances, e.g. a BatchNorm's absent `num_batches_tracked` in an old
checkpoint), and a `compatible` verdict is confirmed by a strict load. Dtype differences
are reported but do not break compatibility, because `load_state_dict` casts.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor, nn

from archviz import remap
from archviz.checkpoint import StateDict, load_file, looks_like_checkpoint, unwrap
from archviz.errors import ArchvizError
from archviz.models.registry import resolve_model
from archviz.remap import Remapping

Source = Union[nn.Module, Mapping[str, Tensor], str, "os.PathLike[str]"]
VERDICTS = ("compatible", "compatible after remapping", "incompatible")
FORWARD_INPUT = (1, 3, 64, 64)
# Same ops in the same order give 0 on a CPU; allow summation-order noise, relative to scale.
FORWARD_TOLERANCE = 1e-5


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
class ForwardCheck:
    """Outputs on one seeded random input, both models in eval mode on the CPU."""

    status: str  # "match", "differ", "ran" (one model only), "skipped", "failed"
    input_shape: tuple[int, ...]
    max_abs_diff: float | None
    note: str


@dataclass(frozen=True)
class VerifyResult:
    """The verdict and its reasons; key lists describe the candidate after `remapping`."""

    candidate: str
    reference: str
    verdict: str
    container: str | None  # where the state_dict sat in the file, e.g. "state_dict"
    candidate_keys: int
    reference_keys: int
    matched_as_is: int  # keys that load without any remapping
    matched: int  # keys that load after the remapping (= matched_as_is without one)
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    shape_mismatches: tuple[ShapeMismatch, ...]
    dtype_mismatches: tuple[DtypeMismatch, ...]
    remapping: Remapping | None
    forward: ForwardCheck
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Loads strictly as is and no forward check found different outputs."""
        return self.verdict == "compatible" and self.forward.status not in ("differ", "failed")


@dataclass(frozen=True)
class _Loaded:
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


@dataclass(frozen=True)
class _Side:
    label: str
    state_dict: StateDict
    module: nn.Module | None
    container: str | None = None


def verify(candidate: Source, reference: Source, *, forward_check: bool = True) -> VerifyResult:
    """Check whether `candidate`'s weights load into `reference`, and propose a remapping."""
    cand, ref = _resolve(candidate, "candidate"), _resolve(reference, "reference")
    direct = _load(cand.state_dict, ref)
    final, remapping = direct, None
    if not direct.loads:
        shapes = {k: tuple(v.shape) for k, v in cand.state_dict.items()}
        ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict.items()}
        proposal = remap.propose(shapes, ref_shapes)
        if proposal is not None:
            after = _load(remap.apply(cand.state_dict, proposal), ref)
            if after.matched > direct.matched:
                final, remapping = after, proposal
    verdict = VERDICTS[0 if direct.loads else 1 if final.loads else 2]
    forward = _forward(cand, final, ref) if forward_check else _skip("--no-forward")
    notes = _notes(cand, ref, final, forward)
    return VerifyResult(
        candidate=cand.label,
        reference=ref.label,
        verdict=verdict,
        container=cand.container,
        candidate_keys=len(cand.state_dict),
        reference_keys=len(ref.state_dict),
        matched_as_is=direct.matched,
        matched=final.matched,
        missing=final.missing,
        unexpected=final.unexpected,
        shape_mismatches=final.shapes,
        dtype_mismatches=final.dtypes,
        remapping=remapping,
        forward=forward,
        notes=notes,
    )


def remapped_state_dict(candidate: Source, result: VerifyResult) -> StateDict:
    """The candidate's state_dict, unwrapped and with `result.remapping` applied."""
    state_dict = _resolve(candidate, "candidate").state_dict
    if result.remapping is None:
        return dict(state_dict)
    return remap.apply(state_dict, result.remapping)


def _resolve(spec: Source, role: str) -> _Side:
    if isinstance(spec, nn.Module):
        return _Side(type(spec).__name__, spec.state_dict(), spec)
    if isinstance(spec, Mapping):
        state_dict, container = unwrap(spec, f"the {role} mapping")
        return _Side(f"{role} state_dict", state_dict, None, container)
    if not isinstance(spec, (str, os.PathLike)):
        raise ArchvizError(f"cannot verify a {type(spec).__name__} as the {role}")
    if looks_like_checkpoint(spec):
        path = os.fspath(spec)
        state_dict, container = unwrap(load_file(path), f"checkpoint {path!r}")
        return _Side(path, state_dict, None, container)
    module = resolve_model(str(spec))
    if not isinstance(module, nn.Module):
        raise ArchvizError(f"{spec!r} did not build an nn.Module")
    return _Side(str(spec), module.state_dict(), module)


def _load(state_dict: Mapping[str, Tensor], ref: _Side) -> _Loaded:
    """Load into a copy of the reference module as PyTorch would; key logic without one."""
    expected = ref.state_dict
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
    if ref.module is None:
        missing = tuple(k for k in expected if k not in state_dict)
        unexpected = tuple(k for k in state_dict if k not in expected)
        return _Loaded(matched, missing, unexpected, shapes, dtypes, None, None)
    probe = copy.deepcopy(ref.module)
    fitting = {k: v for k, v in state_dict.items() if k not in bad}
    try:
        found = probe.load_state_dict(fitting, strict=False)
        missing = tuple(k for k in found.missing_keys if k not in bad)
        unexpected = tuple(found.unexpected_keys)
        if not (missing or unexpected or shapes):
            probe.load_state_dict(state_dict, strict=True)  # the verdict, confirmed
            return _Loaded(matched, (), (), (), dtypes, None, probe)
    except Exception as exc:
        return _Loaded(matched, (), (), shapes, dtypes, _first_line(exc), None)
    return _Loaded(matched, missing, unexpected, shapes, dtypes, None, None)


def _forward(cand: _Side, final: _Loaded, ref: _Side) -> ForwardCheck:
    if ref.module is None:
        return _skip("the reference is a state_dict, with no module to run")
    if final.module is None:
        return _skip("the weights do not load into the reference")
    x = torch.randn(FORWARD_INPUT, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad(), _eval(final.module):
            expected = final.module(x)
            if cand.module is None:
                finite = bool(torch.isfinite(expected).all())
                note = "ran the reference with the candidate's weights" + (
                    "" if finite else "; outputs are not finite"
                )
                return ForwardCheck("ran", FORWARD_INPUT, None, note)
            with _eval(cand.module):
                actual = cand.module(x)
    except Exception as exc:
        return ForwardCheck("failed", FORWARD_INPUT, None, _first_line(exc))
    if actual.shape != expected.shape:
        note = f"output shapes differ: {tuple(actual.shape)} vs {tuple(expected.shape)}"
        return ForwardCheck("differ", FORWARD_INPUT, None, note)
    diff = float((actual - expected).abs().max())
    scale = max(1.0, float(expected.abs().max()))
    same = diff <= FORWARD_TOLERANCE * scale
    note = "outputs match" if same else "same weights, different outputs"
    return ForwardCheck("match" if same else "differ", FORWARD_INPUT, diff, note)


def _skip(why: str) -> ForwardCheck:
    return ForwardCheck("skipped", FORWARD_INPUT, None, why)


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


def _notes(cand: _Side, ref: _Side, final: _Loaded, forward: ForwardCheck) -> tuple[str, ...]:
    notes = []
    if ref.module is None:
        notes.append("reference is a state_dict: verdict from keys and shapes, no forward check")
    notes += _head_notes(final.shapes, list(ref.state_dict))
    if final.dtypes:
        notes.append("dtype differences are cast by load_state_dict; they do not block loading")
    if final.error:
        notes.append(f"load_state_dict: {final.error}")
    if forward.status == "differ" and not (final.missing or final.unexpected or final.shapes):
        notes.append(
            "keys and shapes match but outputs differ: something without weights differs "
            "(a stride, padding, pooling, activation or the order of operations)"
        )
    return tuple(notes)


def _head_notes(shapes: tuple[ShapeMismatch, ...], ref_keys: list[str]) -> list[str]:
    """A classifier whose only difference is its output count: a different num_classes."""
    head = ref_keys[-1].rsplit(".", 1)[0] if ref_keys else ""
    weight = next((m for m in shapes if m.key == f"{head}.weight"), None)
    if weight is None or len(weight.reference) != 2:
        return []
    if weight.candidate[1:] != weight.reference[1:]:
        return []
    return [
        f"{head}: {weight.candidate[0]} outputs vs {weight.reference[0]}, a different "
        f"num_classes (build the reference with num_classes={weight.candidate[0]})"
    ]


def _dtype(tensor: Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
