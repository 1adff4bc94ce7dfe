"""The `archviz` command: parse options, call one public function, write the result.

Start-up is fast because nothing heavy is imported here: each command imports torch,
pandas or the renderers when it runs. The option vocabulary lives in `archviz.options`;
the exit-code contract lives in `_exit_code`, the one place that turns exceptions into
exit codes (see `archviz.errors`).
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from archviz.cli.params import format_option, input_option, output_option
from archviz.errors import EXIT_BAD_INPUT, EXIT_BUG, EXIT_OK, EXIT_VERDICT, ArchvizError, Verdict
from archviz.options import (
    COMMANDS,
    FORMATS,
    LEVELS,
    TRACE_DEVICES,
    bench_inputs,
    format_for,
    format_list,
    parse_shape,
)

EXIT_INTERRUPTED = 130  # the shell's 128 + SIGINT


class _Never(Exception):
    """Stands in for NoArgsIsHelpError on clicks before 8.2, which print the help themselves."""


_NO_ARGS: type[Exception] = getattr(click.exceptions, "NoArgsIsHelpError", _Never)


class _Group(click.Group):
    """Every run, the console script's and CliRunner's alike, goes through `_exit_code`."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        sys.exit(
            _exit_code(
                lambda: super(_Group, self).main(args, "archviz", standalone_mode=False, **extra)
            )
        )


