"""Issue 24: every single file archviz writes goes through one careful writer.

Kept modes, refused special files and links, inputs never overwritten, a parent that is
a file or a full disk is exit 2 with one line and the old file whole.
"""

from __future__ import annotations

import errno
import os
import stat
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archviz.cli.main import cli

MODELS = "tests.hostile.hostile_models"
TINY = f"{MODELS}:tiny_cnn"
# Each command with a small run writing `-o PATH` (its suffix appended by the test).
COMMANDS = {
    "trace": (["trace", TINY, "--input", "1x3x8x8", "--format", "json"], ".json"),
    "explain": (["explain", "resnet18", "--input", "1x3x32x32", "--format", "json"], ".json"),
    "compare": (["compare", "resnet18", "--input", "1x3x32x32", "--no-paper"], ".md"),
    "diagram": (["diagram", TINY, "--input", "1x3x8x8"], ".dot"),
    "explore": (["explore", TINY, "--input", "1x3x8x8"], ".html"),
    "bench": (["bench", TINY, "--device", "cpu", "--input", "1x3x8x8", "--quick"], ".json"),
}


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("archviz")]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in result.output, result.output


def _run(name: str, out: Path):
    args, _ = COMMANDS[name]
    return CliRunner().invoke(cli, [*args, "-o", str(out)])


def _verify_args(tmp_path: Path) -> list[str]:
    ckpt = tmp_path / "ckpt.pt"
    torch.save(torch.nn.Linear(4, 4).state_dict(), ckpt)
    return ["verify", str(ckpt), "--against", "torch.nn:Identity", "--no-forward"]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_replaced_file_keeps_its_mode(tmp_path: Path, name: str) -> None:
    out = tmp_path / f"out{COMMANDS[name][1]}"
    out.write_text("old")
    out.chmod(0o644)
    result = _run(name, out)
    assert result.exit_code == 0, result.output
    assert out.read_text() != "old" and stat.S_IMODE(out.stat().st_mode) == 0o644


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_symlink_is_refused_everywhere(tmp_path: Path, name: str) -> None:
    target = tmp_path / "users_file"
    target.write_text("keep")
    link = tmp_path / f"link{COMMANDS[name][1]}"
    link.symlink_to(target)
    _one_line_error(_run(name, link), "symbolic link")
    assert target.read_text() == "keep" and link.is_symlink()


@pytest.mark.parametrize("name", ["trace", "diagram", "explore"])
def test_a_fifo_is_refused(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / f"pipe{COMMANDS[name][1]}"
    os.mkfifo(fifo)
    _one_line_error(_run(name, fifo), "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_is_refused(tmp_path: Path) -> None:
    """`-o /dev/null` as root would replace the system's /dev/null with a regular file; a
    copy of its node in tmp_path stands in (never the real one: a failing run replaces it)."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("creating a device node needs root")
    result = CliRunner().invoke(cli, [*COMMANDS["trace"][0], "-o", str(node)])
    _one_line_error(result, "not a regular file")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


@pytest.mark.parametrize("name", ["trace", "diagram", "explore", "compare", "bench"])
def test_a_parent_that_is_a_file_is_one_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "somefile").write_text("x")
    _one_line_error(_run(name, tmp_path / "somefile" / f"x{COMMANDS[name][1]}"), "somefile")


def test_verify_parent_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("x")
    out = tmp_path / "somefile" / "x.pt"
    _one_line_error(CliRunner().invoke(cli, [*_verify_args(tmp_path), "-o", str(out)]))


def test_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "t.json"
    out.write_text("previous")

    def full(fd: int, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    result = _run("trace", out)
    monkeypatch.undo()
    _one_line_error(result, "No space left")
    assert out.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_the_factorys_source_is_never_overwritten(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    source = textwrap.dedent(
        """
        from torch import nn

        def f():
            return nn.Linear(4, 2)
        """
    )
    (pkg / "mod.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["trace", "mypkg.mod:f", "--input", "1x4", "--format", "json"]
    result = CliRunner().invoke(cli, [*args, "-o", str(pkg / "mod.py")])
    _one_line_error(result, "input")
    assert (pkg / "mod.py").read_text() == source


def test_verify_says_o_when_the_user_typed_o(tmp_path: Path) -> None:
    args = _verify_args(tmp_path)
    result = CliRunner().invoke(cli, [*args, "-o", args[1]])
    _one_line_error(result, "input")
    assert "--write-remapped" not in result.output


def test_plots_refuse_a_symlink(tmp_path: Path) -> None:
    folder = tmp_path / "plots"
    folder.mkdir()
    target = tmp_path / "users.svg"
    target.write_text("keep")
    (folder / "params_macs.svg").symlink_to(target)
    args = ["compare", "resnet18", "--input", "1x3x32x32", "--no-paper", "--plots", str(folder)]
    result = CliRunner().invoke(cli, args)
    _one_line_error(result, "symbolic link")
    assert target.read_text() == "keep"


def test_a_failed_check_keeps_the_old_file(tmp_path: Path) -> None:
    from archviz.render.atomic import write_atomic

    out = tmp_path / "w.json"
    out.write_text("old")

    def refuse(tmp: Path) -> None:
        assert tmp.read_text() == "new" and tmp.suffix == ".json"
        raise RuntimeError("read back wrong")

    with pytest.raises(RuntimeError, match="read back wrong"):
        write_atomic(out, "new", check=refuse)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["w.json"]


def test_inputs_registered_in_a_run_are_refused(tmp_path: Path) -> None:
    from archviz.errors import ArchvizError
    from archviz.render.atomic import write_atomic
    from archviz.run import register_input, run_scope

    source = tmp_path / "config.json"
    source.write_text("{}")
    with run_scope():
        register_input(source)
        with pytest.raises(ArchvizError, match="input of this run"):
            write_atomic(source, "[]")
    write_atomic(source, "[]")  # outside the run it is just a file
    assert source.read_text() == "[]"


def test_time_limit_interrupts_a_sleep() -> None:
    import time

    from archviz.errors import ArchvizError
    from archviz.run import time_limit, user_code

    start = time.monotonic()
    with (
        pytest.raises(ArchvizError, match=r"timed out after 0\.5 s in the test's sleep"),
        time_limit(0.5),
        user_code("forward", where=lambda: "in the test's sleep"),
    ):
        time.sleep(30)
    assert time.monotonic() - start < 10
