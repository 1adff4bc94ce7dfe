"""The `archviz` command: parse options, call one public function, write the result.

Bad input (ArchvizError, a ValueError) becomes a one-line message and exit code 2 in
one place, `_Group.invoke`, so no command prints a traceback for a user's mistake.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from contextlib import ExitStack

import click

from archviz.errors import ArchvizError
from archviz.render.bench_table import FORMATS

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


@cli.command("models")
@click.option("--torchvision", "include_tv", is_flag=True, help="Also list torchvision's.")
def models_cmd(include_tv: bool) -> None:
    """List the model names archviz knows."""
    from archviz.models import list_models

    click.echo("\n".join(list_models(include_torchvision=include_tv)))


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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
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
