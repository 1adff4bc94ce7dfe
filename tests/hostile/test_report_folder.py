"""The report folder: owned, replaced in one atomic step, never mixed, never the user's.

Crash injection runs the commit of a real report's files and stops it at every file
system call in turn, two ways: raising (cleanup code runs) and `os._exit` in a forked
child (nothing runs after the crash, as with SIGKILL or a power cut). A SIGKILL loop
then kills real writers at random moments. After each, the folder must be the old report
or the new one, byte for byte.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from archviz.cli.main import cli
from archviz.errors import ArchvizError
from archviz.render.report import folder as rf
from archviz.render.report.folder import MANIFEST, write_folder

OLD = {
    "README.md": "# old report\n" * 2000,
    "report.html": "<p>old</p>\n" * 5000,
    "diagrams/a-stage.svg": "<svg>old a</svg>",
    "diagrams/gone-stage.svg": "<svg>removed in the new report</svg>",
    "plots/params_macs.svg": "<svg>old plot</svg>" * 500,
}
NEW = {
    "README.md": "# new report\n" * 2100,
    "report.html": "<p>new</p>\n" * 5200,
    "diagrams/a-stage.svg": "<svg>new a</svg>",
    "diagrams/b-block.svg": "<svg>added in the new report</svg>",
    "plots/params_macs.svg": "<svg>new plot</svg>" * 500,
    "plots/bench.svg": "<svg>bench</svg>",
}


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`: files with their bytes, folders as None."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    base = tmp_path_factory.mktemp("states")
    write_folder(base / "old", OLD)
    write_folder(base / "new", NEW)
    return tree(base / "old"), tree(base / "new")


def _old_report(parent: Path) -> Path:
    out = parent / "reports"
    write_folder(out, OLD)
    return out


# Every call that changes or syncs the file system during a commit.
_CALLS = [
    (os, "open"),
    (os, "mkdir"),
    (os, "fsync"),
    (os, "chmod"),
    (os, "rename"),
    (os, "replace"),
    (os, "unlink"),
    (os, "rmdir"),
    (rf, "exchange"),
    (rf, "fsync_dir"),
]


class _Crash(BaseException):
    """Not an Exception: nothing in archviz may catch it, as nothing catches a kill."""


@contextmanager
def crash_at(step: int, crash: Callable[[], None]) -> Iterator[list[str]]:
    """Patch every call in _CALLS; the `step`-th call (from 1) crashes instead of running."""
    seen: list[str] = []
    originals = {(owner, name): getattr(owner, name) for owner, name in _CALLS}

    def wrap(owner, name, func):
        def patched(*args, **kwargs):
            seen.append(name)
            if len(seen) == step:
                crash()
            return func(*args, **kwargs)

        return patched

    for (owner, name), func in originals.items():
        setattr(owner, name, wrap(owner, name, func))
    try:
        yield seen
    finally:
        for (owner, name), func in originals.items():
            setattr(owner, name, func)


def _raise() -> None:
    raise _Crash


def _assert_old_or_new(out: Path, states: tuple[dict, dict]) -> str:
    now = tree(out)
    assert now in states, f"mixed report: {sorted(now)}"
    return "old" if now == states[0] else "new"


def _assert_recovers(out: Path, states: tuple[dict, dict]) -> None:
    """The next run succeeds, writes the new report, and leaves no scratch behind."""
    write_folder(out, NEW)
    assert tree(out) == states[1]
    assert sorted(p.name for p in out.parent.iterdir()) == ["reports"]


def test_crash_raised_at_every_step_leaves_old_or_new(tmp_path: Path, states) -> None:
    outcomes = []
    step = 1
    while True:
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        out = _old_report(work)
        with crash_at(step, _raise) as seen:
            try:
                write_folder(out, NEW)
                crashed = False
            except _Crash:
                crashed = True
        outcomes.append(_assert_old_or_new(out, states))
        _assert_recovers(out, states)
        if not crashed:
            break
        step += 1
    assert len(seen) > 30  # the commit really was cut at every one of its calls
    assert step == len(seen) + 1 and outcomes[-1] == "new" and "old" in outcomes


def test_hard_crash_at_every_step_leaves_old_or_new(tmp_path: Path, states) -> None:
    """os._exit in a forked child at step N: no finally, no cleanup, like a power cut."""
    steps = _count_steps(tmp_path)
    seen, kills = set(), 0
    for step in range(1, steps + 1):
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        out = _old_report(work)
        pid = os.fork()
        if pid == 0:  # pragma: no cover (child)
            with crash_at(step, lambda: os._exit(9)):
                write_folder(out, NEW)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 9  # it died at that step
        kills += 1
        seen.add(_assert_old_or_new(out, states))
        _assert_recovers(out, states)  # stale scratch from the dead run is removed
    assert seen == {"old", "new"} and kills == steps > 30
    print(f"hard crash at each of {steps} steps: all old or new")


def _count_steps(tmp_path: Path) -> int:
    out = _old_report(Path(tempfile.mkdtemp(dir=tmp_path)))
    with crash_at(0, _raise) as seen:
        write_folder(out, NEW)
    return len(seen)


def test_sigkill_at_random_moments(tmp_path: Path, states) -> None:
    """>= 20 writers killed with SIGKILL at random times inside their run."""
    rng = random.Random(12)
    start = time.perf_counter()
    write_folder(_old_report(Path(tempfile.mkdtemp(dir=tmp_path))), NEW)
    duration = time.perf_counter() - start
    outcomes = []
    for _ in range(24):
        out = _old_report(Path(tempfile.mkdtemp(dir=tmp_path)))
        pid = os.fork()
        if pid == 0:  # pragma: no cover (child)
            write_folder(out, NEW)
            os._exit(0)
        time.sleep(rng.uniform(0, duration))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        outcomes.append(_assert_old_or_new(out, states))
        _assert_recovers(out, states)
    print(f"SIGKILL loop: {outcomes.count('old')} old, {outcomes.count('new')} new")
    assert len(outcomes) >= 20


def test_user_files_survive_whatever_the_exit_code(tmp_path: Path, monkeypatch) -> None:
    """The issue's project folder: README.md, diagrams/, plots/, a user folder."""
    project = tmp_path / "project"
    for rel in ("README.md", "diagrams/architecture.png", "plots/loss_curve.png", "notes/x.txt"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(f"user's {rel}")
    (project / "pyproject.toml").write_text("[project]\n")
    before = tree(project)
    monkeypatch.chdir(project)
    runner = CliRunner()
    for out in (".", str(project), "diagrams", "plots", "notes", "README.md"):
        result = runner.invoke(cli, ["report", "resnet18", "--input", "1x3x32x32", "--out", out])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert tree(project) == before
    result = runner.invoke(cli, ["report", "--out", "diagrams"])
    assert "'architecture.png'" in result.output and "--out" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("out", ["/", "~"])
def test_root_and_home_are_refused(out: str) -> None:
    result = CliRunner().invoke(cli, ["report", "resnet18", "--out", os.path.expanduser(out)])
    assert result.exit_code == 2 and "refusing" in result.output


def test_only_manifest_files_are_replaced(tmp_path: Path) -> None:
    out = _old_report(tmp_path)
    (out / "diagrams" / "mine.png").write_bytes(b"user")
    with pytest.raises(ArchvizError, match=r"'diagrams/mine.png'.*--out"):
        write_folder(out, NEW)
    assert (out / "diagrams" / "mine.png").read_bytes() == b"user"
    assert (out / "README.md").read_text() == OLD["README.md"]


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.svg").write_text("user")
    out = _old_report(tmp_path)
    shutil.rmtree(out / "diagrams")
    (out / "diagrams").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArchvizError, match="symbolic link"):
        write_folder(out, NEW)
    link = tmp_path / "link"
    link.symlink_to(out)
    with pytest.raises(ArchvizError, match="symbolic link"):
        write_folder(link, NEW)
    assert [p.name for p in outside.iterdir()] == ["keep.svg"]


