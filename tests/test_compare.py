"""compare(): the five standard ResNets against torchvision's metadata and the paper's Table 1."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from torchvision import models as tvm

from archviz import ArchvizError, Comparison, compare
from archviz.analysis.paper import PAPER_TABLE1_GMACS
from archviz.cli.main import cli
from archviz.models import STANDARD
from archviz.render.plots import PLOTS, plot_comparison, save_plots


@pytest.fixture(scope="module")
def standard() -> Comparison:
    return compare(STANDARD)


def test_rows_match_torchvision_metadata(standard: Comparison) -> None:
    for row, result in zip(standard.rows, standard.traces, strict=True):
        meta = tvm.get_model_weights(row.name).DEFAULT.meta
        assert row.params == meta["num_params"] == result.totals.params
        # '_ops' is labelled GFLOPS but is GMACs, rounded to 3 decimals: 4.089 for resnet50
        assert abs(row.macs / 1e9 - meta["_ops"]) <= 0.0005
        assert row.macs == result.totals.macs and row.flops == 2 * row.macs


def test_paper_table1_within_five_percent(standard: Comparison) -> None:
    for row in standard.rows:
        assert row.macs_stride_in_1x1 is not None and row.paper_table1_gmacs is not None
        assert row.paper_table1_gmacs == PAPER_TABLE1_GMACS[row.depth]
        measured = row.macs_stride_in_1x1 / 1e9
        assert abs(measured - row.paper_table1_gmacs) / row.paper_table1_gmacs < 0.05


def test_columns_and_depths(standard: Comparison) -> None:
    assert [r.depth for r in standard.rows] == [18, 34, 50, 101, 152]
    frame = standard.to_dataframe()
    for column in ("name", "block", "layers", "depth", "params", "macs", "flops"):
        assert column in frame.columns
    assert {"layer1_output", "layer4_output", "activation_bytes", "layer3_macs"} <= set(
        frame.columns
    )
    # resnet50 at 224px: 224 / 32 = 7, 512 x 4 = 2048 channels out of layer4
    assert frame.set_index("name").loc["resnet50", "layer4_output"] == "2048x7x7"
    # stage MACs add up to the total (stem + 4 stages + head)
    for row in standard.rows:
        assert sum(m for _, m in row.stage_macs) == row.macs


def test_json_rows(standard: Comparison) -> None:
    rows = json.loads(standard.to_json())["rows"]
    assert rows[2]["name"] == "resnet50" and rows[2]["layers"] == [3, 4, 6, 3]
    assert {"name", "block", "layers", "depth", "params", "macs", "flops"} <= set(rows[0])


def test_comparison_reuses_traces_and_explanations(standard: Comparison) -> None:
    assert [t.model for t in standard.traces] == list(STANDARD)
    assert [e.depth for e in standard.explanations] == [r.depth for r in standard.rows]


def test_plots_are_svg_and_byte_stable(standard: Comparison, tmp_path) -> None:
    first, second = plot_comparison(standard), plot_comparison(standard)
    assert set(first) == set(PLOTS) and first == second
    assert all(svg.lstrip().startswith("<?xml") and "<svg" in svg for svg in first.values())
    paths = save_plots(standard, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{x}" for n in PLOTS for x in ("svg", "png")
    )
    assert all(p.stat().st_size > 1000 for p in paths)


def test_small_input_and_batch() -> None:
    c = compare(["resnet18"], input_size=(2, 3, 64, 64), paper=False)
    # layer4 of resnet18 at 64px: 64 / 32 = 2 -> 512x2x2
    assert c.rows[0].stage_shapes[-1] == ("layer4", (2, 512, 2, 2))
    assert c.rows[0].paper_table1_gmacs is None  # the paper's figure is for 224px only


def test_empty_list_is_an_error() -> None:
    with pytest.raises(ArchvizError, match="at least one model"):
        compare([])


def test_cli_compare_json() -> None:
    result = CliRunner().invoke(
        cli, ["compare", "resnet18", "resnet50", "--format", "json", "--no-paper"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["name"], r["depth"]) for r in rows] == [("resnet18", 18), ("resnet50", 50)]


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_cli_compare_formats(fmt: str) -> None:
    result = CliRunner().invoke(cli, ["compare", "resnet18", "--format", fmt, "--no-paper"])
    assert result.exit_code == 0, result.output
    assert "resnet18" in result.output and "BasicBlock" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "resnet18", "nosuchnet"],
        ["compare", "resnet18", "--input", "1x3x224"],
        ["compare", "resnet18", "--input", "1x3x224x224x2"],
    ],
)
def test_cli_compare_bad_input(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("archviz: error:")


def test_compare_takes_models_that_are_not_resnets() -> None:
    result = CliRunner().invoke(
        cli, ["compare", "resnet18", "torchvision:vgg16", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)["rows"]}
    assert rows["torchvision:vgg16"]["depth"] == 16 and rows["torchvision:vgg16"]["block"] == ""
    assert rows["resnet18"]["depth"] == 18
