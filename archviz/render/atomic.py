"""Write a set of files so that a failed run leaves the previous ones intact.

Everything is rendered into a temporary folder beside the destination first; only when
all of it succeeded are the files moved into place, each with an atomic `os.replace`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def staging(destination: Path) -> Iterator[Path]:
    """Yield a scratch folder; on success its contents replace those in `destination`.

    Sub-folders are swapped whole (old one renamed away, new one renamed in), so a
    diagram removed from the report does not linger. Other files in `destination`
    (e.g. `benchmarks/`) are left alone.
    """
    destination.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".archviz-", dir=destination))
    try:
        yield scratch
        for item in sorted(scratch.iterdir()):
            _move_into_place(item, destination / item.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _move_into_place(source: Path, target: Path) -> None:
    if source.is_dir():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        source.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write one file atomically: a temp file beside it, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
