"""Atomic writes: a file or a whole folder is either the old one or the new one, never a mix.

One file: written to a temporary file in the same folder, flushed and fsynced, then
renamed over the destination with one `os.replace`. A folder: see `exchange`, which
swaps two directory entries in one system call. Every single file archviz writes goes
through `write_atomic`, and so follows one set of rules:

- the mode of a file it replaces is kept; a new file gets what `open()` would give (the umask);
- a symbolic link is refused, never followed (the one rule, in the README), as are
  folders and special files (devices, FIFOs, sockets: `-o /dev/null` as root would
  otherwise replace the system's /dev/null with a regular file);
- every input of the run (`archviz.run.register_input`: a checkpoint, a config, the
  factory's source) and every path in `inputs` is refused as a destination;
- a parent that is a file, a full disk or any other OSError is one ArchvizError line,
  and the previous file stays whole.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from archviz.errors import ArchvizError
from archviz.run import run_inputs

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp's 0600 is for secrets
DIR_MODE = 0o777 & ~_UMASK

Content = bytes | str | Callable[[Path], None]


def write_atomic(
    path: str | os.PathLike[str],
    content: Content,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Write `content` (bytes, text, or a function that writes a given path) to `path`.

    `check(temp_path)` runs on the written, fsynced bytes before the rename; whatever it
    raises leaves the destination as it was. See the module docstring for what is refused.
    """
    target = Path(path)
    _refuse_unsafe_target(target, [*inputs, *run_inputs()])
    mode = _mode_to_keep(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            # the destination's suffix last: a checker reading the temp file by its
            # suffix (safetensors or torch.save) reads it as the destination
            prefix=f".{target.name[:64]}.",
            suffix=f".archviz-tmp{target.suffix[:16]}",
            dir=target.parent,
        )
    except OSError as exc:
        raise ArchvizError(f"cannot write {_shown(target)}: {_reason(exc)}") from None
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
        if check is not None:
            check(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArchvizError(f"cannot write {_shown(target)}: {_reason(exc)}") from None
        raise
    return target


def check_destination(path: str | os.PathLike[str]) -> None:
    """The refusals of `write_atomic`, up front: a command checks `-o` before its work."""
    _refuse_unsafe_target(Path(path), run_inputs())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _mode_to_keep(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return FILE_MODE


def _refuse_unsafe_target(target: Path, inputs: Iterable[str | os.PathLike]) -> None:
    shown = _shown(target)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        info = None  # a parent is a file: said below
    except OSError as exc:
        raise ArchvizError(f"cannot write {shown}: {_reason(exc)}") from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise ArchvizError(
            f"{shown} is a symbolic link; archviz does not write through links, give the real path"
        )
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise ArchvizError(f"{shown} is a folder; give a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise ArchvizError(
            f"{shown} is not a regular file (a device, FIFO or socket); give a file path"
        )
    _refuse_file_parent(target)
    if info is None:
        return  # a new file cannot be any input
    for source in inputs:
        if _same_file(target, Path(source)):
            raise ArchvizError(
                f"refusing to write over {shown}: it is an input of this run; "
                "choose another output file"
            )


def _refuse_file_parent(target: Path) -> None:
    """A folder on the way that is a file: one line naming it, not a FileExistsError."""
    for parent in target.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ArchvizError(
                    f"cannot write {_shown(target)}: {_shown(parent)} is a file, not a folder"
                )
            return


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _shown(path: Path) -> str:
    text = str(path)
    return repr(text if len(text) <= 200 else text[:200] + "...")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (the entry lives in the folder's own data)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a folder; the rename stands
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
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
