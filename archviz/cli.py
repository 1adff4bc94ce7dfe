"""The `archviz` command: parse options, call one public function, write the result.

Bad input (ArchvizError, a ValueError) becomes a one-line message and exit code 2 in
one place, `_Group.invoke`, so no command prints a traceback for a user's mistake.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import click

from archviz.compare import FORMATS as COMPARE_FORMATS
from archviz.errors import ArchvizError
from archviz.render.bench_table import FORMATS as BENCH_FORMATS
from archviz.render.diagram import INSTALL_HINT, LEVELS
from archviz.verify_render import FORMATS as VERIFY_FORMATS

DEFAULT_INPUT = "1x3x224x224"


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArchvizError as exc:
            raise _Fail(str(exc)) from None


class _Fail(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"archviz: error: {self.format_message()}", err=True)


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' or '1,3,224,224' -> (1, 3, 224, 224)."""
    parts = [p for p in re.split(r"[x,\s]+", text.strip().strip("()[]")) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ArchvizError(
            f"malformed input shape {text!r}; write positive integers like 1x3x224x224"
        )
    return tuple(int(p) for p in parts)


def _shape_option(func):
    return click.option(
        "--input",
        "input_size",
        default=DEFAULT_INPUT,
        show_default=True,
        help="Input shape N x C x H x W, e.g. 1x3x224x224 or 8,3,160,160.",
    )(func)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archviz")
def cli() -> None:
    """Open up PyTorch architectures: trace, explain, compare, verify, benchmark, render."""
    # Running a model makes PyTorch and torchvision warn about things the user cannot act
    # on here (deprecations inside torchvision, meta-device notes); stderr is for archviz's
    # one-line messages.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


@cli.command("models")
@click.option("--torchvision", "include_tv", is_flag=True, help="Also list torchvision's.")
def models_cmd(include_tv: bool) -> None:
    """List the model names archviz knows."""
    from archviz.models import list_models

    click.echo("\n".join(list_models(include_torchvision=include_tv)))


TRACE_FORMATS = ("table", "json", "csv")


@cli.command("trace")
@click.argument("model")
@_shape_option
@click.option("--device", default="meta", show_default=True, help="meta (no memory), cpu, cuda.")
@click.option("--depth", default=3, show_default=True, help="Rows down to this module depth.")
@click.option("--format", "fmt", type=click.Choice(TRACE_FORMATS), default="table")
def trace_cmd(model: str, input_size: str, device: str, depth: int, fmt: str) -> None:
    """Trace MODEL: every module's shapes, parameters, MACs and FLOPs.

    MODEL is a registry name (resnet50), torchvision:NAME, or package.module:factory.
    """
    from archviz.models import resolve_model
    from archviz.trace import trace

    result = trace(resolve_model(model), parse_shape(input_size), device=device, name=model)
    if fmt == "json":
        click.echo(result.to_json(indent=2))
    elif fmt == "csv":
        click.echo(result.to_dataframe().to_csv(index=False), nl=False)
    else:
        click.echo(result.summary(depth=depth))


@cli.command("diagram")
@click.argument("model")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file; its suffix (.svg, .png, .pdf, .dot) chooses the format.",
)
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    help="ResNet preset: stage (depth 1), block (2), layer (3), every block drawn. "
    "[default: stage for a ResNet, else the deepest readable depth]",
)
@click.option(
    "--depth", type=click.IntRange(min=1), help="Open modules down to this depth (1: top level)."
)
@click.option("--no-collapse", is_flag=True, help="Draw every repeated block, not one 'x N'.")
@_shape_option
def diagram_cmd(
    model: str,
    output: Path,
    level: str | None,
    depth: int | None,
    no_collapse: bool,
    input_size: str,
) -> None:
    """Draw MODEL from its traced dataflow: modules down to --depth, merges and shortcuts."""
    from archviz.models import resolve_model
    from archviz.render.diagram import diagram, has_dot
    from archviz.trace import trace

    result = trace(resolve_model(model), parse_shape(input_size), name=model)
    path = diagram(result, level, depth=depth, collapse=not no_collapse).save(output)
    click.echo(f"wrote {path}")
    if not has_dot():
        click.echo(f"note: to render it, {INSTALL_HINT}", err=True)


