"""`archviz models`, `trace`, `explain` and `compare`: what a model is, in tables."""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command, say, write_text
from archviz.cli.params import format_option, input_option, output_option, timeout_option
from archviz.options import TRACE_DEVICES, format_for, parse_shape


@command("models")
@click.option("--torchvision", "include_tv", is_flag=True, help="Also list torchvision's.")
def models_cmd(include_tv: bool) -> None:
    from archviz.models.names import list_models

    click.echo("\n".join(list_models(include_torchvision=include_tv)))


@command("trace")
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
@timeout_option()
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

    size = parse_shape(input_size) if input_size is not None else None  # None: the family's
    result = trace(resolve_model(model), size, device=device, name=model)
    write_text(render_trace(result, format_for(fmt, output, "trace"), depth=depth), output)


@command("explain")
@click.argument("model")
@input_option()
@format_option("explain", default=None)
@output_option("Write to this file instead of stdout.")
@timeout_option()
def explain_cmd(model: str, input_size: str, fmt: str | None, output: Path | None) -> None:
    """Counts weighted layers on the traced model's main path, and shows where the stride sits."""
    from archviz.analysis.explain import explain
    from archviz.render.explain import render_explanation

    result = explain(model, parse_shape(input_size))
    write_text(render_explanation(result, format_for(fmt, output, "explain")), output)


@command("compare")
@click.argument("models", nargs=-1)
@input_option()
@format_option("compare", default=None)
@output_option("Write to this file instead of stdout.")
@click.option(
    "--plots", type=click.Path(file_okay=False, path_type=Path), help="Also save plots here."
)
@click.option("--paper/--no-paper", default=True, help="Also trace the paper's stride placement.")
@timeout_option()
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
    write_text(result.render(format_for(fmt, output, "compare")), output)
    if plots:
        from archviz.render.plots import save_plots

        for path in save_plots(result, plots):
            say(f"wrote {path}")
