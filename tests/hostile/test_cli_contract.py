"""The rest of issue 12's defects, as the user meets them on the command line: exit 2 and
one line for bad input, bounded time, never a traceback. Several are fixed on other
branches (cli, verify, exactness); those are xfail(strict=False) here until merged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archviz.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def _one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


# The child: archviz and the caller's modules imported first (start-up is not the work being
# bounded), then an address-space cap, then one CLI run timed on its own.
_CHILD = """
import importlib, json, resource, sys, time
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
from click.testing import CliRunner
from archviz.cli.main import cli
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
start = time.monotonic()
result = CliRunner().invoke(cli, json.loads(sys.argv[1]))
sys.stdout.write(f"{result.exit_code}\\n{time.monotonic() - start}\\n{result.output}"[:60000])
"""
_PRELOAD = (
    "torch",
    "archviz.tracing.trace",
    "archviz.benchmark.timing",
    "archviz.checkpoints.verify",
)
_START_UP = 90  # seconds a fresh interpreter may take to import torch on a busy machine


def bounded(
    args: list[str], seconds: float, preload: tuple[str, ...] = ()
) -> tuple[int, str] | None:
    """Run the CLI in a fresh interpreter (never a fork of this one: a fork inherits thread
    pools that earlier tests started, and can hang in them); its exit code and output, or
    None if the run took more than `seconds` (start-up not counted) or had to be killed."""
    try:
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(args), json.dumps([*_PRELOAD, *preload])],
            capture_output=True,
            text=True,
            timeout=seconds + _START_UP,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return None
    if run.returncode != 0 or not run.stdout:
        return None
    code, elapsed, output = run.stdout.split("\n", 2)
    return (int(code), output) if float(elapsed) <= seconds else None


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "hostile_factories.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def raises():
                raise RuntimeError("the factory failed")

            def not_a_module():
                return 42

            def scripted():
                return torch.jit.script(nn.Linear(4, 2))

            def data_parallel():
                return nn.DataParallel(nn.Linear(4, 2))

            def on_meta():
                return nn.Linear(4, 2, device="meta")

            class Item(nn.Linear):
                def forward(self, x):
                    return super().forward(x) * x.sum().item()

            def item():
                return Item(4, 2)
            """
        )
    )
    (tmp_path / "broken_factory.py").write_text("def make(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "hostile_factories"


@pytest.mark.parametrize("name", ["raises", "not_a_module"])
def test_bad_factories_are_one_line(factories: str, name: str) -> None:
    _one_line_error(CliRunner().invoke(cli, ["trace", f"{factories}:{name}", "--input", "1x4"]))


@pytest.mark.parametrize("spec", ["broken_factory:make", ":f"])
def test_bad_specs_are_one_line(factories: str, spec: str) -> None:
    _one_line_error(CliRunner().invoke(cli, ["trace", spec, "--input", "1x4"]))


@pytest.mark.parametrize(
    ("name", "device"), [("scripted", "meta"), ("data_parallel", "meta"), ("on_meta", "cpu")]
)
def test_models_meta_cannot_run_are_one_line(factories: str, name: str, device: str) -> None:
    args = ["trace", f"{factories}:{name}", "--input", "1x4", "--device", device]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 2) and "Traceback" not in result.output, result.output


def test_item_on_meta_suggests_cpu(factories: str) -> None:
    result = CliRunner().invoke(cli, ["trace", f"{factories}:item", "--input", "1x4"])
    _one_line_error(result)
    assert "--device cpu" in result.output


@pytest.mark.parametrize("device", ["xla", "mps"])
def test_unavailable_devices_are_one_line(device: str) -> None:
    _one_line_error(CliRunner().invoke(cli, ["trace", "resnet18", "--device", device]))


@pytest.mark.parametrize("size", ["1,3,99999999999999999999999,2", "1x3x4611686018427387904x2"])
def test_huge_ints_in_input_are_one_line(size: str) -> None:
    _one_line_error(CliRunner().invoke(cli, ["trace", "resnet18", "--input", size]))


def test_min_run_time_inf_is_refused_quickly() -> None:
    args = ["bench", "resnet18", "--device", "cpu", "--batch", "1", "--min-run-time", "inf"]
    outcome = bounded(args, 8)  # refused before any timing: start-up only
    assert outcome is not None, "still running after 8 s"
    assert outcome[0] == 2, outcome


def test_100kb_key_verifies_in_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "long_key.pt"
    torch.save({"a." * 50_000 + "weight": torch.zeros(1)}, path)
    args = ["verify", str(path), "--against", "resnet18", "--no-forward"]
    outcome = bounded(args, 4.0)  # < 1 s of work; the rest is the child's start-up slack
    assert outcome is not None and outcome[0] in (0, 1), outcome


def test_unwritable_report_folder_is_one_line() -> None:
    """/proc refuses new folders even for root, like a read-only --out."""
    result = CliRunner().invoke(
        cli, ["report", "resnet18", "--input", "1x3x32x32", "--out", "/proc/archviz-report"]
    )
    _one_line_error(result)
    assert "cannot write the report" in result.output
