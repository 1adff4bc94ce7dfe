"""Hostile checkpoint files: bombs, deep and self-referencing containers, odd files.

Each gets one accurate line (ArchvizError, exit 2), never a traceback, and the bomb is
refused before its records are inflated.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest
import torch
from bombs import (
    compressed_bomb,
    data_pkl,
    deep_pickle,
    self_referencing_pickle,
    with_data_pkl,
)
from click.testing import CliRunner

from archviz.checkpoints import load_guard
from archviz.checkpoints.files import load_file, unwrap
from archviz.cli.main import cli
from archviz.errors import ArchvizError

BOMB_BYTES = 288 << 20  # inflates to 288 MiB from about 1.3 MB on disk
MIB = 1 << 20


def _peak_growth_in_child(path: Path) -> tuple[int, str]:
    """Load `path` in a forked child; its peak-RSS growth in bytes and what it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_file(path)
            outcome = "loaded"
        except ArchvizError as exc:
            outcome = f"refused: {exc}"
        except BaseException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        os.write(write, f"{growth}\n{outcome}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        growth, outcome = pipe.read().split("\n", 1)
    os.waitpid(pid, 0)
    return int(growth), outcome


def test_compressed_bomb_is_refused_before_memory_grows(tmp_path: Path) -> None:
    bomb = compressed_bomb(tmp_path / "bomb.pt", BOMB_BYTES)
    assert bomb.stat().st_size < BOMB_BYTES / 100
    growth, outcome = _peak_growth_in_child(bomb)
    assert outcome.startswith("refused") and "declares 301,9" in outcome, outcome
    assert growth < 200 * MIB, f"memory grew {growth / MIB:.0f} MiB"


def test_storage_declared_larger_than_its_record_is_refused(tmp_path: Path) -> None:
    """The pickle claims 2**40 floats for an 8-byte record."""
    path = with_data_pkl(tmp_path / "liar.pt", data_pkl(1 << 40))
    with pytest.raises(ArchvizError, match="declares 4,398,046,511,104 bytes"):
        load_file(path)


def test_limit_is_overridable(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(1000)}, tmp_path / "ok.pt")
    with pytest.raises(ArchvizError, match="limit"):
        load_file(tmp_path / "ok.pt", max_bytes=100)
    assert load_file(tmp_path / "ok.pt")["w"].shape == (1000,)


@pytest.mark.parametrize(
    ("pickle_bytes", "message"),
    [
        (deep_pickle(100_000), "levels deep"),
        (self_referencing_pickle(), "contains itself"),
    ],
    ids=["100000-deep", "self-referencing"],
)
def test_nested_containers_are_one_line(tmp_path: Path, pickle_bytes: bytes, message: str) -> None:
    path = with_data_pkl(tmp_path / "nested.pt", pickle_bytes)
    with pytest.raises(ArchvizError, match=message):
        unwrap(load_file(path), str(path))
    result = CliRunner().invoke(cli, ["verify", str(path), "--against", "resnet18"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert message in result.output


def _odd_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    (tmp_path / "loop_a.pt").symlink_to(tmp_path / "loop_b.pt")
    (tmp_path / "loop_b.pt").symlink_to(tmp_path / "loop_a.pt")
    (tmp_path / "notes.pth").write_text("epoch 3: loss 0.12\n")
    (tmp_path / "dangling.pt").symlink_to(tmp_path / "gone.pt")
    return {
        "fifo": (fifo, "is a FIFO"),
        "symlink loop": (tmp_path / "loop_a.pt", "symbolic link loop"),
        "text .pth": (tmp_path / "notes.pth", "is a text file"),
        "dangling link": (tmp_path / "dangling.pt", "which does not exist"),
    }


def test_odd_files_get_accurate_messages(tmp_path: Path) -> None:
    for what, (path, message) in _odd_files(tmp_path).items():
        with pytest.raises(ArchvizError, match=message):
            load_file(path)
        result = CliRunner().invoke(cli, ["verify", str(path), "--against", "resnet18"])
        assert result.exit_code == 2, (what, result.output)
        assert message in result.output and "empty" not in result.output, what


def test_unreadable_safetensors_says_permission(tmp_path: Path, monkeypatch) -> None:
    """Root reads everything, so a permission failure is injected at open()."""
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"x" * 16)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(load_guard, "open", denied, raising=False)
    with pytest.raises(ArchvizError, match="Permission denied") as info:
        load_file(path)
    assert "FileNotFoundError" not in str(info.value)


def test_cli_flag_raises_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    args = ["verify", str(path), "--against", "resnet18", "--no-forward"]
    refused = CliRunner().invoke(cli, [*args, "--max-load-bytes", "10"])
    assert refused.exit_code == 2 and "--max-load-bytes" in refused.output
    allowed = CliRunner().invoke(cli, [*args, "--max-load-bytes", "100000"])
    assert allowed.exit_code == 1 and "verdict: incompatible" in allowed.output
