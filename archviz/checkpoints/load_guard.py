"""Checks on a checkpoint file before anything is read into memory.

`torch.load` allocates every storage the file declares before it knows whether the bytes
are real: a 4 MB zip whose records inflate to 4.9 GB takes 4.9 GB. So the declared sizes
are read first, without materialising anything: the zip's central directory (each
record's uncompressed size) and the pickle's storage declarations (read by an unpickler
whose every class is an inert stand-in, so no code runs and no tensor is built).
"""

from __future__ import annotations

import errno
import os
import pickle
import stat
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

from archviz.errors import ArchvizError

LIMIT_FACTOR = 4  # default limit: 4x the file's size, or the reference's size if larger
_ELEMENT_SIZE = {  # torch's legacy typed-storage names, as pickled
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
    "ByteStorage": 1, "BoolStorage": 1, "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8, "UntypedStorage": 1, "QInt8Storage": 1, "QUInt8Storage": 1,
    "QInt32Storage": 4,
}  # fmt: skip
_TEXT_START = set(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def check_readable_file(file: Path) -> None:
    """One accurate line for everything that is not a readable regular file."""
    shown = repr(str(file))
    try:
        info = os.stat(file)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArchvizError(f"checkpoint {shown} is a symbolic link loop") from None
        if exc.errno == errno.ENOENT and os.path.islink(file):
            target = os.readlink(file)
            raise ArchvizError(
                f"checkpoint {shown} is a link to {target!r}, which does not exist"
            ) from None
        if exc.errno == errno.ENOENT:
            raise ArchvizError(f"checkpoint {shown} does not exist") from None
        raise ArchvizError(f"cannot read checkpoint {shown}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ArchvizError(f"checkpoint {shown} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        raise ArchvizError(f"checkpoint {shown} is {kind}; give a checkpoint file")
    if info.st_size == 0:
        raise ArchvizError(f"checkpoint {shown} is empty")
    try:
        with open(file, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ArchvizError(f"cannot read checkpoint {shown}: {exc.strerror}") from None


def check_pickle_format(file: Path) -> None:
    """A .pt/.pth must be a torch zip or a pickle; say so plainly when it is text."""
    with open(file, "rb") as handle:
        head = handle.read(64)
    if head.startswith(b"PK") or head.startswith(b"\x80"):
        return
    if all(byte in _TEXT_START for byte in head):
        preview = head[:24].decode("ascii", "replace").encode("unicode_escape").decode()
        raise ArchvizError(
            f"checkpoint {str(file)!r} is a text file (it starts {preview!r}), not a PyTorch "
            "checkpoint (a zip or pickle written by torch.save)"
        )
    raise ArchvizError(
        f"checkpoint {str(file)!r} is not a PyTorch checkpoint: it is neither a zip nor a "
        "pickle written by torch.save"
    )


REFERENCE_SLACK = 1 << 20  # the file's own records (pickle, version, alignment) beside the data


def default_limit(file: Path, reference_bytes: int = 0) -> int:
    """4x the file's size, or the reference's size (plus an eighth and 1 MiB for the file's
    own records) when that is larger: a valid checkpoint of it may compress far below."""
    allowed = reference_bytes + reference_bytes // 8 + REFERENCE_SLACK if reference_bytes else 0
    return max(LIMIT_FACTOR * file.stat().st_size, allowed)


def check_declared_size(file: Path, limit: int) -> int:
    """Refuse `file` if its storages declare more than `limit` bytes; returns the total."""
    declared = _declared_bytes(file, limit)
    if declared > limit:
        raise ArchvizError(
            f"checkpoint {str(file)!r} declares {declared:,} bytes of data, more than the "
            f"limit of {limit:,} ({LIMIT_FACTOR}x its size of {file.stat().st_size:,} bytes, "
            "or the reference's size): refused before loading. If you trust the file, raise "
            "the limit with --max-load-bytes"
        )
    return declared


def _declared_bytes(file: Path, limit: int) -> int:
    if not zipfile.is_zipfile(file):  # legacy format: pickles first, raw storages after
        with open(file, "rb") as handle:
            return _pickled_storage_bytes(handle, pickles=5)
    try:
        with zipfile.ZipFile(file) as archive:
            records = archive.infolist()
            unpacked = sum(r.file_size for r in records)
            pickles = [r for r in records if r.filename.endswith("data.pkl")]
            if unpacked > limit or not pickles:
                return unpacked
            with archive.open(pickles[0]) as handle:
                return max(unpacked, _pickled_storage_bytes(handle, pickles=1))
    except (zipfile.BadZipFile, OSError, EOFError):
        return 0  # torch.load will report the damage in its own words


def _pickled_storage_bytes(handle: IO[bytes], pickles: int) -> int:
    """Sum of storage sizes declared in up to `pickles` consecutive pickles."""
    total = 0
    for _ in range(pickles):
        reader = _Declarations(handle)
        try:
            reader.load()
        except Exception:
            return total + reader.bytes
        total += reader.bytes
    return total


class _Inert:
    """What every pickled class becomes: takes any arguments, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


# Plain containers are rebuilt as themselves (SETITEMS needs a real mapping); nothing
# else is ever looked up.
_SAFE = {
    ("collections", "OrderedDict"): OrderedDict,
    **{("builtins", t.__name__): t for t in (dict, list, tuple, set, frozenset, bytearray)},
}


class _Declarations(pickle.Unpickler):
    """Reads a pickle with inert stand-ins for every class, noting storage declarations."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__(handle)
        self.bytes = 0

    def find_class(self, module: str, name: str) -> Any:
        return _SAFE.get((module, name)) or type(name, (_Inert,), {"__module__": "inert"})

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            storage_type, numel = pid[1], pid[4]
            size = _ELEMENT_SIZE.get(getattr(storage_type, "__name__", ""), 8)
            if isinstance(numel, int) and numel > 0:
                self.bytes += numel * size
        return _Inert()
