"""`archviz roofline` and `archviz memory`: the hardware view of a traced model."""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command, say, write_text
from archviz.cli.params import (
    dtype_option,
    format_option,
    hardware_option,
    input_option,
    timeout_option,
)
from archviz.options import HARDWARE_DTYPES, OPTIMIZERS, parse_shape

# roofline and memory trace on meta, or on cpu for models whose forward reads values
_TRACE_ON = click.option(
    "--device",
    type=click.Choice(("meta", "cpu")),
    default="meta",
    help="Trace on meta (nothing allocated) or cpu (models whose forward reads values, "
    "such as detection; allocates memory).",
)


@command("roofline")
@click.argument("model")
@input_option(family=True)
@dtype_option("float32", HARDWARE_DTYPES)
@hardware_option("cpu,h100")
@_TRACE_ON
@timeout_option()
@click.option(
    "--measure", is_flag=True, help="Also time each stage here (CPU, and CUDA if present)."
)
@click.option(
    "--recalibrate", is_flag=True, help="Measure this CPU's ceilings again (on a quiet machine)."
)
@format_option("roofline")
@click.option(
    "-o",
    "--output",
    "plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("roofline.svg"),
    show_default=True,
    help="The roofline plot (.svg, .png or .pdf).",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the table/JSON/CSV here.",
)
def roofline_cmd(
    model: str,
    input_size: str | None,
    dtype: str,
    hardware_names: str,
    device: str,
    measure: bool,
    recalibrate: bool,
    fmt: str,
    plot: Path,
    save: Path | None,
) -> None:
    """Bytes are each module's inputs, outputs and own parameters at the dtype: what an
    unfused kernel reads and writes. cpu's ceilings are measured once (a GEMM and a copy)
    and cached in ~/.cache/archviz."""
    from archviz.analysis.predict import roofline_of
    from archviz.render.roofline import format_roofline, plot_format, save_roofline_plot

    plot_format(plot)
    size = parse_shape(input_size) if input_size is not None else None
    if "cpu" in hardware_names:
        say("archviz: this CPU's ceilings: measured once (a few seconds), then cached")
    result = roofline_of(
        model, size, dtype=dtype, hardware_names=hardware_names, measure=measure,
        recalibrate=recalibrate, device=device, name=model,
    )  # fmt: skip
    text = format_roofline(result, fmt)
    write_text(text, None)
    if save is not None:
        write_text(text, save)
    say(f"wrote {save_roofline_plot(result, plot)}")


@command("memory")
@click.argument("model")
@click.option(
    "--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Batch size."
)
@input_option(family=True)
@click.option(
    "--train", is_flag=True, help="Training: gradients, optimizer state, saved activations."
)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adamw", help="With --train.")
@dtype_option("float32", HARDWARE_DTYPES)
@hardware_option("cpu,a100,h100,h200,l4,t4")
@_TRACE_ON
@timeout_option()
@format_option("memory")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
def memory_cmd(
    model: str,
    batch: int,
    input_size: str | None,
    train: bool,
    optimizer: str,
    dtype: str,
    hardware_names: str,
    device: str,
    fmt: str,
    output: Path | None,
) -> None:
    """--batch sets the N of --input. Activations are what autograd saves for backward,
    measured on meta (no memory used); `fits` is the largest batch that fits in each
    hardware's memory."""
    from archviz.analysis.memory import memory_of
    from archviz.render.memory import format_memory

    size = parse_shape(input_size) if input_size is not None else None
    result = memory_of(
        model, batch, size, train=train, optimizer=optimizer, dtype=dtype,
        hardware_names=hardware_names, device=device, name=model,
    )  # fmt: skip
    write_text(format_memory(result, fmt), output)
