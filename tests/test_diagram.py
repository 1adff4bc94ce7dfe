"""Diagrams: DOT from records, golden files, escaping, and the CLI with and without `dot`."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz import ArchvizError, get_model, trace
from archviz.cli.main import cli
from archviz.models import BasicBlock, Bottleneck, ResNet
from archviz.render.diagram import LEVELS, Diagram, diagram
from archviz.render.diagram.parts import kernel

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
    for shape in ("3x224x224", "64x56x56", "256x56x56", "512x28x28", "1024x14x14", "2048x7x7"):
        assert shape in source


EDGE = re.compile(r'^\s+("[^"]+"|\S+) -> ("[^"]+"|\S+)(?: \[(.*)\])?$', re.M)
NODE = re.compile(r'^\s+("[^"]+"|\S+) \[label=("(?:[^"\\]|\\.)*"|\S+)(.*)\]$', re.M)


def _dot(source: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Node id -> label, and (tail, head, attributes) for every edge, from DOT text."""
    nodes = {m[0].strip('"'): m[1].strip('"') for m in NODE.findall(source)}
    edges = [(a.strip('"'), b.strip('"'), attrs) for a, b, attrs in EDGE.findall(source)]
    return nodes, edges


def _into_merges(source: str, symbol: str) -> dict[str, list[tuple[str, str]]]:
    """Each merge node (label starting with `symbol`) -> [(source label, edge attrs)]."""
    nodes, edges = _dot(source)
    merges = {n for n, text in nodes.items() if text.startswith(symbol)}
    return {m: [(nodes[a], attrs) for a, b, attrs in edges if b == m] for m in sorted(merges)}


def test_resnet50_block_level_draws_16_shortcuts_4_projections() -> None:
    """Counted from the drawn edges into the adds, which come from the traced graph."""
    adds = _into_merges(diagram(trace(get_model("resnet50")), "block").source, "+")
    assert len(adds) == 16  # 3 + 4 + 6 + 3 blocks, one residual add each
    assert all(len(inputs) == 2 for inputs in adds.values())  # branch and shortcut
    shortcuts = [(text, attrs) for inputs in adds.values() for text, attrs in inputs
                 if "Bottleneck" not in text]  # fmt: skip
    assert len(shortcuts) == 16
    projections = sorted(text.split("\\n")[0] for text, _ in shortcuts if "conv" in text)
    assert projections == [
        "1x1 conv /2, 1024->2048 · BN",
        "1x1 conv /2, 256->512 · BN",
        "1x1 conv /2, 512->1024 · BN",
        "1x1 conv, 64->256 · BN",
    ]
    assert "16.9 k params" in " ".join(t for t, _ in shortcuts)  # 64 * 256 + 2 * 256 = 16_896
    identities = [attrs for text, attrs in shortcuts if "conv" not in text]
    assert len(identities) == 12 and all("dashed" in a for a in identities)


class _Residual(nn.Module):
    """A residual block whose projection is not called `downsample`: found all the same."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())
        self.side_path = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        return self.body(x) + self.side_path(x)


class _TwoBranches(nn.Module):
    """Two branches concatenated, then three residual blocks, the last two identical."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.Sequential(_Residual(8, 16), _Residual(16, 16), _Residual(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        y = torch.cat([self.left(x), self.right(x)], 1)
        return self.pool(self.blocks(y)).flatten(1)


def test_graph_not_names_gives_merges_shortcuts_and_runs() -> None:
    result = trace(_TwoBranches(), (1, 3, 8, 8), name="two-branches")
    source = diagram(result, depth=2).source
    cats = _into_merges(source, "cat")
    assert [sorted(t.split("\\n")[0] for t, _ in v) for v in cats.values()] == [
        ["1x1 conv, 3->4", "3x3 conv, 3->4"]
    ]
    adds = _into_merges(source, "+")
    assert len(adds) == 2  # blocks.0, and blocks.1..2 drawn once
    first, rest = adds.values()
    assert any("1x1 conv, 8->16" in t for t, a in first)  # the projection, by its weights
    assert any("dashed" in a for _, a in rest)  # the identity shortcut
    assert "× 2 _Residual" in source
    full = diagram(result, depth=2, collapse=False).source
    assert "× 2" not in full and len(_into_merges(full, "+")) == 3
    assert "two-branches · depth " in diagram(result).source  # no ResNet preset: by depth


