"""explain(): depth derived from the traced model, checked against the paper's rule by hand."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz import ArchvizError, explain
from archviz.analysis.paper import PAPER_TABLE1_GMACS
from archviz.cli.main import cli
from archviz.models import BasicBlock, Bottleneck, ResNet, resnet


def _meta(factory, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return factory(*args, **kwargs)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152, 200])
def test_standard_depths(depth: int) -> None:
    e = explain(_meta(resnet, depth), paper=False)
    assert e.depth == depth
    assert sum(r.weighted_layers for r in e.stages) == depth  # the table adds up


@pytest.mark.parametrize("name", ["resnext50_32x4d", "wide_resnet50_2"])
def test_grouped_and_wide_are_still_50(name: str) -> None:
    e = explain(name, paper=False)
    assert e.depth == 50 and e.formula == "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50"


@pytest.mark.parametrize(
    ("block", "layers", "expected"),
    [
        (BasicBlock, [1, 1, 1, 1], 1 + 2 * 4 + 1),  # 10
        (BasicBlock, [3, 1, 5, 2], 1 + 2 * 11 + 1),  # 24
        (BasicBlock, [1, 2, 3, 4], 1 + 2 * 10 + 1),  # 22
        (Bottleneck, [2, 3, 4, 2], 1 + 3 * 11 + 1),  # 35
        (Bottleneck, [1, 1, 1, 1], 1 + 3 * 4 + 1),  # 14
        (Bottleneck, [3, 8, 1, 7], 1 + 3 * 19 + 1),  # 59
    ],
)
def test_non_standard_layers(block, layers: list[int], expected: int) -> None:
    e = explain(_meta(ResNet, block, layers), input_size=(1, 3, 64, 64), paper=False)
    assert e.depth == expected
    cpb = 2 if block is BasicBlock else 3
    assert e.formula == f"1 + {cpb} x ({' + '.join(map(str, layers))}) + 1 = {expected}"


def test_resnet50_explanation_in_full() -> None:
    e = explain("resnet50")
    assert (e.block, e.layers, e.convs_per_block) == ("Bottleneck", (3, 4, 6, 3), 3)
    assert "16 Bottleneck blocks" in e.blocks_answer and "(48)" in e.blocks_answer  # 16 x 3
    # One projection shortcut per stage: layer1 changes channels 64 -> 256, the rest stride.
    assert e.shortcuts == tuple(f"layer{i}.0.downsample.0" for i in range(1, 5))
    kinds = {kind: calls for kind, calls, _ in e.not_counted}
    # 1 stem BN + 16 blocks x 3 + 4 shortcut BNs = 53
    assert kinds["BatchNorm2d"] == 53 and kinds["Conv2d (beside the main path)"] == 4
    # stages sum to the totals (stem + 4 stages + head)
    assert sum(r.params for r in e.stages) == e.params
    assert sum(r.macs for r in e.stages) == e.macs
    assert [r.output_shape for r in e.stages][1:5] == [
        (1, 256, 56, 56),
        (1, 512, 28, 28),
        (1, 1024, 14, 14),
        (1, 2048, 7, 7),
    ]
    text = e.text()
    assert "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50" in text and "BatchNorm2d" in text


def test_paper_view_moves_only_the_first_1x1_conv() -> None:
    p = explain("resnet50").paper
    assert p is not None and p.table1_gmacs == PAPER_TABLE1_GMACS[50]
    assert [name for name, _, _ in p.changed] == [f"layer{i}.0.conv1" for i in (2, 3, 4)]
    # layer2.0.conv1 is 1x1, 256 -> 128: at 56x56: 56*56*128*256 = 102_760_448;
    # strided to 28x28: 28*28*128*256 = 25_690_112
    assert p.changed[0][1:] == (102_760_448, 25_690_112)
    assert p.stride_in_3x3_macs - p.stride_in_1x1_macs == sum(a - b for _, a, b in p.changed)


def test_basic_block_stride_placement_makes_no_difference() -> None:
    p = explain("resnet18").paper
    assert p is not None and p.changed == () and p.stride_in_1x1_macs == p.stride_in_3x3_macs


class _Plain(nn.Module):
    """A user's own ResNet-like model: archviz blocks, its own class, no stage_names."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        down = nn.Sequential(nn.Conv2d(64, 128, 1, stride=2, bias=False), nn.BatchNorm2d(128))
        self.layer1 = nn.Sequential(BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2, down), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 128))
        self.layer4 = nn.Sequential(BasicBlock(128, 128))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_users_own_resnet_like_model() -> None:
    e = explain(_Plain(), input_size=(2, 3, 32, 32))
    assert e.depth == 1 + 2 * (1 + 2 + 1 + 1) + 1  # 12
    assert e.paper is None  # not archviz's ResNet: no stride switch to trace


def test_a_model_that_is_not_resnet_like_gets_its_depth_without_resnet_sections() -> None:
    e = explain("torchvision:vgg16", paper=False)
    assert e.depth == 16 and e.formula == "13 + 3 = 16"  # 13 conv + 3 fc (depth tests cite)
    assert e.block is None and e.stages == () and e.paper is None


def test_html_escapes_model_names() -> None:
    e = explain(_meta(resnet, 18), paper=False, name="<b>mine</b>")
    html = e._repr_html_()
    assert "<b>mine</b>" not in html and "&lt;b&gt;mine&lt;/b&gt;" in html


def test_input_must_be_positive_dims() -> None:
    with pytest.raises(ArchvizError, match="positive dims"):
        explain("resnet18", input_size=(1, 0, 224, 224))


def test_cli_explain() -> None:
    result = CliRunner().invoke(cli, ["explain", "resnet50"])
    assert result.exit_code == 0, result.output
    assert "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50" in result.output


@pytest.mark.parametrize(
    "args",
    [["explain", "nosuchnet"], ["explain", "resnet18", "--input", "3x224x224"]],
)
def test_cli_explain_bad_input(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "archviz: error:" in result.output


def test_paper_view_keeps_the_models_dilation() -> None:
    # layer3 and layer4 trade their stride for dilation, so only layer2's first block has
    # a stride to move; a paper view rebuilt without the dilation would differ in all three.
    with torch.device("meta"):
        dilated = resnet(50, replace_stride_with_dilation=[False, True, True])
    paper = explain(dilated, (1, 3, 64, 64)).paper
    assert paper is not None
    assert [name for name, _, _ in paper.changed] == ["layer2.0.conv1"]


def test_basic_block_paper_view_is_the_same_network() -> None:
    paper = explain("resnet18", (1, 3, 64, 64)).paper
    assert paper is not None and paper.changed == ()
    assert paper.stride_in_1x1_macs == paper.stride_in_3x3_macs
