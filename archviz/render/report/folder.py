"""The report folder: archviz owns it, replaces it whole, and in one atomic step.

A report folder holds a manifest (`.archviz-report.json`) listing every file archviz
wrote there. archviz writes only into a new or empty folder, or one whose manifest lists
everything in it; anything else is refused before a byte is written, naming the first
file that is not archviz's. The new report is built complete in a scratch folder beside
the old one (same parent, same file system), fsynced, then swapped in with one
`renameat2(RENAME_EXCHANGE)`: the path always names a complete report, old or new.
The stable path stays a real folder (GitHub renders `reports/README.md` with its relative
links), and the old report, now in the scratch slot, is deleted afterwards.

A lock (`flock` on the report folder itself) serialises concurrent runs; scratch folders
left by killed runs are removed by the next run that holds the lock.

A page may mark regions as volatile (the versions of the tools that made it): a page whose
old and new text differ only inside those regions keeps its old bytes, so a committed
report does not change when a run with another torch patch release changes no figure.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import archviz
from archviz.errors import ArchvizError
from archviz.render.atomic import DIR_MODE, FILE_MODE, exchange, fsync_dir

MANIFEST = ".archviz-report.json"
_KIND = "archviz report"
_PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "package.json")


def scratch_prefix(out: Path) -> str:
    """Scratch folders are `.NAME.archviz-*` beside `out`: only archviz makes such names."""
    return f".{out.name}.archviz-"


def write_folder(
    out: str | os.PathLike[str],
    files: dict[str, str | bytes],
    volatile: re.Pattern[str] | None = None,
) -> None:
    """Make `out` hold exactly `files` (relative path -> content) and a manifest, atomically.

    A text file equal to the one already there outside `volatile`'s matches keeps the old
    bytes (see the module docstring)."""
    old = Path(os.path.abspath(out))  # read under the lock, inside the `with`
    with report_folder(out) as scratch:
        for rel, content in sorted(files.items()):
            kept = _unchanged(old / rel, content, volatile) if volatile else None
            put(scratch / rel, content if kept is None else kept)


def _unchanged(path: Path, content: str | bytes, volatile: re.Pattern[str]) -> bytes | None:
    """The old file's bytes if they differ from `content` only inside `volatile`; else None."""
    if isinstance(content, bytes):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # a new page, or not a plain file: write the new one
    with os.fdopen(fd, "rb") as handle:
        before = handle.read()
    try:
        text = before.decode("utf-8")
    except UnicodeDecodeError:
        return None
    same = volatile.sub("", text) == volatile.sub("", content)
    return before if same else None


def put(path: Path, content: str | bytes) -> None:
    """A new file in a private scratch folder: O_EXCL and O_NOFOLLOW, so nothing that is
    already there (a planted link, say) is ever followed or replaced."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)


def check_report_folder(out: str | os.PathLike[str]) -> Path:
    """Refuse an `--out` archviz may not replace, early (before any tracing); the same
    checks run again under the lock when the report is written."""
    target = _checked_target(Path(out))
    if target.is_dir():
        refuse_foreign(target, str(out))
    return target


@contextmanager
def report_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty scratch folder; on success it becomes `out`, atomically.

    Write the report's files into the scratch folder; the manifest is added on exit.
    On an exception nothing at `out` changes.
    """
    target = _checked_target(Path(out))
    try:
        with _locked(target):
            refuse_foreign(target, str(out))
            remove_stale_scratch(target)
            mode = stat.S_IMODE(target.stat().st_mode)
            scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix(target), dir=target.parent))
            new = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
            try:
                # Lock the new folder too: a run that waited on the old one re-checks and
                # then waits here until the old report is gone.
                fcntl.flock(new, fcntl.LOCK_EX)
                os.chmod(scratch, mode)
                yield scratch
                _write_manifest(scratch)
                _commit(scratch, target)
            finally:
                try:
                    shutil.rmtree(scratch, ignore_errors=True)  # the old report, or the new
                finally:
                    os.close(new)
    except OSError as exc:
        where = exc.filename or target
        raise ArchvizError(
            f"cannot write the report into {str(target)!r}: {exc.strerror or exc} ({where})"
        ) from None


