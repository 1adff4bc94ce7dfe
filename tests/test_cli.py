"""The CLI as a newcomer meets it: start-up, options, exit codes and the messages that help."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import archviz
from archviz.benchmark.records import BenchResult, BenchRow, StageTiming
from archviz.cli.main import cli
from archviz.cli.progress import Progress
from archviz.errors import ArchvizError
from archviz.models.names import MODEL_NAMES
from archviz.options import COMMANDS, FORMATS, LEVELS, options_markdown

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---- start-up: nothing heavy imported for --help, --version, models ------------------------


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["models"], ["trace", "--help"]])
def test_light_commands_do_not_import_torch(args: list[str]) -> None:
    probe = (
        "import sys; from archviz.cli.main import cli\n"
        "try: cli.main(sys.argv[1:], prog_name='archviz')\n"
        "except SystemExit as e: code = e.code\n"
        "heavy = sorted({'torch', 'torchvision', 'pandas', 'matplotlib'} & set(sys.modules))\n"
        "print('HEAVY', heavy, code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert "HEAVY [] 0" in out, out


def test_public_api_still_reachable_lazily() -> None:
    assert callable(archviz.trace) and callable(archviz.compare) and callable(archviz.verify)

    assert callable(archviz.trace) and archviz.trace.__name__ == "trace"
    assert set(archviz.__all__) <= set(dir(archviz)) | set(archviz._lazy_names)


def test_model_names_match_the_registry() -> None:
    from archviz.models.registry import MODELS

    assert tuple(MODELS) == MODEL_NAMES
    assert run("models")[1].split() == list(MODEL_NAMES)


# ---- one vocabulary ----------------------------------------------------------------------


def test_every_command_has_a_summary_and_two_examples_that_parse() -> None:
    assert set(COMMANDS) == set(cli.commands)
    listing = run("--help")[1]
    for name, spec in COMMANDS.items():
        assert spec.summary in " ".join(listing.split()), name  # whole, never cut with "..."
        code, page, _ = run(name, "--help")
        assert code == 0 and "Examples:" in page
        for example in spec.examples:
            assert example in page
            args = example.split()[1:]
            cli.commands[name].make_context(name, args[1:])  # raises if an option is wrong


@pytest.mark.parametrize(
    ("command", "alias"),
    [("report", "--out"), ("bench", "--save"), ("verify", "--write-remapped")],
)
def test_old_output_spellings_work_but_are_hidden(command: str, alias: str) -> None:
    page = run(command, "--help")[1]
    assert "-o, --output" in page and not re.search(alias + r"\b", page)
    params = {o for p in cli.commands[command].params for o in getattr(p, "opts", [])}
    assert alias in params


def test_format_names_are_shared_and_text_is_an_alias_of_table(tmp_path: Path) -> None:
    for command in ("trace", "explain", "compare", "verify", "bench"):
        page = " ".join(run(command, "--help")[1].split())
        assert "[" + "|".join(FORMATS[command]) + "]" in page, command
        assert "text" not in FORMATS[command]
    code, out, _ = run("explain", "resnet18", "--format", "text")
    assert code == 0 and "1 + 2 x (2 + 2 + 2 + 2) + 1 = 18" in out


def test_diagram_levels_are_the_renderers_and_described() -> None:
    from archviz.render.diagram import LEVELS as RENDER_LEVELS

    assert tuple(LEVELS) == tuple(RENDER_LEVELS)
    page = " ".join(run("diagram", "--help")[1].split())
    assert all(f"{name}: {meaning}" in page for name, meaning in LEVELS.items())


def test_readme_option_table_is_generated_from_options() -> None:
    assert options_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_trace_output_format_follows_the_suffix_and_creates_folders(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "t.md"
    code, stdout, stderr = run("trace", "resnet18", "--depth", "1", "-o", str(out))
    assert code == 0 and stdout == "" and f"wrote {out}" in stderr
    assert (
        out.read_text().startswith("**resnet18**") and "| layer1 (Sequential) |" in out.read_text()
    )


# ---- the exit-code contract -------------------------------------------------------------


def test_internal_error_is_one_line_exit_3_with_a_saved_traceback(monkeypatch) -> None:
    def broken(include_torchvision: bool = False) -> list[str]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("archviz.models.names.list_models", broken)
    code, _, stderr = run("models")
    line = one_error_line(stderr)
    assert code == 3
    match = re.fullmatch(
        r"archviz: internal error: ZeroDivisionError: division by zero "
        r"\(traceback saved to (.+)\)",
        line,
    )
    assert match, line
    saved = Path(match.group(1)).read_text()
    assert "Traceback" in saved and "in broken" in saved
    Path(match.group(1)).unlink()


def test_interrupt_exits_130(monkeypatch) -> None:
    def interrupted(include_torchvision: bool = False) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr("archviz.models.names.list_models", interrupted)
    code, _, stderr = run("models")
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr


def test_usage_errors_are_one_line_exit_2() -> None:
    code, _, stderr = run("trace", "resnet18", "--depth", "-1")
    assert code == 2
    assert "--depth" in one_error_line(stderr) and "archviz trace --help" in stderr


# ---- messages that help: one per defect ----------------------------------------------


def test_missing_batch_dimension_suggests_one() -> None:
    code, _, stderr = run("trace", "resnet18", "--input", "3x64x64")
    line = one_error_line(stderr)
    assert code == 2 and "bn1" in line
    assert "batch dimension missing? Try input size (1, 3, 64, 64) (--input 1x3x64x64)" in line


def test_tensors_passed_as_a_size_point_to_inputs() -> None:
    x = torch.randn(1, 3, 16, 16)
    for wrong in (x, (x, x)):
        with pytest.raises(ArchvizError) as caught:
            archviz.trace(archviz.get_model("resnet18"), wrong)  # type: ignore[arg-type]
        message = str(caught.value)
        assert "inputs=" in message and "tensor(" not in message and "\n" not in message


def test_depth_0_shows_the_model_row_and_negative_depth_is_refused() -> None:
    code, out, _ = run("trace", "resnet18", "--depth", "0")
    rows = [line for line in out.splitlines()[3:] if not line.startswith("=")][:1]
    assert code == 0 and rows[0].split() == [
        "resnet18",
        "(ResNet)",
        "1x1000",
        "11,689,512",
        "1.81",
        "G",
        "9.86",
        "M",
    ]
    assert "layer1" not in out


def test_dot_without_graphviz_says_how_to_render_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    out = tmp_path / "x.dot"
    code, _, stderr = run("diagram", "resnet18", "-o", str(out))
    assert code == 0 and out.read_text().startswith("digraph")
    assert "install Graphviz to render images" not in stderr  # the old, garbled wording
    assert f"Graphviz's dot is not installed; {out} is DOT source" in stderr
    assert f"dot -Tsvg {out} -o {out.with_suffix('.svg')}" in stderr


def test_compatible_after_remapping_says_that_o_fixes_it(tmp_path: Path) -> None:
    path = tmp_path / "dp.pth"
    model = archviz.get_model("resnet18")
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    code, _, stderr = run("verify", str(path), "--against", "resnet18", "--no-forward")
    assert code == 1
    assert stderr.strip().splitlines()[-1] == (
        "archviz: compatible after remapping: add -o FIXED.safetensors (or .pt) to write "
        "a state_dict that loads strictly into the reference"
    )
    fixed = tmp_path / "out" / "fixed.pt"
    code, _, _ = run("verify", str(path), "--against", "resnet18", "--no-forward", "-o", str(fixed))
    assert code == 0 and fixed.is_file()


@pytest.mark.parametrize("shape", ["1x3x99999999999999999999x2", "1x3x" + "9" * 4000])
def test_huge_integers_in_input_are_one_line(shape: str) -> None:
    code, _, stderr = run("trace", "resnet18", "--input", shape)
    line = one_error_line(stderr)
    assert code == 2 and "too large" in line and len(line) < 300


@pytest.mark.parametrize("seconds", ["inf", "nan", "-1", "1e9"])
def test_bench_refuses_absurd_min_run_time(seconds: str) -> None:
    code, _, stderr = run("bench", "resnet18", "--device", "cpu", "--min-run-time", seconds)
    assert code == 2 and "min-run-time" in one_error_line(stderr)


def test_bench_old_batch_and_image_size_spellings_still_work() -> None:
    args = ["--batch", "1", "--image-size", "32", "--quick", "--threads", "1", "--format", "json"]
    code, out, _ = run("bench", "resnet18", "--device", "cpu", *args)
    rows = BenchResult.from_json(out).rows
    assert code == 0 and [(r.batch, r.ok) for r in rows] == [(1, True)]
    assert BenchResult.from_json(out).image_size == (32, 32)


def test_bench_input_shapes_must_differ_only_in_batch() -> None:
    code, _, stderr = run(
        "bench", "resnet18", "--device", "cpu", "--input", "1x3x32x32", "--input", "2x3x64x64"
    )
    assert code == 2 and "differ only in the batch size" in one_error_line(stderr)


# ---- progress and spread warnings ----------------------------------------------------


def test_progress_without_a_terminal_prints_a_line_every_interval() -> None:
    stream = io.StringIO()
    with Progress("bench", stream=stream, interval=0.05, tty=False) as progress:
        progress(1, 4, "resnet50 cpu float32 batch 8")
        for _ in range(100):
            if stream.getvalue().count("\n") >= 2:
                break
            time.sleep(0.02)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2
    assert re.fullmatch(
        r"archviz bench: resnet50 cpu float32 batch 8; 1/4 done \(\d+ s\)", lines[0]
    )


def test_progress_on_a_terminal_draws_a_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with Progress("bench", stream=stream) as progress:
        progress(0, 2, "resnet18 cpu")
        progress(2, 2, "")
    assert "bench" in stream.getvalue() and "100%" in stream.getvalue()


def _row(median: float, iqr: float, stages: tuple[float, ...] = ()) -> BenchRow:
    parts = tuple(StageTiming(f"s{i}", (1,), s, 0.0, 5) for i, s in enumerate(stages))
    return BenchRow(
        "resnet50", "cpu", 1, "bfloat16", False, 2, "ok", median_s=median, iqr_s=iqr, stages=parts
    )


def test_spread_warnings_flag_noisy_rows() -> None:
    # The figures: median 1551 ms with IQR 1920 ms; stages summing to 280 ms.
    noisy = _row(1.551, 1.920, stages=(0.1, 0.1, 0.08))
    assert noisy.warnings == ("noisy: IQR 124% of median", "stage sum -82% vs whole model")
    assert _row(1.0, 0.19, stages=(0.5, 0.55)).warnings == ()  # 19% IQR, sum +5%: fine
    assert _row(1.0, 0.21).warnings == ("noisy: IQR 21% of median",)


def test_bench_table_shows_the_warning_and_what_to_do() -> None:
    from archviz.benchmark.environment import machine_info
    from archviz.render.bench_table import format_bench

    result = BenchResult((_row(1.551, 1.920, (0.1, 0.1, 0.08)),), machine_info(), (224, 224), 0.5)
    table = format_bench(result, "table")
    assert "(!) noisy: IQR 124% of median" in table
    assert "--threads" in table and "MALLOC_MMAP_THRESHOLD_" in table and "quiet machine" in table


# ---- small defects -----------------------------------------------------------------


def test_footer_units_are_spaced_for_small_counts() -> None:
    result = archviz.trace(nn.Sequential(nn.Linear(8, 8, bias=False)), (1, 8))
    # Linear(8, 8) on 1x8: 8 * 8 = 64 MACs, 128 FLOPs
    assert "Total MACs: 64 (64 MACs); FLOPs: 128 FLOPs" in result.summary()


def test_repr_is_one_short_line() -> None:
    result = archviz.trace(archviz.get_model("resnet18"), (1, 3, 64, 64))
    text = repr(result)
    assert "\n" not in text and len(text) < 200
    assert "'resnet18'" not in text and "ResNet" in text and "11,689,512 params" in text


def test_notebook_html_keeps_the_indentation() -> None:
    result = archviz.trace(archviz.get_model("resnet18"), (1, 3, 64, 64))
    html = result._repr_html_()
    assert '<td style="white-space: pre; text-align: left">  0 (BasicBlock)</td>' in html


def test_no_committed_file_is_gitignored() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-ci", "--exclude-standard"], capture_output=True, text=True, cwd=ROOT
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    assert listed.stdout == ""


def test_json_input_and_output_shapes_are_alike() -> None:
    code, out, _ = run("trace", "resnet18", "--input", "1x3x64x64", "--format", "json")
    data = json.loads(out)
    assert (
        code == 0 and data["input_shapes"] == [1, 3, 64, 64] and data["output_shapes"] == [1, 1000]
    )
    conv1 = next(r for r in data["records"] if r["name"] == "conv1")
    assert conv1["input_shapes"] == [1, 3, 64, 64] and conv1["output_shapes"] == [1, 64, 32, 32]


def test_progress_is_silent_for_work_shorter_than_the_interval() -> None:
    stream = io.StringIO()
    with Progress("compare", stream=stream, interval=60, tty=False) as progress:
        progress(2, 2, "")
    assert stream.getvalue() == ""


def test_bare_archviz_prints_the_help() -> None:
    code, out, stderr = run()
    assert code == 0 and out.startswith("Usage: archviz") and "Commands:" in out and not stderr
