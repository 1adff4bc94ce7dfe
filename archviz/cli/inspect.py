"""`archviz models`, `trace`, `explain` and `compare`: what a model is, in tables."""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command, say, write_text
from archviz.cli.params import (
    device_option,
    dtype_option,
    format_option,
    input_option,
    output_option,
    timeout_option,
    to_dtype,
)
from archviz.options import format_for, parse_shape


@command("models")
@click.option("--torchvision", "include_tv", is_flag=True, help="Also list torchvision's.")
def models_cmd(include_tv: bool) -> None:
    from archviz.models.names import list_models

    click.echo("\n".join(list_models(include_torchvision=include_tv)))


@command("trace")
@click.argument("model")
@input_option(family=True)
@device_option()
@dtype_option()
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
    dtype: str | None,
    depth: int,
    fmt: str | None,
    output: Path | None,
) -> None:
    """Runs one forward pass with hooks on every module; on `meta` nothing is allocated."""
    from archviz.models import resolve_model
    from archviz.render.tables import render_trace
    from archviz.tracing.trace import trace

    size = parse_shape(input_size) if input_size is not None else None  # None: the family's
    result = trace(resolve_model(model), size, device=device, dtype=to_dtype(dtype), name=model)
    write_text(render_trace(result, format_for(fmt, output, "trace"), depth=depth), output)


@command("explain")
@click.argument("model")
@input_option(family=True)
@dtype_option()
@device_option()
@format_option("explain", default=None)
@output_option("Write to this file instead of stdout.")
@timeout_option()
def explain_cmd(
    model: str,
    input_size: str | None,
    dtype: str | None,
    device: str,
    fmt: str | None,
    output: Path | None,
) -> None:
    """Counts weighted layers on the traced model's main path, and shows where the stride sits."""
    from archviz.analysis.explain import explain
    from archviz.render.explain import render_explanation

    size = (
        parse_shape(input_size) if input_size is not None else None
    )  # None: the model's own input
    result = explain(model, size, dtype=to_dtype(dtype), device=device)
    write_text(render_explanation(result, format_for(fmt, output, "explain")), output)


@command("compare")
@click.argument("models", nargs=-1)
@input_option(family=True)
@dtype_option()
@device_option()
@format_option("compare", default=None)
@output_option("Write to this file instead of stdout.")
@click.option(
    "--plots", type=click.Path(file_okay=False, path_type=Path), help="Also save plots here."
)
@click.option("--paper/--no-paper", default=True, help="Also trace the paper's stride placement.")
@timeout_option()
def compare_cmd(
    models: tuple[str, ...],
    input_size: str | None,
    dtype: str | None,
    device: str,
    fmt: str | None,
    output: Path | None,
    plots: Path | None,
    paper: bool,
) -> None:
    """MODELS default to resnet18, 34, 50, 101 and 152."""
    from archviz.analysis.compare import compare
    from archviz.cli.progress import Progress
    from archviz.models import STANDARD
    from archviz.render.compare import render_comparison

    with Progress("compare") as progress:
        size = parse_shape(input_size) if input_size is not None else None  # None: each model's own
        result = compare(
            models or STANDARD,
            size,
            dtype=to_dtype(dtype),
            paper=paper,
            progress=progress,
            device=device,
        )
    write_text(render_comparison(result, format_for(fmt, output, "compare")), output)
    if plots:
        from archviz.render.plots import save_plots

        for path in save_plots(result, plots):
            say(f"wrote {path}")
