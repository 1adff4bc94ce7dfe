"""A rerun of the report with other tool versions and the same figures leaves every file
byte for byte as it was (so `make report` keeps a clean git tree); a changed figure
rewrites the page, with the new versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archviz import compare
from archviz.render.report import write_report

SMALL = (1, 3, 32, 32)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_other_torch_version_same_figures_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comparison = compare(["resnet18"], SMALL)
    monkeypatch.setattr(torch, "__version__", "2.15.0+cu132")
    write_report(comparison, tmp_path)
    before = _files(tmp_path)
    assert "2.15.0+cu132" in before["README.md"].decode()
    monkeypatch.setattr(torch, "__version__", "2.14.1+cpu")
    write_report(comparison, tmp_path)
    assert _files(tmp_path) == before  # the old versions stay: they made these figures

    write_report(compare(["resnet18"], (1, 3, 64, 64)), tmp_path)  # other figures
    after = _files(tmp_path)
    for page in ("README.md", "report.html"):
        assert "2.14.1+cpu" in after[page].decode() and "2.15.0" not in after[page].decode()
