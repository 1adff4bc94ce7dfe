"""--write-remapped: write a checkpoint only when it is proven, and never lose a file.

The state_dict goes to a temporary file in the destination's folder, is flushed to disk,
read back and re-verified; only then does one `os.replace` put it in place. A failed
check leaves the destination as it was. Writing over the candidate or reference file
is refused (exit 2): a failure half-way must never eat the user's input.

The bytes are made by `checkpoint.save_state_dict` (which keeps or drops the source's
container entries); the rename is done here, after the read-back check, because
`write_atomic` has no step between writing and renaming.
"""

from __future__ import annotations

import os
import tempfile
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
        raise ArchvizError(f"--write-remapped {str(target)!r} is a directory, not a file")
    for source in inputs:
        if _same_file(target, Path(source)):
            raise ArchvizError(
                f"--write-remapped {str(target)!r} is an input of this run; write elsewhere"
            )


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        notice = save_state_dict(state_dict, tmp, source=source, keep_metadata=keep_metadata)
        _fsync(tmp)
        why = recheck(tmp)
        if why is not None:
            return WriteOutcome(str(target), False, f"not written: {why}")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint is for sharing
        os.replace(tmp, target)
        _fsync(str(target.parent))
    finally:
        Path(tmp).unlink(missing_ok=True)
    said = f"wrote {target} (read back and re-verified)" + (f"; {notice}" if notice else "")
    return WriteOutcome(str(target), True, said)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
