"""Issue 24: bad input anywhere is exit 2 and one line, never a crash or a false success."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from archviz.cli.main import cli
from archviz.errors import ArchvizError
from archviz.options import parse_shape
from tests.hostile.test_careful_writes import MODELS, TINY, _one_line_error
from tests.hostile.test_cli_contract import bounded


@pytest.mark.parametrize("text", ["1x3x8x8x", "", " ", "x1x3", "1xx3", "1,3,", "1x3 x", "(1x3"])
def test_malformed_shapes_are_refused(text: str) -> None:
    with pytest.raises(ArchvizError, match="malformed input shape"):
        parse_shape(text)


@pytest.mark.parametrize(
    ("text", "shape"),
    [("1x3x8x8", (1, 3, 8, 8)), ("1,3,8,8", (1, 3, 8, 8)), ("(1, 3, 8, 8)", (1, 3, 8, 8)),
     (" 2X4 ", (2, 4)), ("[1, 4]", (1, 4))],
)  # fmt: skip
def test_wellformed_shapes_parse(text: str, shape: tuple[int, ...]) -> None:
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["1x3x8x8x", ""])
def test_cli_refuses_malformed_inputs(text: str) -> None:
    _one_line_error(CliRunner().invoke(cli, ["trace", TINY, "--input", text]), "input")


def test_bench_memory_guard() -> None:
    """1000000 x 3 x 224 x 224 float32 = 1.5e11 elements x 4 bytes = 602 GB: refused."""
    args = ["bench", TINY, "--device", "cpu", "--input", "1000000x3x224x224", "--quick"]
    outcome = bounded(args, 60)
    assert outcome is not None, "killed or crashed"
    assert outcome[0] == 2 and "cannot fit" in outcome[1], outcome


def test_bench_threads_beyond_the_cores() -> None:
    args = ["bench", TINY, "--device", "cpu", "--input", "1x3x8x8", "--quick"]
    outcome = bounded([*args, "--threads", "100000"], 60)
    assert outcome is not None, "killed or crashed (libgomp segfaults at 100000 threads)"
    assert outcome[0] == 2 and "cores" in outcome[1], outcome


@pytest.mark.parametrize(
    "args",
    [["trace", "--format", "json"], ["explore", "-o", "{tmp}/e.html"],
     ["diagram", "-o", "{tmp}/d.dot"], ["diagram", "-o", "{tmp}/d.svg"]],
)  # fmt: skip
def test_dots_in_module_names(tmp_path, args: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    cmd = [args[0], f"{MODELS}:dotted", "--input", "1x4", *args[1:]]
    result = CliRunner().invoke(cli, cmd)
    assert result.exit_code == 0, result.output
    if args[0] == "trace":
        assert '"a.b"' in result.output


@pytest.mark.parametrize(
    ("args", "during"),
    [(["trace", f"{MODELS}:exits_in_factory", "--input", "1x4"], "factory"),
     (["trace", f"{MODELS}:exits_in_forward", "--input", "1x4"], "forward"),
     (["trace", f"{MODELS}:exits_in_forward", "--input", "1x4", "--device", "cpu"], "forward"),
     (["bench", f"{MODELS}:exits_in_image_forward", "--device", "cpu", "--input", "1x3x8x8",
       "--quick"], "forward"),
     (["verify", f"{MODELS}:exits_in_image_forward", "--against",
       f"{MODELS}:exits_in_image_forward"], "forward")],
)  # fmt: skip
def test_sys_exit_in_user_code_is_exit_2(args: list[str], during: str) -> None:
    result = CliRunner().invoke(cli, args)
    _one_line_error(result, f"the model called sys.exit(0) during its {during}")
