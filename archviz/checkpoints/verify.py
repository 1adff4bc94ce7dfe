"""Does a model or checkpoint load into a reference architecture, and if not, exactly why?

PyTorch's own `load_state_dict` is the ground truth: a weightless (`meta`) copy of the
reference loads the candidate's tensors, its missing/unexpected keys are reported as
PyTorch computes them (with its allowances, e.g. a BatchNorm's absent
`num_batches_tracked` in an old checkpoint), and a loading verdict is confirmed by a
strict load into a real copy. Dtype differences are reported but do not break
compatibility, because `load_state_dict` casts.

When keys differ, modules are paired by evidence (archviz/checkpoints/remap.py; the dataflow graph
in archviz/checkpoints/pairing.py when the candidate is a module). A pairing no evidence decides is
`ambiguous`, never guessed; the forward check (archviz/checkpoints/forward_check.py)
compares outputs whenever there is an original to compare with.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

from torch import Tensor, nn

from archviz.checkpoints import forward_check as forward_check_mod
from archviz.checkpoints import pairing, remap
from archviz.checkpoints import write as verify_write
from archviz.checkpoints.files import StateDict, load_file, looks_like_checkpoint, unwrap
from archviz.checkpoints.forward_check import ForwardCheck
from archviz.checkpoints.loading import DtypeMismatch, Loaded, ShapeMismatch, load
from archviz.checkpoints.remap import Remapping
from archviz.checkpoints.write import WriteOutcome
from archviz.errors import ArchvizError
from archviz.models.registry import resolve_model

Progress = Callable[[int, int, str], None]  # (step, steps, what runs now)
Source = Union[nn.Module, Mapping[str, Tensor], str, "os.PathLike[str]"]
VERDICTS = ("compatible", "compatible after remapping", "ambiguous", "incompatible")


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
    write: WriteOutcome | None = None  # what --write-remapped did

    @property
    def ok(self) -> bool:
        """Loads strictly as is and no forward check found different outputs."""
        return self.verdict == "compatible" and self.forward.status not in ("differ", "failed")


@dataclass(frozen=True)
class _Side:
    label: str
    state_dict: StateDict
    module: nn.Module | None
    container: str | None = None
    path: str | None = None  # the file it was read from


def verify(
    candidate: Source,
    reference: Source,
    *,
    forward_check: bool = True,
    write_remapped: str | os.PathLike[str] | None = None,
    keep_metadata: bool = False,
    progress: Progress | None = None,
) -> VerifyResult:
    """Check whether `candidate`'s weights load into `reference`, and propose a remapping.

    With `write_remapped`, the (remapped) state_dict is written there only when the pairing
    is decided and a re-check of the written bytes loads strictly (see `VerifyResult.write`).
    `keep_metadata` keeps a checkpoint file's other entries (epoch, optimizer) beside the
    weights; without it they are dropped, and the write message says which.
    `progress(step, steps, what runs now)` hears each step (reading, loading, pairing).
    """
    say = progress or (lambda done, total, what: None)
    say(0, 4, "reading the reference")
    ref = _resolve(reference, "reference")
    say(1, 4, "reading the candidate")
    # The load limit allows the reference's own size: a valid checkpoint of it may
    # compress far below a quarter of that (load_guard.default_limit).
    cand = _resolve(candidate, "candidate", reference_bytes=_nbytes(ref.state_dict))
    if write_remapped is not None:
        verify_write.refuse_own_input(write_remapped, [s.path for s in (cand, ref) if s.path])
    say(2, 4, f"loading {len(cand.state_dict):,} keys into the reference")
    direct = load(cand.state_dict, ref.state_dict, ref.module)
    say(3, 4, f"pairing {len(cand.state_dict):,} keys' modules and checking")
    final, remapping, verdict, forward = direct, None, VERDICTS[0], None
    graph_note = None
    if not direct.loads:
        decided, graph_note = pairing.by_graph(cand.module, ref.module)
        final, remapping, verdict, forward = _remap(cand, ref, direct, decided, forward_check)
    if forward is None:
        forward = _forward(cand, final, ref, remapping) if forward_check else _skip()
    result = VerifyResult(
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
        notes=(
            *([graph_note] if graph_note else []),
            *_notes(cand, ref, final, forward, remapping),
        ),
    )
    say(4, 4, "")
    if write_remapped is None:
        return result
    write = _write(result, cand, ref, write_remapped, keep_metadata)
    return dataclasses.replace(result, write=write)


def _remap(
    cand: _Side, ref: _Side, direct: Loaded, decided: dict[str, str], forward_check: bool
) -> tuple[Loaded, Remapping | None, str, ForwardCheck | None]:
    """The pairing, its load, and the verdict; an ambiguity a forward pass settles is settled."""
    shapes = {k: tuple(v.shape) for k, v in cand.state_dict.items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict.items()}
    proposal = remap.propose(shapes, ref_shapes, decided)
    if proposal is None:
        return direct, None, VERDICTS[3], None
    after = load(remap.apply(cand.state_dict, proposal), ref.state_dict, ref.module)
    if proposal.decided:
        if after.matched <= direct.matched and not after.loads:
            return direct, None, VERDICTS[3], None
        return after, proposal, VERDICTS[1 if after.loads else 3], None
    guess = load(remap.apply_guess(cand.state_dict, proposal), ref.state_dict, ref.module)
    if not guess.loads:
        return after, proposal, VERDICTS[3], None
    if cand.module is None or not forward_check or guess.module is None:
        return after, proposal, VERDICTS[2], None
    checked = forward_check_mod.compare(cand.module, guess.module)
    if checked.status != "match":  # the order guess computes something else: still unproven
        note = f"{checked.note}, with the ambiguous modules paired by stored order (so not that)"
        return after, proposal, VERDICTS[2], dataclasses.replace(checked, note=note)
    return guess, remap.confirm_guess(proposal), VERDICTS[1], checked


def _nbytes(state_dict: StateDict) -> int:
    return sum(t.numel() * t.element_size() for t in state_dict.values())


def _resolve(spec: Source, role: str, reference_bytes: int = 0) -> _Side:
    if isinstance(spec, nn.Module):
        return _Side(type(spec).__name__, spec.state_dict(), spec)
    if isinstance(spec, Mapping):
        state_dict, container = unwrap(spec, f"the {role} mapping")
        return _Side(f"{role} state_dict", state_dict, None, container)
    if not isinstance(spec, (str, os.PathLike)):
        raise ArchvizError(f"cannot verify a {type(spec).__name__} as the {role}")
    if looks_like_checkpoint(spec):
        path = os.fspath(spec)
        loaded = load_file(path, reference_bytes=reference_bytes)
        state_dict, container = unwrap(loaded, f"checkpoint {path!r}")
        return _Side(path, state_dict, None, container, path)
    module = resolve_model(str(spec))
    if not isinstance(module, nn.Module):
        raise ArchvizError(f"{spec!r} did not build an nn.Module")
    return _Side(str(spec), module.state_dict(), module)


def _forward(cand: _Side, final: Loaded, ref: _Side, remapping: Remapping | None) -> ForwardCheck:
    """Compare outputs when there is an original to compare with; say plainly when not."""
    if ref.module is None:
        return forward_check_mod.not_compared("the reference is a state_dict, with no module")
    if final.module is None:
        if remapping is not None and not remapping.decided:
            return forward_check_mod.not_compared(
                "the pairing is ambiguous, so no remapped model exists to run"
            )
        return forward_check_mod.not_compared("the weights do not load into the reference")
    if cand.module is None:
        return forward_check_mod.not_compared(
            "the candidate is a file, so there is no original model to run; give it as "
            "pkg.mod:factory to compare"
        )
    return forward_check_mod.compare(cand.module, final.module)


def _skip() -> ForwardCheck:
    return forward_check_mod.skipped("--no-forward")


def _write(
    result: VerifyResult, cand: _Side, ref: _Side, out: str | os.PathLike[str], keep: bool
) -> WriteOutcome:
    """Write only a decided pairing, and only bytes that load strictly when read back."""
    why = why_not(result, candidate_is_module=cand.module is not None)
    if why:
        return WriteOutcome(os.fspath(out), False, why)
    state = dict(cand.state_dict)
    if result.remapping is not None:
        state = remap.apply(state, result.remapping)

    def recheck(path: str) -> str | None:
        again, _ = unwrap(load_file(path), f"written file {path!r}")
        loaded = load(again, ref.state_dict, ref.module)
        if not loaded.loads:
            return "the written file does not load strictly into the reference"
        if cand.module is None or loaded.module is None:
            return None
        check = forward_check_mod.compare(cand.module, loaded.module)
        return None if check.status == "match" else f"read back, outputs {check.status}"

    return verify_write.write_checked(state, out, recheck, source=cand.path, keep_metadata=keep)


def _notes(
    cand: _Side, ref: _Side, final: Loaded, forward: ForwardCheck, remapping: Remapping | None
) -> tuple[str, ...]:
    notes = []
    if remapping is not None and remapping.ambiguities and cand.module is None:
        notes.append(
            "to decide the ambiguous pairing, give the candidate as a module (pkg.mod:factory): "
            "its dataflow graph pairs them and a forward pass checks it"
        )
    if remapping is not None and remapping.layout:
        notes.append(f"recognised the {remapping.layout} layout: modules renamed by its rules")
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


def why_not(result: VerifyResult, candidate_is_module: bool) -> str | None:
    """Why this result must not be written, or None: only decided, checked pairings are."""
    if result.verdict == "ambiguous":
        assert result.remapping is not None
        names = ", ".join(a.candidates[0] for a in result.remapping.ambiguities[:3])
        how = (
            "and pairing them by stored order computes other outputs"
            if candidate_is_module
            else "give the candidate as a module (pkg.mod:factory) so the pairing can be "
            "checked by running it"
        )
        return f"not written: the pairing of equal-shape modules is ambiguous ({names}); {how}"
    if result.verdict == "incompatible":
        return "not written: the weights would not load into the reference"
    if result.forward.status in ("differ", "failed"):
        return f"not written: the forward check {result.forward.status}"
    return None
