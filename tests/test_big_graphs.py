"""Big graphs stay readable and fast: glue on edges, a node budget, `dot` that never
outlives archviz, --device everywhere, and a detector's depth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz import ArchvizError, trace
from archviz.analysis.explain import explain_trace
from archviz.analysis.fold import GLUE, OP_ROLES, fold_ops, op_role
from archviz.analysis.graph import longest_weighted_path
from archviz.cli.main import cli
from archviz.options import TRACING_COMMANDS
from archviz.render.diagram import Diagram, diagram
from archviz.render.diagram.run_dot import run_dot

ROOT = Path(__file__).resolve().parent.parent


class Heads(nn.Module):
    """Multi-head glue around two linears: view, transpose, reshape, then a computed mix."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(8, 8)
        self.out = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.q(x).view(1, 4, 2, 4).transpose(1, 2)  # 1x4x8 -> 1x2x4x4: pure glue
        h = (h * 2 + 1).neg()  # three computing ops in a row: one "3 ops" node
        return self.out(h.transpose(1, 2).reshape(1, 4, 8))


@pytest.fixture(scope="module")
def heads() -> object:
    return trace(Heads(), (1, 4, 8), name="heads")


def test_glue_is_one_table_and_computing_ops_stay_nodes() -> None:
    assert {op_role(op) for op in ("view", "permute", "getitem", "to", "chunk")} == {GLUE}
    assert GLUE not in {op_role(op) for op in ("add", "cat", "mul", "matmul", "softmax")}
    assert op_role("scaled_dot_product_attention") != GLUE
    assert set(OP_ROLES.values()) == {"glue", "merge", "key"}  # anything else computes


def test_glue_folds_into_the_edge_with_its_shape_change(heads) -> None:
    folding = fold_ops(heads)
    kinds = [n.type for n in folding.trace.nodes if n.kind == "op"]
    assert kinds == ["3 ops"]  # mul, add, neg: one run; view/transpose/reshape: on edges
    assert folding.glue == {n.id for n in heads.nodes if n.type in ("view", "transpose", "reshape")}
    into_run = next(e for e in folding.trace.edges if e.src == "q")
    assert into_run.via == ("view", "transpose")
    assert into_run.before == (1, 4, 8) and into_run.shape == (1, 2, 4, 4)
    source = diagram(heads, depth=2).source
    assert "view · transpose: 4x8 -> 2x4x4" in source  # batch left out, as on every edge
    assert "transpose_0 [" not in source and "3 ops" in source


def test_ops_all_draws_every_op(heads) -> None:
    source = diagram(heads, depth=2, ops="all").source
    for op in ("view_0", "transpose_0", "reshape_0", "mul_0", "add_0", "neg_0"):
        assert f"\t{op} [" in source or f"\t\t{op} [" in source
    with pytest.raises(ArchvizError, match="unknown ops mode"):
        diagram(heads, ops="some")


class Wide(nn.Module):
    """20 stages of 20 distinct linears: 400 nodes at depth 2, 20 at depth 1."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.Sequential(
            *(nn.Sequential(*(nn.Linear(4 + j, 4 + j + 1) for j in range(20))) for _ in range(20))
        )
        self.back = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = self.back(stage(x))
        return x


def test_a_big_diagram_folds_within_the_node_budget() -> None:
    with torch.device("meta"):
        result = trace(Wide(), (1, 4), name="wide")
    drawn = diagram(result, depth=3, collapse=False)
    nodes = [line for line in drawn.source.splitlines() if "[label=" in line]
    assert len(nodes) <= 300 and len(drawn.notes) == 1
    assert "over the budget of 300" in drawn.notes[0] and "--max-nodes" in drawn.notes[0]
    everything = diagram(result, depth=3, collapse=False, max_nodes=1000)
    assert everything.notes == () and everything.source.count("[label=") > 400


def test_cli_says_what_it_folded(tmp_path: Path) -> None:
    out = tmp_path / "r.dot"
    args = ["diagram", "resnet18", "-o", str(out), "--depth", "3", "--max-nodes", "20"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "over the budget of 20" in result.stderr and "--max-nodes" in result.stderr


@pytest.fixture
def slow_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `dot` on the PATH that writes its pid and sleeps: Graphviz stuck on a big graph."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "dot.pid"
    fake = bin_dir / "dot"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return pid_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone, only not yet reaped
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_dot_past_its_time_limit_is_stopped(slow_dot: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ArchvizError, match="did not finish within 1 s"):
        run_dot("digraph { a -> b }", "svg", timeout=1)
    assert time.monotonic() - start < 10
    assert not _alive(int(slow_dot.read_text()))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_dot_ends_with_archviz(slow_dot: Path, sig: signal.Signals) -> None:
    """Killed while `dot` runs (SIGTERM, or Ctrl-C's SIGINT), archviz takes `dot` along."""
    script = textwrap.dedent(
        """
        from archviz.render.diagram import Diagram
        Diagram("digraph { a -> b }").render("svg")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        for _ in range(300):
            if slow_dot.exists() and slow_dot.read_text().strip():
                break
            time.sleep(0.05)
        pid = int(slow_dot.read_text())
        proc.send_signal(sig)
        proc.wait(timeout=20)
        assert proc.returncode != 0
        for _ in range(40):
            if not _alive(pid):
                break
            time.sleep(0.05)
        assert not _alive(pid), "dot outlived archviz"
    finally:
        proc.kill()


def test_dot_failure_is_one_line() -> None:
    with pytest.raises(ArchvizError, match="dot failed"):
        Diagram("digraph { a -> }").render("svg")


@pytest.mark.parametrize("command", TRACING_COMMANDS)
def test_every_tracing_command_takes_device(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "--device" in result.output


def test_device_reaches_the_trace(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["explain", "resnet18", "--device", "cpu", "--input", "1x3x32x32"])
    assert ok.exit_code == 0, ok.output
    out = tmp_path / "r.dot"
    args = ["diagram", "resnet18", "-o", str(out), "--device", "cpu", "--input", "1x3x32x32"]
    assert runner.invoke(cli, args).exit_code == 0
    bad = runner.invoke(cli, ["explain", "resnet18", "--device", "tpu"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


class TinyBackbone(nn.Sequential):
    """Two convs with the `out_channels` a torchvision detector asks its backbone for."""

    out_channels = 8

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1))


@pytest.fixture(scope="module")
def detector() -> object:
    """A Faster R-CNN small enough for the CPU in a second: the graph of any torchvision
    detector (a transform that hands on an ImageList, an RPN, RoI heads)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    torch.manual_seed(0)
    model = FasterRCNN(
        TinyBackbone(), num_classes=3, min_size=64, max_size=64,
        rpn_anchor_generator=AnchorGenerator(((16,),), ((1.0,),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2),
        rpn_pre_nms_top_n_test=20, rpn_post_nms_top_n_test=10, box_detections_per_img=5,
    )  # fmt: skip
    return trace(model, (1, 3, 64, 64), device="cpu", name="tiny-detector")


def test_a_detector_has_a_real_depth_and_names_its_parts(detector) -> None:
    path = longest_weighted_path(detector)
    assert path[0] == "input"  # the transform's ImageList carries the batch on
    e = explain_trace(detector)
    # backbone 2 convs; RPN head 3x3 conv + 1x1 objectness; box head fc6, fc7 + cls score
    assert e.depth >= 5 and e.formula != "0"
    assert any(n.startswith("backbone: backbone (TinyBackbone") for n in e.notes)
    assert "rpn (RegionProposalNetwork" in e.notes[0] and "roi_heads (RoIHeads" in e.notes[0]