def _checked_target(out: Path) -> Path:
    """Refuse folders archviz must never replace whole: /, home, the folder you are in."""
    absolute = Path(os.path.abspath(out))
    if absolute.is_symlink():
        raise ArchvizError(
            f"--out {str(out)!r} is a symbolic link; archviz does not write through links. "
            "Give the real folder, or another folder with --out"
        )
    real = absolute.resolve()
    cwd = Path.cwd().resolve()
    project = any((cwd / marker).exists() for marker in _PROJECT_MARKERS)
    why = None
    if real == Path(real.anchor):
        why = "it is the root folder"
    elif real == Path.home().resolve():
        why = "it is your home folder"
    elif cwd == real or real in cwd.parents:
        why = "it is the current folder" + (" of a project" if project else "")
    if why:
        raise ArchvizError(
            f"refusing to write the report into {str(out)!r}: {why}, and a report folder is "
            f"replaced whole. Choose a folder of its own, e.g. --out {_suggest(absolute)}"
        )
    if absolute.exists() and not absolute.is_dir():
        raise ArchvizError(f"--out {str(out)!r} is a file, not a folder; choose another --out")
    return absolute


def _suggest(out: Path) -> str:
    """A new folder inside `out`, or inside the current folder when `out` contains it."""
    cwd = Path.cwd()
    inside = cwd.resolve() == out.resolve() or out.resolve() in cwd.resolve().parents
    candidate = (cwd if inside else out) / "archviz-report"
    try:
        return str(candidate.relative_to(cwd))
    except ValueError:
        return str(candidate)


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive flock on the folder at `target` (created if missing).

    The folder is swapped away by the commit, so after waiting a run checks that the
    folder it locked is still the one at `target`, and otherwise locks the new one.
    """
    target.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    while True:
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_ino == os.stat(target, follow_symlinks=False).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_manifest(folder: Path) -> set[str] | None:
    """The files archviz wrote in `folder`, or None if it holds no archviz manifest."""
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != _KIND:
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def first_foreign(folder: Path) -> tuple[str, str] | None:
    """The first entry (sorted, depth first) archviz did not write, and why; else None."""
    manifest = read_manifest(folder)
    owned = manifest or set()
    owned_dirs = {str(p) for f in owned for p in Path(f).parents}
    not_listed = "is not in its archviz manifest" if manifest is not None else "is not archviz's"
    for rel, entry in _walk(folder):
        if rel == MANIFEST and manifest is not None:
            continue
        if entry.is_symlink():
            return rel, "is a symbolic link archviz did not make"
        if entry.is_dir(follow_symlinks=False):
            if rel not in owned_dirs:
                return rel, f"is a folder that {not_listed}"
        elif rel not in owned or not entry.is_file(follow_symlinks=False):
            return rel, not_listed
    return None


def _walk(folder: Path, prefix: str = "") -> Iterator[tuple[str, os.DirEntry]]:
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            rel = f"{prefix}{entry.name}"
            yield rel, entry
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path), f"{rel}/")


def refuse_foreign(target: Path, shown: str | None = None) -> None:
    """ArchvizError naming the first entry in `target` that archviz did not write."""
    found = first_foreign(target)
    if found is None:
        return
    rel, why = found
    ours = read_manifest(target) is not None
    kind = "holds files that are not archviz's" if ours else "is not an archviz report"
    raise ArchvizError(
        f"refusing to write the report into {shown or str(target)!r}: it {kind} "
        f"({rel!r} {why}). archviz replaces only a report folder it wrote, never your "
        f"files: choose an empty or new folder with --out, e.g. --out {_suggest(target)}"
    )


def remove_stale_scratch(target: Path) -> None:
    """Scratch folders beside `target` from killed runs (only the lock holder makes them)."""
    prefix = scratch_prefix(target)
    with os.scandir(target.parent) as entries:
        stale = [e for e in entries if e.name.startswith(prefix)]
    for entry in stale:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)


def _write_manifest(scratch: Path) -> None:
    files = sorted(rel for rel, entry in _walk(scratch) if entry.is_file(follow_symlinks=False))
    body = {"kind": _KIND, "archviz": archviz.__version__, "files": files}
    text = json.dumps(body, indent=2) + "\n"
    put(scratch / MANIFEST, text)


def _commit(scratch: Path, target: Path) -> None:
    """fsync everything in `scratch`, then swap it with `target` in one system call."""
    _fsync_tree(scratch)
    exchange(scratch, target)
    fsync_dir(target.parent)


def _fsync_tree(folder: Path) -> None:
    for _rel, entry in _walk(folder):
        if entry.is_file(follow_symlinks=False):
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        elif entry.is_dir(follow_symlinks=False):
            fsync_dir(Path(entry.path))
    fsync_dir(folder)
