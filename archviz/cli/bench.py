"""`archviz bench`: timed forward passes per device, dtype and input."""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command, write_text
from archviz.cli.params import format_option, input_option, output_option, timeout_option
from archviz.options import bench_inputs


@command("bench")
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
@timeout_option()
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
        write_text(result.to_json(), output)
    click.echo(format_bench(result, fmt), nl=False)