def test_a_file_where_the_report_wants_a_folder_is_one_line(tmp_path: Path) -> None:
    out = _old_report(tmp_path)
    (out / "report.html").unlink()
    (out / "report.html").mkdir()  # the OSError: report.html is a folder
    with pytest.raises(ArchvizError, match=r"'report\.html'"):
        write_folder(out, NEW)


def test_stale_scratch_from_killed_runs_is_removed(tmp_path: Path, states) -> None:
    out = _old_report(tmp_path)
    for name in (".reports.archviz-dead1", ".reports.archviz-dead2"):
        (tmp_path / name / "diagrams").mkdir(parents=True)
    (tmp_path / ".reports.archviz-dead1" / "report.html").write_text("half")
    _assert_recovers(out, states)


def test_concurrent_runs_are_serialised(tmp_path: Path, states) -> None:
    """Writers racing on one folder: each commit is whole, and the folder ends whole."""
    out = _old_report(tmp_path)
    pids = []
    for i in range(6):
        pid = os.fork()
        if pid == 0:  # pragma: no cover (child)
            write_folder(out, NEW if i % 2 else OLD)
            os._exit(0)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    assert codes == [0] * 6
    _assert_old_or_new(out, states)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_manifest_lists_what_was_written(tmp_path: Path) -> None:
    out = _old_report(tmp_path)
    assert rf.read_manifest(out) == set(OLD)
    assert (out / MANIFEST).is_file()


def test_without_renameat2_the_fallback_still_swaps_whole(
    tmp_path: Path, states, monkeypatch
) -> None:
    """Kernels or libcs without RENAME_EXCHANGE: three renames, never a mixed folder."""
    from archviz.render import atomic

    monkeypatch.setattr(atomic, "_renameat2", lambda: None)
    out = _old_report(tmp_path)
    _assert_recovers(out, states)


def test_committed_reports_folder_is_an_archviz_report() -> None:
    """`make report` rewrites the repository's reports/: its manifest lists every file."""
    reports = Path(__file__).resolve().parents[2] / "reports"
    assert rf.first_foreign(reports) is None
    assert rf.read_manifest(reports) >= {"README.md", "report.html"}
