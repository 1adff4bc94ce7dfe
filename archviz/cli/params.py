"""click parameters built from archviz.options: the same spelling in every command.

Old spellings stay accepted but hidden from --help (`AliasOption`, `FormatChoice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from archviz.options import (
    DEFAULT_INPUT,
    DTYPES,
    FORMAT_ALIASES,
    FORMATS,
    HARDWARE,
    OPS,
    TIMEOUT_HELP,
    TRACE_DEVICES,
)


class AliasOption(click.Option):
    """An option whose old spellings still work but are left out of --help."""

    def __init__(self, *args: Any, hidden_aliases: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = set(hidden_aliases)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


class FormatChoice(click.Choice):
    """--format's names for one command; old spellings ("text", "md") map to the new."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert(FORMAT_ALIASES.get(value, value), param, ctx)


def format_option(command: str, default: str | None = "table"):
    names = FORMATS[command]
    return click.option(
        "--format",
        "fmt",
        type=FormatChoice(names),
        default=default,
        show_default=default is not None,
        help="Output format."
        + ("" if default else "  [default: the one -o's suffix names, else table]"),
    )


def input_option(multiple: bool = False, family: bool = False):
    """--input; with `family`, no default here: the model's family picks its own input
    (a list of images for detection, 5-D clips for video; see archviz.models.INPUT_FORMS)."""
    if multiple:
        default, shown = None, False
        text = "Input shape NxCxHxW; repeat for several batch sizes [default: 1x3x224x224 and 32x3x224x224]."  # noqa: E501
    elif family:
        default, shown = None, False
        text = "Input shape NxCxHxW, or NxT tokens (N is the batch) [default: the model's own input: 1x3x224x224 for classifiers, 1x128 tokens for transformers]."  # noqa: E501
    else:
        default, shown = DEFAULT_INPUT, True
        text = "Input shape NxCxHxW (N is the batch), e.g. 8x3x160x160."
    return click.option(
        "--input",
        "input_size",
        default=default,
        multiple=multiple,
        show_default=shown,
        metavar="SHAPE",
        help=text,
    )


def _check_output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a link, a special file or a parent that is a file before any work is done."""
    if value is not None:
        from archviz.render.atomic import check_destination

        check_destination(value)
    return value


def output_option(help: str, *aliases: str, folder: bool = False, **kwargs: Any):
    if not folder:
        kwargs.setdefault("callback", _check_output)
    return click.option(
        "-o",
        "--output",
        *aliases,
        cls=AliasOption,
        hidden_aliases=aliases,
        type=click.Path(file_okay=not folder, dir_okay=folder, path_type=Path),
        help=help,
        **kwargs,
    )


def dtype_option(default: str | None = None, choices: tuple[str, ...] = DTYPES):
    """--dtype; without a default the model runs in its own dtype (its config's, for a config)."""
    return click.option(
        "--dtype",
        type=click.Choice(choices),
        default=default,
        help="Data type of weights and activations."
        if default
        else "Run in this dtype  [default: the model's own, e.g. its config's dtype].",
    )


def to_dtype(name: str | None):
    """A --dtype name as a torch dtype (None: the model's own)."""
    import torch

    return getattr(torch, name) if name else None


def hardware_option(default: str):
    """--hardware: comma-separated names from archviz.options.HARDWARE."""
    return click.option(
        "--hardware",
        "hardware_names",
        default=default,
        metavar="NAMES",
        help=f"Comma-separated, from: {', '.join(HARDWARE)} (cpu: this machine, measured).",
    )


def device_option():
    """--device for every command that traces: meta by default (nothing allocated)."""
    return click.option(
        "--device",
        default="meta",
        show_default=True,
        help=f"Where to trace: {TRACE_DEVICES}. Detectors cannot run on meta: use cpu.",
    )


def ops_option():
    """--ops: glue folded into edges (default) or every op drawn."""
    return click.option(
        "--ops",
        type=click.Choice(list(OPS)),
        default="folded",
        show_default=True,
        help="; ".join(f"{k}: {v}" for k, v in OPS.items()) + ".",
    )


def _start_time_limit(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    """The limit starts as the command's options are read and ends with its context."""
    if value is None:
        return
    from archviz.run import check_seconds, time_limit

    try:
        seconds = check_seconds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    ctx.with_resource(time_limit(seconds))


def timeout_option():
    """--timeout SECONDS for any command that runs user code; no limit unless given."""
    return click.option(
        "--timeout",
        type=float,
        default=None,
        expose_value=False,
        callback=_start_time_limit,
        metavar="SECONDS",
        help=TIMEOUT_HELP,
    )
