"""`archviz report`: the comparison report folder."""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command
from archviz.cli.params import (
    device_option,
    dtype_option,
    input_option,
    output_option,
    timeout_option,
    to_dtype,
)
from archviz.options import FORMATS, format_list, parse_shape


@command("report")
@click.argument("models", nargs=-1)
@input_option(family=True)
@dtype_option()
@device_option()
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
@timeout_option()
def report_cmd(
    models: tuple[str, ...],
    input_size: str | None,
    dtype: str | None,
    device: str,
    output: Path,
    formats: str,
    bench_spec: str | None,
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
        size = parse_shape(input_size) if input_size is not None else None  # None: each model's own
        comparison = compare(names, size, dtype=to_dtype(dtype), progress=progress, device=device)
        results = load_or_run(bench_spec, names, progress=progress) if bench_spec else None
        progress(0, 0, "writing the report")
        pages = write_report(comparison, output, chosen, bench=results)
    for page in pages:
        click.echo(f"wrote {page}")
