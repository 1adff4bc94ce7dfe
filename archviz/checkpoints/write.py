"""`verify -o`: write a checkpoint only when it is proven, and never lose a file.

The state_dict goes through the one careful writer (`archviz.render.atomic.write_atomic`):
a temporary file in the destination's folder, fsynced, then read back and re-verified by
its `check` step; only then does one rename put it in place. A failed check leaves the
destination as it was. Writing over the candidate or reference file is refused (exit 2):
a failure half-way must never eat the user's input.

The bytes are made by `checkpoint.save_state_dict` (which keeps or drops the source's
container entries).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from archviz.checkpoints.files import save_state_dict
from archviz.errors import ArchvizError


@dataclass(frozen=True)
class WriteOutcome:
    path: str
    written: bool
    message: str  # "wrote X (...)" or "not written: why"


def refuse_own_input(out: str | os.PathLike[str], inputs: Iterable[str]) -> None:
    """Bad input (exit 2): the output would replace a file this run reads."""
    target = Path(out)
    if target.is_dir():
        raise ArchvizError(f"-o {str(target)!r} is a directory, not a file")
    for source in inputs:
        if _same_file(target, Path(source)):
            raise ArchvizError(f"-o {str(target)!r} is an input of this run; write elsewhere")


class _Rejected(Exception):
    """The written bytes failed their re-check: nothing is renamed into place."""


def write_checked(
    state_dict: Mapping[str, Tensor],
    out: str | os.PathLike[str],
    recheck: Callable[[str], str | None],
    *,
    source: str | None = None,
    keep_metadata: bool = False,
) -> WriteOutcome:
    """Write atomically; `recheck(temp_path)` returns why the written bytes are wrong, or None.

    `source`, the candidate's file, lends its container entries with `keep_metadata`.
    """
    target = Path(out)

    def check(tmp: Path) -> None:
        why = recheck(str(tmp))
        if why is not None:
            raise _Rejected(why)

    try:
        notice = save_state_dict(
            state_dict, target, source=source, keep_metadata=keep_metadata, check=check
        )
    except _Rejected as exc:
        return WriteOutcome(str(target), False, f"not written: {exc}")
    said = f"wrote {target} (read back and re-verified)" + (f"; {notice}" if notice else "")
    return WriteOutcome(str(target), True, said)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
