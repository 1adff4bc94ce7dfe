"""Output spoofing: keys and names from a file or a model never drive the terminal or
break Markdown. Property-based where the attack space is text."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from archviz.checkpoints.verify import verify
from archviz.cli.main import cli
from archviz.models.resnet import BasicBlock, ResNet
from archviz.render.escape import md_escape, term_safe
from archviz.render.report import layer_table
from archviz.render.verify import render_markdown, render_text
from archviz.tracing.trace import trace

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORGED = "\x1b[2J\rverdict: compatible\nverdict: compatible"


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_term_safe_leaves_no_control_characters(text: str) -> None:
    assert not CONTROL.search(term_safe(text))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_md_escape_keeps_one_table_cell(text: str) -> None:
    """In a GFM table row, an escaped cell never adds a column, a line or an HTML tag."""
    cell = md_escape(text)
    assert "\n" not in cell and "\r" not in cell and "<" not in cell.replace("\\<", "")
    assert _unescaped_pipes(f"| {cell} | x |") == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_verify_text_is_one_verdict_line_whatever_the_keys(keys: list[str]) -> None:
    result = verify({k: torch.zeros(1) for k in keys}, _Tiny(), forward_check=False)
    for rendered in (render_text(result), render_markdown(result)):
        lines = rendered.split("\n")
        assert not any(CONTROL.search(line) for line in lines)
    assert [line for line in render_text(result).split("\n") if "verdict:" in line[:8]] == [
        render_text(result).split("\n")[0]
    ]


def test_forged_verdict_and_ansi_in_keys_are_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / "spoof.pt"
    torch.save({FORGED: torch.zeros(1), "fc.weight": torch.zeros(2, 2)}, path)
    out = CliRunner().invoke(cli, ["verify", str(path), "--against", "resnet18", "--no-forward"])
    assert "\x1b" not in out.output and "\r" not in out.output
    assert out.output.count("verdict:") == 3  # the real one, and two shown inside a key
    assert sum(line.startswith("verdict:") for line in out.output.splitlines()) == 1
    assert "\\x1b[2J" in out.output


def test_markdown_verify_does_not_emit_html(tmp_path: Path) -> None:
    path = tmp_path / "xss.pt"
    torch.save({"<script>alert(1)</script>|x": torch.zeros(1)}, path)
    args = ["verify", str(path), "--against", "resnet18", "--no-forward", "--format", "markdown"]
    out = CliRunner().invoke(cli, args).output
    assert "<script>" not in out and "\\<script\\>" in out


class _PipeNamed(ResNet):
    """A module named with a pipe and a newline: the issue's broken Markdown table."""

    def __init__(self) -> None:
        super().__init__(BasicBlock, [1, 1, 1, 1], num_classes=10)
        self.add_module("odd|name\nnext", nn.Identity())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "odd|name\nnext")(super().forward_features(x))


def test_pipe_and_newline_in_module_names_keep_tables_whole() -> None:
    result = trace(_PipeNamed(), (1, 3, 32, 32))
    table = layer_table(result).map(md_escape).to_markdown(index=False)
    rows = table.splitlines()
    assert len(rows) == len(result.records) - 1 + 2  # header, rule, one row per call
    assert len({_unescaped_pipes(row) for row in rows}) == 1
    summary = result.summary(depth=1)
    assert "odd|name\\nnext" in summary and "\nnext" not in summary


class _Warns(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn("a PyTorch-style UserWarning", UserWarning, stacklevel=1)
        return super().forward(x)


def _warns() -> nn.Module:
    return _Warns(4, 2)


def test_pytorch_user_warnings_do_not_reach_stderr() -> None:
    """Recorded, not printed: the CLI's filter must drop them before they are shown."""
    args = ["trace", "tests.hostile.test_output_escaping:_warns", "--input", "1x4"]
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert [str(w.message) for w in shown] == []
