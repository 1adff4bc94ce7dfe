"""Diagrams: DOT from records, golden files, escaping, and the CLI with and without `dot`."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from torch import nn

from archviz import ArchvizError, get_model, trace
from archviz.cli import cli
from archviz.models import BasicBlock, Bottleneck, ResNet
from archviz.render._diagram_parts import kernel
from archviz.render.diagram import LEVELS, Diagram, diagram

GOLDEN = Path(__file__).parent / "golden"
EVIL = '<script>alert(1)</script> "q" & \\n back\\'


def _golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; ARCHVIZ_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("ARCHVIZ_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with ARCHVIZ_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def _tiny(block=BasicBlock, layers=(1, 1, 1, 1)) -> nn.Module:
    return ResNet(block, list(layers), num_classes=10)


def _texts(svg: str) -> list[str]:
    ns = "{http://www.w3.org/2000/svg}"
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{ns}text")]


def test_golden_resnet18_stage() -> None:
    _golden("resnet18_stage.dot", diagram(trace(get_model("resnet18"), name="resnet18")).source)


def test_golden_tiny_block_and_layer() -> None:
    basic = trace(_tiny(), (1, 3, 32, 32), name="tiny-basic")
    _golden("tiny_basic_block.dot", diagram(basic, "block").source)
    neck = trace(_tiny(Bottleneck, (2, 1, 1, 1)), (1, 3, 32, 32), name="tiny-bottleneck")
    _golden("tiny_bottleneck_layer.dot", diagram(neck, "layer").source)


@pytest.mark.parametrize("level", LEVELS)
def test_same_model_same_bytes(level: str) -> None:
    first = diagram(trace(_tiny(), (1, 3, 32, 32)), level).source
    assert diagram(trace(_tiny(), (1, 3, 32, 32)), level).source == first
    assert "cluster" in first or level == "stage"


def test_stage_level_shows_blocks_and_shapes() -> None:
    source = diagram(trace(get_model("resnet50"))).source
    assert "3 × Bottleneck" in source and "36 × Bottleneck" not in source
    for edge in ("3x224x224", "64x56x56", "256x56x56", "512x28x28", "1024x14x14", "2048x7x7"):
        assert f'label="{edge}"' in source


def test_block_level_shortcuts() -> None:
    source = diagram(trace(get_model("resnet18")), "block").source
    # resnet18: 8 blocks; layer2..4's first blocks project (stride 2), the other 5 are identities
    assert len(re.findall(r"~add\" \[style=dashed\]", source)) == 5
    projections = re.findall(r'label="(1x1 conv /2, \d+->\d+ · BN)"', source)
    assert projections == [
        "1x1 conv /2, 64->128 · BN",
        "1x1 conv /2, 128->256 · BN",
        "1x1 conv /2, 256->512 · BN",
    ]


def test_layer_level_bottleneck_narrows_and_widens() -> None:
    source = diagram(trace(_tiny(Bottleneck, (2, 1, 1, 1)), (1, 3, 32, 32)), "layer").source
    nodes = dict(re.findall(r"^\s+\"layer1\.1\.(conv\d)\" \[label=\"([^\"]+)\"", source, re.M))
    assert nodes == {
        "conv1": "1x1 conv, 256->64",
        "conv2": "3x3 conv, 64->64",
        "conv3": "1x1 conv, 64->256",
    }
    widths = dict(re.findall(r'"layer1\.1\.(conv\d)" \[label="[^"]+" width=([\d.]+)', source))
    assert float(widths["conv1"]) == float(widths["conv2"]) < float(widths["conv3"])
    assert '"layer1.1~add" [label="+"' in source


def test_kernel_from_parameters_matches_the_modules() -> None:
    model = get_model("resnext50_32x4d")  # 3x3 convs with groups=32: the hard case
    result = trace(model)
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    for name, conv in convs.items():
        assert kernel(result.get(name), groups=32) == conv.kernel_size[0], name


def _evil_resnet() -> nn.Module:
    model = _tiny()
    model.add_module(EVIL, model.layer2)
    del model._modules["layer2"]
    model.stage_names = ("layer1", EVIL, "layer3", "layer4")
    return model


def _evil_sequential() -> nn.Module:
    model = nn.Sequential()
    model.add_module(EVIL, nn.Conv2d(3, 4, 3))
    model.add_module('say "hi"', nn.ReLU())
    return model


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("build", [_evil_resnet, _evil_sequential])
def test_hostile_names_stay_text(build, level: str) -> None:
    result = trace(build(), (1, 3, 32, 32), name=EVIL)
    svg = diagram(result, level).svg()  # dot accepts the source
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert any(EVIL in t for t in _texts(svg))  # shown literally, quotes and backslashes too


def test_save_formats_and_repr(tmp_path: Path) -> None:
    d = diagram(trace(_tiny(), (1, 3, 32, 32)))
    assert d._repr_svg_().lstrip().startswith("<?xml")
    assert d.save(tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert d.save(tmp_path / "a.dot").read_text() == d.source
    with pytest.raises(ArchvizError, match="format"):
        d.save(tmp_path / "a.jpeg")
    with pytest.raises(ArchvizError, match="level"):
        diagram(trace(_tiny(), (1, 3, 32, 32)), "pixel")


def test_cli_writes_svg(tmp_path: Path) -> None:
    out = tmp_path / "r18.svg"
    result = CliRunner().invoke(cli, ["diagram", "resnet18", "-o", str(out), "--level", "block"])
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text() and "layer4.1" in out.read_text()
    bad = CliRunner().invoke(cli, ["diagram", "resnet18", "-o", str(out), "--level", "pixel"])
    assert bad.exit_code == 2


def test_cli_without_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    runner = CliRunner()
    ok = runner.invoke(cli, ["diagram", "resnet18", "-o", str(tmp_path / "a.dot")])
    assert ok.exit_code == 0 and (tmp_path / "a.dot").exists()
    assert "apt-get install graphviz" in ok.stderr
    failed = runner.invoke(cli, ["diagram", "resnet18", "-o", str(tmp_path / "b.svg")])
    assert failed.exit_code == 2 and not (tmp_path / "b.svg").exists()
    assert (tmp_path / "b.dot").read_text() == (tmp_path / "a.dot").read_text()
    message = failed.stderr.strip()
    assert "\n" not in message and "apt-get install graphviz" in message


def test_diagram_is_plain_data() -> None:
    assert Diagram("digraph {}") == Diagram("digraph {}")
