"""`archviz verify`: does a checkpoint or module load into the reference?"""

from __future__ import annotations

from pathlib import Path

import click

from archviz.cli.app import command, say
from archviz.cli.params import format_option, output_option, timeout_option
from archviz.errors import Verdict


@command("verify")
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
@timeout_option()
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
    from archviz.cli.progress import Progress
    from archviz.render.escape import term_safe
    from archviz.render.verify import FORMATS as RENDER

    limit = MAX_LOAD_BYTES.set(max_load_bytes)  # for this run only, not the next in-process
    try:
        with Progress("verify") as progress:
            result = verify(
                candidate,
                reference,
                forward_check=not no_forward,
                write_remapped=output,
                keep_metadata=keep_metadata,
                progress=progress,
            )
    finally:
        MAX_LOAD_BYTES.reset(limit)
    click.echo(RENDER[fmt](result))
    written = bool(result.write and result.write.written)
    if result.write is not None and written:
        say(term_safe(result.write.message))
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