@cli.command("verify")
@click.argument("candidate")
@click.option("--against", "reference", required=True, help="Reference: name, import path or file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(VERIFY_FORMATS)),
    default="text",
    show_default=True,
)
@click.option("--no-forward", is_flag=True, help="Skip the forward check on random input.")
@click.option(
    "--write-remapped",
    "out",
    type=click.Path(dir_okay=False),
    help="Write the (remapped) state_dict here; it loads strictly into the reference.",
)
@click.option(
    "--max-load-bytes",
    type=click.IntRange(min=1),
    help="Refuse checkpoints declaring more data [default: 4x the file's size].",
)
@click.option(
    "--keep-metadata",
    is_flag=True,
    help="With --write-remapped: keep the checkpoint's other entries (epoch, optimizer).",
)
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    candidate: str,
    reference: str,
    fmt: str,
    no_forward: bool,
    out: str | None,
    keep_metadata: bool,
    max_load_bytes: int | None,
) -> None:
    """Say whether CANDIDATE's weights load into the reference, and exactly why not.

    Exit 0: compatible (or remapped and written with --write-remapped); 1: incompatible,
    compatible only after remapping, or outputs differ; 2: bad input.
    """
    from archviz.checkpoint import MAX_LOAD_BYTES, save_state_dict
    from archviz.verify import remapped_state_dict, verify

    MAX_LOAD_BYTES.set(max_load_bytes)
    result = verify(candidate, reference, forward_check=not no_forward)
    click.echo(VERIFY_FORMATS[fmt](result))
    loads = result.verdict == "compatible"
    if out is not None and result.verdict != "incompatible":
        state_dict = remapped_state_dict(candidate, result)
        notice = save_state_dict(state_dict, out, source=candidate, keep_metadata=keep_metadata)
        click.echo(f"wrote {out}" + (f"\n{notice}" if notice else ""), err=True)
        loads = True
    elif out is not None:
        click.echo(f"not written: {out} would not load into the reference", err=True)
    if not loads or result.forward.status in ("differ", "failed"):
        ctx.exit(1)


@cli.command("explain")
@click.argument("model")
@_shape_option
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text")
def explain_cmd(model: str, input_size: str, fmt: str) -> None:
    """Explain MODEL's depth: why [3, 4, 6, 3] of Bottlenecks is ResNet-50."""
    from archviz.explain import explain

    result = explain(model, parse_shape(input_size))
    click.echo(result.to_json(indent=2) if fmt == "json" else result.text())


@cli.command("compare")
@click.argument("models", nargs=-1)
@_shape_option
@click.option("--format", "fmt", type=click.Choice(COMPARE_FORMATS), default="table")
@click.option("--plots", type=click.Path(file_okay=False), help="Also save SVG/PNG plots here.")
@click.option("--paper/--no-paper", default=True, help="Also trace the paper's stride placement.")
def compare_cmd(
    models: tuple[str, ...], input_size: str, fmt: str, plots: str | None, paper: bool
) -> None:
    """Compare MODELS side by side (default: resnet18, 34, 50, 101, 152)."""
    from archviz.compare import compare
    from archviz.models import STANDARD

    result = compare(models or STANDARD, parse_shape(input_size), paper=paper)
    click.echo(result.render(fmt))
    if plots:
        from archviz.render.plots import save_plots

        for path in save_plots(result, plots):
            click.echo(f"wrote {path}", err=True)