def test_densenet121_depth3_collapses_dense_layers_and_shows_concatenations() -> None:
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.densenet121()
    result = trace(model, name="densenet121")
    source = diagram(result, depth=3).source
    for count in (6, 12, 24, 16):  # densenet121's block_config (Huang et al. 2017, Table 1)
        assert f"× {count} _DenseLayer" in source
    cats = _into_merges(source, "cat")
    assert len(cats) == 4
    # each block's concatenation: the block's input, and every one of its layers' outputs
    assert all(len(inputs) == 2 for inputs in cats.values())
    runs = sorted(a for inputs in cats.values() for _, a in inputs if "×" in a)
    assert runs == [f'label="{n} × 32x{s}x{s}"' for n, s in
                    ((12, 28), (16, 7), (24, 14), (6, 56))]  # fmt: skip
    full = diagram(result, depth=3, collapse=False).source
    assert "× 6" not in full and full.count("denselayer") >= 6 + 12 + 24 + 16


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_depth_same_model_same_bytes(depth: int) -> None:
    first = diagram(trace(_TwoBranches(), (1, 3, 8, 8)), depth=depth).source
    assert diagram(trace(_TwoBranches(), (1, 3, 8, 8)), depth=depth).source == first
    Diagram(first).svg()  # dot accepts it


def test_level_and_depth_are_exclusive() -> None:
    result = trace(_tiny(), (1, 3, 32, 32))
    with pytest.raises(ArchvizError, match="not both"):
        diagram(result, "block", depth=2)
    with pytest.raises(ArchvizError, match="depth"):
        diagram(result, depth=0)


def test_layer_level_bottleneck_narrows_and_widens() -> None:
    source = diagram(trace(_tiny(Bottleneck, (2, 1, 1, 1)), (1, 3, 32, 32)), "layer").source
    nodes, _ = _dot(source)
    texts = {n.rpartition(".")[2]: t.split("\\n")[0] for n, t in nodes.items()
             if n.startswith("layer1.1.conv")}  # fmt: skip
    assert texts == {
        "conv1": "1x1 conv, 256->64",
        "conv2": "3x3 conv, 64->64",
        "conv3": "1x1 conv, 64->256",
    }
    assert sum(t.startswith("+") for t in nodes.values()) == 5  # 2 + 1 + 1 + 1 blocks


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


@pytest.mark.parametrize("level", [*LEVELS, 1, 2, 3])
@pytest.mark.parametrize("build", [_evil_resnet, _evil_sequential])
def test_hostile_names_stay_text(build, level: str | int) -> None:
    result = trace(build(), (1, 3, 32, 32), name=EVIL)
    shown = diagram(result, depth=level) if isinstance(level, int) else diagram(result, level)
    svg = shown.svg()  # dot accepts the source
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


def test_cli_depth_and_collapse(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r50.dot"
    ok = runner.invoke(cli, ["diagram", "resnet50", "-o", str(out), "--depth", "2"])
    assert ok.exit_code == 0, ok.output
    assert "× 5 Bottleneck" in out.read_text()  # layer3.1 .. layer3.5
    ok = runner.invoke(
        cli, ["diagram", "resnet50", "-o", str(out), "--depth", "2", "--no-collapse"]
    )
    assert ok.exit_code == 0 and "× 5" not in out.read_text()
    both = runner.invoke(
        cli, ["diagram", "resnet50", "-o", str(out), "--level", "block", "--depth", "2"]
    )
    assert both.exit_code == 2 and "Traceback" not in both.output
    zero = runner.invoke(cli, ["diagram", "resnet50", "-o", str(out), "--depth", "0"])
    assert zero.exit_code == 2


def test_vit_shortcuts_are_the_skips_not_the_branches() -> None:
    """Pre-norm blocks: x + attn(ln(x)), then x + mlp(ln(x)); drawn once for all 12."""
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.vit_b_16()
    source = diagram(trace(model, name="vit_b_16"), depth=5).source
    assert "× 12 EncoderBlock" in source
    _, edges = _dot(source)
    dashed = sorted((a, b) for a, b, attrs in edges if "dashed" in attrs)
    # add_0 adds the position embedding; add_1 and add_2 are the first block's residuals
    assert dashed == [("add_1", "add_2"), ("encoder.dropout", "add_1")]
