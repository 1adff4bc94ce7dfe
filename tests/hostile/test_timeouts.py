"""Issue 24: `--timeout SECONDS` stops user code that blocks, naming what was running."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from archviz.cli.main import cli
from tests.hostile.test_careful_writes import MODELS
from tests.hostile.test_cli_contract import bounded

SLEEPS = f"{MODELS}:sleeps_in_forward"
# Imported before the run: on a busy machine, start-up must not eat the --timeout.
PRELOAD = (MODELS,)


@pytest.mark.parametrize(
    ("args", "where"),
    [(["trace", SLEEPS, "--input", "1x3x8x8"], "slow"),
     (["trace", SLEEPS, "--input", "1x3x8x8", "--device", "cpu"], "slow"),
     (["trace", f"{MODELS}:blocks_in_factory", "--input", "1x4"], "factory"),
     (["verify", SLEEPS, "--against", SLEEPS], "slow")],
)  # fmt: skip
def test_timeout_stops_blocking_user_code(args: list[str], where: str) -> None:
    outcome = bounded([*args, "--timeout", "5"], 60, PRELOAD)
    assert outcome is not None, "still running after 60 s"
    code, output = outcome
    assert code == 2 and "timed out" in output and where in output, outcome
    assert len([ln for ln in output.splitlines() if ln.startswith("archviz")]) == 1, output


def test_bench_timeout_names_the_model() -> None:
    args = ["bench", f"{MODELS}:tiny_cnn", "--device", "cpu", "--input", "1x3x8x8"]
    outcome = bounded([*args, "--min-run-time", "60", "--timeout", "8"], 60, PRELOAD)
    assert outcome is not None and outcome[0] == 2 and "tiny_cnn" in outcome[1], outcome


@pytest.mark.parametrize("command", ["trace", "bench", "verify"])
def test_timeout_has_no_default(command: str) -> None:
    text = CliRunner().invoke(cli, [command, "--help"]).output
    assert "--timeout" in text and "default" not in text.split("--timeout", 1)[1].split("--")[0]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "x"])
def test_bad_timeouts_are_refused(value: str) -> None:
    result = CliRunner().invoke(cli, ["trace", "resnet18", "--timeout", value])
    assert result.exit_code == 2, result.output
