"""Single files archviz writes (remapped checkpoints, diagrams, bench JSON) are atomic:
a failure half-way leaves the previous file whole, and the input is never overwritten."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz.checkpoints.files import save_state_dict
from archviz.cli.main import cli
from archviz.errors import ArchvizError
from archviz.render.atomic import write_atomic


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)


def _checkpoint(path: Path) -> Path:
    sd = {f"module.{k}": v for k, v in _Tiny().state_dict().items()}
    torch.save({"state_dict": sd, "epoch": 7, "optimizer": {"lr": 0.1}}, path)
    return path


def _verify(*args: str):
    reference = "tests.hostile.test_atomic_files:_Tiny"
    return CliRunner().invoke(cli, ["verify", *args, "--against", reference, "--no-forward"])


def test_write_remapped_onto_its_input_is_refused(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    before = ckpt.read_bytes()
    result = _verify(str(ckpt), "--write-remapped", str(ckpt))
    assert result.exit_code == 2 and "input" in result.output, result.output
    assert ckpt.read_bytes() == before


def test_failed_write_leaves_the_previous_output_whole(tmp_path: Path, monkeypatch) -> None:
    """A full disk half-way through torch.save: the old OUT.pt survives, no temp left."""
    ckpt, out = _checkpoint(tmp_path / "ckpt.pt"), tmp_path / "out.pt"
    out.write_bytes(b"previous remapped checkpoint")
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    result = _verify(str(ckpt), "--write-remapped", str(out))
    monkeypatch.setattr(torch, "save", real_save)
    assert result.exit_code == 2 and "No space left" in result.output, result.output
    assert out.read_bytes() == b"previous remapped checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "out.pt"]


def test_metadata_kept_on_request_and_dropped_with_a_notice(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ckpt.pt")
    result = _verify(str(ckpt), "--write-remapped", str(tmp_path / "plain.pt"))
    assert result.exit_code == 0 and "dropped 'epoch', 'optimizer'" in result.output
    assert set(torch.load(tmp_path / "plain.pt")) == {"fc.weight", "fc.bias"}
    result = _verify(str(ckpt), "--write-remapped", str(tmp_path / "kept.pt"), "--keep-metadata")
    kept = torch.load(tmp_path / "kept.pt")
    assert result.exit_code == 0 and kept["epoch"] == 7 and kept["optimizer"] == {"lr": 0.1}
    assert set(kept["state_dict"]) == {"fc.weight", "fc.bias"}


def test_write_atomic_crash_before_rename_keeps_old(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "diagram.svg"
    path.write_text("old")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["diagram.svg"]
    write_atomic(path, "new")
    assert path.read_text() == "new"


def test_write_atomic_does_not_write_through_links(tmp_path: Path) -> None:
    target = tmp_path / "users.json"
    target.write_text("keep")
    (tmp_path / "bench.json").symlink_to(target)
    with pytest.raises(ArchvizError, match="symbolic link"):
        write_atomic(tmp_path / "bench.json", "{}")
    assert target.read_text() == "keep"


def test_save_state_dict_keeps_file_mode(tmp_path: Path) -> None:
    out = tmp_path / "w.pt"
    out.write_bytes(b"x")
    out.chmod(0o640)
    save_state_dict(_Tiny().state_dict(), out)
    assert out.stat().st_mode & 0o777 == 0o640
