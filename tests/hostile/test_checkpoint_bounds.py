"""Issue 24: checkpoints are bounded: the reference's size raises the load limit, and many
keys verify in time linear in their number, with progress on stderr."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import torch
from click.testing import CliRunner

from archviz.checkpoints.verify import verify
from archviz.cli.main import cli
from tests.hostile.test_careful_writes import MODELS


def _deflated(path: Path, obj: object) -> Path:
    """torch.save's zip, its records deflated: zeros shrink ~1000x, still a valid checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    return path


def test_the_reference_size_raises_the_limit(tmp_path: Path) -> None:
    """Linear(1000, 1000) weights: 1000 * 1000 * 4 = 4 MB of zeros in a ~4 kB file; 4x the
    file is ~16 kB, the reference holds 4 MB: the documented limit allows it."""
    sd = {"0.weight": torch.zeros(1000, 1000), "0.bias": torch.zeros(1000)}
    path = _deflated(tmp_path / "zeros.pt", sd)
    assert path.stat().st_size * 4 < 4_000_000
    args = ["verify", str(path), "--against", f"{MODELS}:wide_linear", "--no-forward"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def test_many_keys_verify_in_linear_time(tmp_path: Path) -> None:
    """50,000 one-element keys: verify takes a small multiple of torch.load's time."""
    path = tmp_path / "many.pt"
    torch.save({f"k{i}.weight": torch.zeros(1) for i in range(50_000)}, path)
    start = time.perf_counter()
    torch.load(path, weights_only=True)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    result = verify(str(path), f"{MODELS}:tiny_cnn", forward_check=False)
    verify_s = time.perf_counter() - start
    assert result.verdict == "incompatible" and result.candidate_keys == 50_000
    assert verify_s < 10 * load_s + 2, (verify_s, load_s)  # generous: a loaded 2-core machine


def test_many_keys_show_progress(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARCHVIZ_PROGRESS_INTERVAL", "0")
    path = tmp_path / "many.pt"
    torch.save({f"k{i}.weight": torch.zeros(1) for i in range(20_000)}, path)
    args = ["verify", str(path), "--against", f"{MODELS}:tiny_cnn", "--no-forward"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "keys" in result.stderr, result.stderr