def _exit_code(run: Callable[[], Any]) -> int:
    """The exit-code contract: 0 ok, 1 verdict, 2 bad input, 3 bug, 130 interrupted."""
    try:
        code = run()
    except Verdict as exc:
        _say(f"archviz: {_one_line(exc)}")
        return EXIT_VERDICT
    except ArchvizError as exc:
        _say(f"archviz: error: {_one_line(exc)}")
        return EXIT_BAD_INPUT
    except _NO_ARGS as exc:  # bare `archviz`: the help, as click 8.1 gave it
        ctx = getattr(exc, "ctx", None)
        click.echo(ctx.get_help() if ctx else "archviz --help")
        return EXIT_OK
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "archviz"
        _say(f"archviz: error: {_one_line(exc)} (see '{where} --help')")
        return EXIT_BAD_INPUT
    except click.ClickException as exc:  # e.g. a file click could not open
        _say(f"archviz: error: {_one_line(exc)}")
        return EXIT_BAD_INPUT
    except (click.Abort, KeyboardInterrupt):
        _say("archviz: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        _say(f"archviz: internal error: {_one_line(exc)} (traceback saved to {_save_traceback()})")
        return EXIT_BUG
    return code if isinstance(code, int) else EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    name = type(exc).__name__
    first = (
        first
        if isinstance(exc, (ArchvizError, Verdict, click.ClickException))
        else (f"{name}: {first}" if first else name)
    )
    return first if len(first) <= 400 else first[:400] + "..."


def _save_traceback() -> str:
    """The full traceback in a file (the terminal gets one line); its path."""
    fd, path = tempfile.mkstemp(prefix="archviz-traceback-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(f"archviz {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return path


def _say(text: str) -> None:
    click.echo(text, err=True)


def _command(name: str) -> Callable:
    """A command whose help, one-line summary and examples come from archviz.options."""
    spec = COMMANDS[name]
    examples = "\n".join(f"  {e}" for e in spec.examples)

    def decorate(func: Callable) -> click.Command:
        details = inspect.cleandoc(func.__doc__ or "")
        return cli.command(
            name,
            help=f"{spec.summary}\n\n{details}" if details else spec.summary,
            short_help=spec.summary,
            epilog=f"\b\nExamples:\n{examples}",
        )(func)

    return decorate


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog="\b\nExit codes: 0 ok; 1 a verdict (incompatible, outputs differ); "
    "2 bad input;\n3 a bug in archviz (the traceback is saved to a file); 130 interrupted.",
)
@click.version_option(package_name="archviz")
def cli() -> None:
    """Open up PyTorch architectures: trace, explain, compare, verify, benchmark, render.

    MODEL is a registry name (see `archviz models`), torchvision:NAME, or an import path
    package.module:factory.
    """
    # Running a model makes PyTorch and torchvision warn about things the user cannot act
    # on here (deprecations inside torchvision, meta-device notes); stderr is for archviz's
    # one-line messages.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def _write(text: str, output: Path | None) -> None:
    """To stdout, or atomically to `output` (its folder created)."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _say(f"wrote {output}")


# ---- commands ------------------------------------------------------------------------------


@_command("models")
@click.option("--torchvision", "include_tv", is_flag=True, help="Also list torchvision's.")
def models_cmd(include_tv: bool) -> None:
    from archviz.models.names import list_models

    click.echo("\n".join(list_models(include_torchvision=include_tv)))


@_command("trace")
@click.argument("model")
@input_option(family=True)
@click.option("--device", default="meta", help=f"Where to run: {TRACE_DEVICES}.")
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=3,
    help="Rows down to this module depth (deeper work is summed in); 0: the model's row.",
)
@format_option("trace", default=None)
@output_option("Write to this file instead of stdout.")
def trace_cmd(
    model: str,
    input_size: str | None,
    device: str,
    depth: int,
    fmt: str | None,
    output: Path | None,
) -> None:
    """Runs one forward pass with hooks on every module; on `meta` nothing is allocated."""
    from archviz.models import resolve_model
    from archviz.render.tables import render_trace
    from archviz.tracing.trace import trace

    size = parse_shape(input_size) if input_size else None  # None: the family's input
    result = trace(resolve_model(model), size, device=device, name=model)
    _write(render_trace(result, format_for(fmt, output, "trace"), depth=depth), output)


@_command("diagram")
@click.argument("model")
@output_option(
    "Output file; its suffix (.svg, .png, .pdf, .dot) chooses the format.", required=True
)
@click.option(
    "--level",
    type=click.Choice(list(LEVELS)),
    help="ResNet preset; "
    + "; ".join(f"{k}: {v}" for k, v in LEVELS.items())
    + ".  [default: stage for a ResNet, else the deepest readable depth]",
)
@click.option(
    "--depth", type=click.IntRange(min=1), help="Open modules down to this depth (1: top level)."
)
@click.option("--no-collapse", is_flag=True, help="Draw every repeated block, not one 'x N'.")
@input_option(family=True)
def diagram_cmd(
    model: str,
    output: Path,
    level: str | None,
    depth: int | None,
    no_collapse: bool,
    input_size: str | None,
) -> None:
    """Drawn from the traced dataflow (what ran, not module names): modules down to --depth,
    merges and shortcuts. DOT output is deterministic."""
    from archviz.models import resolve_model
    from archviz.render.diagram import diagram, has_dot
    from archviz.tracing.trace import trace

    size = parse_shape(input_size) if input_size else None  # None: the family's input
    result = trace(resolve_model(model), size, name=model)
    output.parent.mkdir(parents=True, exist_ok=True)
    path = diagram(result, level, depth=depth, collapse=not no_collapse).save(output)
    click.echo(f"wrote {path}")
    if path.suffix == ".dot" and not has_dot():
        _say(
            f"note: Graphviz's dot is not installed; {path} is DOT source. To render it, "
            f"install Graphviz (apt-get install graphviz; macOS: brew install graphviz), "
            f"then: dot -Tsvg {path} -o {path.with_suffix('.svg')}"
        )


@_command("explore")
@click.argument("model")
@output_option("Output HTML file: one self-contained page, no network requests.", required=True)
@input_option(family=True)
def explore_cmd(model: str, output: Path, input_size: str | None) -> None:
    """One offline page that opens the traced model's groups in place."""
    from archviz.models import resolve_model
    from archviz.render.explore import explore
    from archviz.tracing.trace import trace

    size = parse_shape(input_size) if input_size else None  # None: the family's input
    result = trace(resolve_model(model), size, name=model)
    click.echo(f"wrote {explore(result).save(output)}")


@_command("verify")
@click.argument("candidate")
@click.option("--against", "reference", required=True, help="Reference: name, import path or file.")
@format_option("verify")
@click.option("--no-forward", is_flag=True, help="Skip the forward check on random input.")
@output_option(
    "Write the (remapped) state_dict here (.pt, .pth or .safetensors) once its pairing is "
    "decided and re-verified; it loads strictly into the reference.",
    "--write-remapped",
)
@click.option(
    "--max-load-bytes",
    type=click.IntRange(min=1),
    help="Refuse checkpoints declaring more data [default: 4x the file's size].",
)
@click.option(
    "--keep-metadata",
    is_flag=True,
    help="With -o: keep the checkpoint's other entries (epoch, optimizer).",
)
def verify_cmd(
    candidate: str,
    reference: str,
    fmt: str,
    no_forward: bool,
    output: Path | None,
    max_load_bytes: int | None,
    keep_metadata: bool,
) -> None:
    """Exit 0: compatible (or remapped and written with -o); 1: incompatible, ambiguous,
    compatible only after remapping, outputs differ, or not written; 2: bad input."""
    from archviz.checkpoints.files import MAX_LOAD_BYTES
    from archviz.checkpoints.verify import verify
    from archviz.render.escape import term_safe
    from archviz.render.verify import FORMATS as RENDER

    MAX_LOAD_BYTES.set(max_load_bytes)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
    result = verify(
        candidate,
        reference,
        forward_check=not no_forward,
        write_remapped=output,
        keep_metadata=keep_metadata,
    )
    click.echo(RENDER[fmt](result))
    written = bool(result.write and result.write.written)
    if result.write is not None and written:
        _say(term_safe(result.write.message))
    if result.verdict == "compatible" or written:
        if result.forward.status in ("differ", "failed"):
            raise Verdict(f"the weights load, but the forward check {result.forward.status}")
        return
    if output is not None:  # one line: why nothing was written
        raise Verdict(term_safe(result.write.message) if result.write else f"{output} not written")
    if result.verdict == "compatible after remapping":
        raise Verdict(
            f"{result.verdict}: add -o FIXED.safetensors (or .pt) to write a state_dict "
            "that loads strictly into the reference"
        )
    raise Verdict(f"{result.verdict}: the weights do not load into the reference as they are")


@_command("explain")
@click.argument("model")
@input_option()
@format_option("explain", default=None)
@output_option("Write to this file instead of stdout.")
def explain_cmd(model: str, input_size: str, fmt: str | None, output: Path | None) -> None:
    """Counts weighted layers on the traced model's main path, and shows where the stride sits."""
    from archviz.analysis.explain import explain
    from archviz.render.explain import render_explanation

    result = explain(model, parse_shape(input_size))
    _write(render_explanation(result, format_for(fmt, output, "explain")), output)


@_command("compare")
@click.argument("models", nargs=-1)
@input_option()
@format_option("compare", default=None)
@output_option("Write to this file instead of stdout.")
@click.option(
    "--plots", type=click.Path(file_okay=False, path_type=Path), help="Also save plots here."
)
@click.option("--paper/--no-paper", default=True, help="Also trace the paper's stride placement.")
def compare_cmd(
    models: tuple[str, ...],
    input_size: str,
    fmt: str | None,
    output: Path | None,
    plots: Path | None,
    paper: bool,
) -> None:
    """MODELS default to resnet18, 34, 50, 101 and 152."""
    from archviz.analysis.compare import compare
    from archviz.cli.progress import Progress
    from archviz.models import STANDARD

    with Progress("compare") as progress:
        result = compare(
            models or STANDARD, parse_shape(input_size), paper=paper, progress=progress
        )
    _write(result.render(format_for(fmt, output, "compare")), output)
    if plots:
        from archviz.render.plots import save_plots

        for path in save_plots(result, plots):
            _say(f"wrote {path}")


@_command("report")
@click.argument("models", nargs=-1)
@input_option()
@output_option("The report folder.", "--out", folder=True, default=Path("reports"))
@click.option(
    "--format",
    "formats",
    default="html,markdown",
    metavar="LIST",
    help="Comma-separated: " + ", ".join(FORMATS["report"]) + ".",
)
@click.option(
    "--bench",
    "bench_spec",
    default=None,
    help="Add benchmarks: a FILE.json from `archviz bench -o`, or devices to run (cpu,cuda).",
)
def report_cmd(
    models: tuple[str, ...], input_size: str, output: Path, formats: str, bench_spec: str | None
) -> None:
    """MODELS default to ResNet-18/34/50/101/152. Writes report.html (self-contained) and
    README.md (GitHub-flavoured, diagrams and plots beside it); a failed run leaves the
    previous report as it was."""
    from archviz.analysis.compare import compare
    from archviz.benchmark.timing import load_or_run
    from archviz.cli.progress import Progress
    from archviz.models import STANDARD
    from archviz.render.report import write_report
    from archviz.render.report.folder import check_report_folder

    chosen = format_list(formats, FORMATS["report"])
    check_report_folder(output)  # refuse a folder with the user's files before any work
    names = list(models or STANDARD)
    with Progress("report") as progress:
        comparison = compare(names, parse_shape(input_size), progress=progress)
        results = load_or_run(bench_spec, names, progress=progress) if bench_spec else None
        progress(0, 0, "writing the report")
        pages = write_report(comparison, output, chosen, bench=results)
    for page in pages:
        click.echo(f"wrote {page}")


@_command("bench")
@click.argument("models", nargs=-1, required=True)
@input_option(multiple=True)
@click.option("--device", "devices", default="cpu,cuda", help="Comma-separated, e.g. cpu,cuda.")
@click.option(
    "--dtype", "dtypes", default="float32", help="Comma-separated: float32,bfloat16,float16."
)
@click.option("--channels-last", is_flag=True, help="Model and input in channels-last layout.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: torch's].")
@click.option(
    "--min-run-time",
    type=float,
    default=0.5,
    help="Seconds of timed calls per measurement (more: steadier figures).",
)
@click.option(
    "--quick", is_flag=True, help="Rough figures fast (a few calls, no stages): check a command."
)
@format_option("bench")
@output_option("Also save the results as JSON here, for `archviz report --bench`.", "--save")
@click.option("--batch", "batches", hidden=True)  # old spelling of --input's N
@click.option("--image-size", hidden=True)  # old spelling of --input's HxW
def bench_cmd(
    models: tuple[str, ...],
    input_size: tuple[str, ...],
    devices: str,
    dtypes: str,
    channels_last: bool,
    threads: int | None,
    min_run_time: float,
    quick: bool,
    fmt: str,
    output: Path | None,
    batches: str | None,
    image_size: str | None,
) -> None:
    """MODELS are names, comma-separated or not. Shows progress on stderr; flags rows whose
    spread is too large to trust."""
    from archviz.benchmark.timing import bench
    from archviz.cli.progress import Progress
    from archviz.render.bench_table import format_bench

    with Progress("bench") as progress:
        result = bench(
            [m for spec in models for m in spec.split(",") if m],
            devices=devices,
            input_sizes=bench_inputs(input_size, batches, image_size),
            dtypes=dtypes,
            channels_last=channels_last,
            threads=threads,
            min_run_time=min_run_time,
            quick=quick,
            progress=progress,
        )
    if output is not None:
        _write(result.to_json(), output)
    click.echo(format_bench(result, fmt), nl=False)


def main() -> None:
    """Console-script entry point: the exit-code contract is applied in `_Group.main`."""
    cli.main(prog_name="archviz")


if __name__ == "__main__":  # pragma: no cover
    main()
