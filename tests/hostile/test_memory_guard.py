"""A real-device trace that cannot fit is refused up front, with a --device meta hint."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from archviz.cli.main import cli
from archviz.models import get_model
from archviz.tracing import memory_guard
from archviz.tracing.trace import trace


def test_huge_input_is_refused_before_allocating() -> None:
    # 1 x 3 x 100000 x 100000 float32 = 3e10 * 4 bytes = 120 GB
    result = CliRunner().invoke(
        cli, ["trace", "resnet18", "--device", "cpu", "--input", "1,3,100000,100000"]
    )
    assert result.exit_code == 2, result.output
    assert "--device meta" in result.output and "Traceback" not in result.output


def test_activations_that_cannot_fit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The input fits, its activations do not: the meta trace finds out first."""
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: 100 * 2**20)
    # input 3 x 2048 x 2048 x 4 bytes = 48 MiB < 100 MiB; conv1's output
    # 64 x 1024 x 1024 x 4 bytes = 256 MiB: 48 + 256 > 100 MiB.
    with pytest.raises(ValueError, match="--device meta"):
        trace(get_model("resnet18"), (1, 3, 2048, 2048), device="cpu")


def test_what_fits_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: 100 * 2**20)
    assert trace(get_model("resnet18"), (1, 3, 64, 64), device="cpu").totals.macs > 0
