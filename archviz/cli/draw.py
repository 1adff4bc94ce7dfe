"""`archviz diagram` and `explore`: pictures of the traced dataflow."""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command, say
from archviz.cli.params import (
    device_option,
    dtype_option,
    input_option,
    ops_option,
    output_option,
    timeout_option,
    to_dtype,
)
from archviz.options import LEVELS, MAX_NODES, parse_shape


@command("diagram")
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
@ops_option()
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=MAX_NODES,
    show_default=True,
    help="Node budget: a bigger view is drawn shallower (and says so), so dot never hangs.",
)
@input_option(family=True)
@dtype_option()
@device_option()
@timeout_option()
def diagram_cmd(
    model: str,
    output: Path,
    level: str | None,
    depth: int | None,
    no_collapse: bool,
    ops: str,
    max_nodes: int,
    input_size: str | None,
    dtype: str | None,
    device: str,
) -> None:
    """Drawn from the traced dataflow (what ran, not module names): modules down to --depth,
    merges and shortcuts. DOT output is deterministic."""
    from archviz.models import resolve_model
    from archviz.render.diagram import diagram, has_dot
    from archviz.tracing.trace import trace

    size = parse_shape(input_size) if input_size is not None else None  # None: the family's
    result = trace(resolve_model(model), size, device=device, dtype=to_dtype(dtype), name=model)
    drawing = diagram(
        result, level, depth=depth, collapse=not no_collapse, ops=ops, max_nodes=max_nodes
    )
    for note in drawing.notes:
        say(f"note: {note}")
    path = drawing.save(output)
    click.echo(f"wrote {path}")
    if path.suffix == ".dot" and not has_dot():
        say(
            f"note: Graphviz's dot is not installed; {path} is DOT source. To render it, "
            f"install Graphviz (apt-get install graphviz; macOS: brew install graphviz), "
            f"then: dot -Tsvg {path} -o {path.with_suffix('.svg')}"
        )


@command("explore")
@click.argument("model")
@output_option("Output HTML file: one self-contained page, no network requests.", required=True)
@input_option(family=True)
@dtype_option()
@device_option()
@ops_option()
@timeout_option()
def explore_cmd(
    model: str, output: Path, input_size: str | None, dtype: str | None, device: str, ops: str
) -> None:
    """One offline page that opens the traced model's groups in place."""
    from archviz.models import resolve_model
    from archviz.render.explore import explore
    from archviz.tracing.trace import trace

    size = parse_shape(input_size) if input_size is not None else None  # None: the family's
    result = trace(resolve_model(model), size, device=device, dtype=to_dtype(dtype), name=model)
    click.echo(f"wrote {explore(result, ops=ops).save(output)}")
