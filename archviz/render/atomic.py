"""Atomic writes: a file or a whole folder is either the old one or the new one, never a mix.

One file: written to a temporary file in the same folder, flushed and fsynced, then
renamed over the destination with one `os.replace`. A folder: see `exchange`, which
swaps two directory entries in one system call. Every file archviz writes goes through
`write_atomic`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from archviz.errors import ArchvizError

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp's 0600 is for secrets
DIR_MODE = 0o777 & ~_UMASK

Content = bytes | str | Callable[[Path], None]


def write_atomic(
    path: str | os.PathLike[str], content: Content, *, inputs: Iterable[str | os.PathLike] = ()
) -> Path:
    """Write `content` (bytes, text, or a function that writes a given path) to `path`.

    Refuses to write through a symbolic link or over any of `inputs` (the files this run
    read), so a crash or a full disk leaves the previous file whole and a mistake never
    replaces the user's source.
    """
    target = Path(path)
    _refuse_unsafe_target(target, inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else FILE_MODE
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".archviz-tmp", dir=target.parent)
    tmp = Path(name)
    try:
        if callable(content):
            os.close(fd)
            fd = -1
            content(tmp)
            fd = os.open(tmp, os.O_RDONLY)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArchvizError(f"cannot write {str(target)!r}: {_reason(exc)}") from None
        raise
    return target


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _refuse_unsafe_target(target: Path, inputs: Iterable[str | os.PathLike]) -> None:
    if target.is_symlink():
        raise ArchvizError(
            f"{str(target)!r} is a symbolic link; archviz does not write through links, "
            "give the real path"
        )
    if target.is_dir():
        raise ArchvizError(f"{str(target)!r} is a folder; give a file name")
    for source in inputs:
        if target.exists() and Path(source).exists() and os.path.samefile(target, source):
            raise ArchvizError(
                f"refusing to write over the input {str(source)!r}; choose another output file"
            )


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (the entry lives in the folder's own data)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def exchange(a: Path, b: Path) -> None:
    """Swap two directory entries in one step: renameat2(RENAME_EXCHANGE) on Linux.

    Both names exist before and after the call, each naming a complete folder; there is
    no moment where either is missing or half one, half the other. Where the kernel or
    libc lacks the call, three renames are used: the window is between the first two,
    where `b` is briefly absent (never mixed).
    """
    func = _renameat2()
    if func is not None:
        if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), str(b))
    aside = a.with_name(f"{a.name}-swap")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def _renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func