@cli.command("report")
@click.argument("models", nargs=-1)
@_shape_option
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "formats", default="html,md", show_default=True, help="html,md")
@click.option(
    "--bench",
    "bench_spec",
    default=None,
    help="Add benchmarks: a saved `archviz bench --save` FILE.json, or devices to run (cpu,cuda).",
)
def report_cmd(
    models: tuple[str, ...], input_size: str, out: str, formats: str, bench_spec: str | None
) -> None:
    """Write the comparison report (default: ResNet-18/34/50/101/152) into OUT."""
    from archviz.bench import load_or_run
    from archviz.compare import compare
    from archviz.models import STANDARD
    from archviz.render.report import write_report
    from archviz.render.report_folder import check_report_folder

    check_report_folder(out)  # refuse a folder with the user's files before any work
    names = list(models or STANDARD)
    comparison = compare(names, parse_shape(input_size))
    results = load_or_run(bench_spec, names) if bench_spec else None
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    for page in write_report(comparison, out, chosen, bench=results):
        click.echo(f"wrote {page}")


@cli.command("bench")
@click.argument("models", nargs=-1, required=True)
@click.option("--device", "devices", default="cpu,cuda", show_default=True, help="e.g. cpu,cuda")
@click.option("--batch", "batches", default="1,32", show_default=True, help="e.g. 1,8,32")
@click.option("--dtype", "dtypes", default="float32", show_default=True, help="float32,bfloat16")
@click.option("--channels-last", is_flag=True, help="Model and input in channels-last layout.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: torch's].")
@click.option("--image-size", default="224", show_default=True, help="H or HxW of the images.")
@click.option(
    "--min-run-time",
    type=click.FloatRange(min=0, min_open=True),
    default=0.5,
    show_default=True,
    help="Seconds of timed calls per measurement.",
)
@click.option(
    "--format", "fmt", type=click.Choice(BENCH_FORMATS), default="table", show_default=True
)
@click.option("--save", type=click.Path(dir_okay=False), help="Also write the result as JSON.")
def bench_cmd(
    models: tuple[str, ...],
    devices: str,
    batches: str,
    dtypes: str,
    channels_last: bool,
    threads: int | None,
    image_size: str,
    min_run_time: float,
    fmt: str,
    save: str | None,
) -> None:
    """Time the forward pass of MODELS (names, comma-separated or not) on CPU and GPU."""
    from archviz.bench import bench
    from archviz.render.bench_table import format_bench

    with ExitStack() as stack:
        result = bench(
            [m for spec in models for m in spec.split(",") if m],
            devices=devices,
            batch_sizes=_ints(batches, "batch sizes"),
            dtypes=dtypes,
            channels_last=channels_last,
            threads=threads,
            min_run_time=min_run_time,
            image_size=_image_size(image_size),
            progress=_progress_bar(stack) if sys.stderr.isatty() else None,
        )
    if save:
        result.save(save)
    click.echo(format_bench(result, fmt), nl=False)


def _progress_bar(stack: ExitStack) -> Callable[[int, int, str], None]:
    """click's bar on stderr, opened when bench() first says how many steps there are."""
    bars: list = []

    def tick(done: int, total: int, label: str) -> None:
        if not bars:
            bar = click.progressbar(length=total, label="bench", file=sys.stderr)
            bars.append(stack.enter_context(bar))
        bars[0].label = f"bench {label}" if label else "bench"
        bars[0].update(done - bars[0].pos)

    return tick


def _ints(text: str, what: str, separators: str = r"[,\s]+") -> tuple[int, ...]:
    parts = [p for p in re.split(separators, text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ArchvizError(f"malformed {what} {text!r}; write positive integers like 1,32")
    return tuple(int(p) for p in parts)


def _image_size(text: str) -> tuple[int, int]:
    size = _ints(text, "image size", r"[x,\s]+")
    if len(size) > 2:
        raise ArchvizError(f"image size is H or HxW, got {text!r}")
    return (size[0], size[-1])


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="archviz")


if __name__ == "__main__":  # pragma: no cover
    main()
