"""Issue 24: no module name breaks a diagram or an explorer: short labels, full tooltips,
every SVG valid XML (parsed with xml.etree)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from archviz.cli.main import cli
from tests.hostile.hostile_models import LONG
from tests.hostile.test_careful_writes import MODELS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def _diagram(tmp_path: Path, factory: str, suffix: str) -> Path:
    out = tmp_path / f"d{suffix}"
    args = ["diagram", f"{MODELS}:{factory}", "--input", "1x4", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


@needs_dot
@pytest.mark.parametrize("factory", ["long_name", "control_name", "dotted"])
def test_every_svg_is_valid_xml(tmp_path: Path, factory: str) -> None:
    root = ET.parse(_diagram(tmp_path, factory, ".svg")).getroot()
    assert root.tag == f"{SVG}svg"


@needs_dot
def test_a_100kb_name_is_shortened_with_the_full_name_in_the_tooltip(tmp_path: Path) -> None:
    root = ET.parse(_diagram(tmp_path, "long_name", ".svg")).getroot()
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert texts and max(len(t) for t in texts) <= 80, max(len(t) for t in texts)
    titles = [a.get(f"{XLINK}title") or "" for a in root.iter(f"{SVG}a")]
    # DOT refuses quoted strings over 16,384 characters: the tooltip holds the first
    # 15,000 (the explorer's panel the whole name)
    assert any(t.startswith(LONG[:10_000]) for t in titles), [t[:40] for t in titles]


def test_dot_source_labels_are_short(tmp_path: Path) -> None:
    source = _diagram(tmp_path, "long_name", ".dot").read_text()
    labels = [line for line in source.splitlines() if "label=" in line]
    assert labels and all(len(line.split("tooltip=")[0]) < 400 for line in labels)
    assert LONG[:10_000] in source  # in a tooltip


def test_the_explorer_panel_holds_the_full_name(tmp_path: Path) -> None:
    out = tmp_path / "e.html"
    args = ["explore", f"{MODELS}:long_name", "--input", "1x4", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert LONG in out.read_text()
