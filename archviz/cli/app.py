"""What every command shares: its help from archviz.options, and how it writes text.

Commands are plain click commands built here; `archviz.cli.main` adds them to the group,
so no command module imports the group (and the group imports every command).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import click

from archviz.options import COMMANDS


def say(text: str) -> None:
    """One line on stderr: progress, notes and errors never mix with the output."""
    click.echo(text, err=True)


def command(name: str) -> Callable:
    """A command whose help, one-line summary and examples come from archviz.options."""
    spec = COMMANDS[name]
    examples = "\n".join(f"  {e}" for e in spec.examples)

    def decorate(func: Callable) -> click.Command:
        details = inspect.cleandoc(func.__doc__ or "")
        return click.command(
            name,
            help=f"{spec.summary}\n\n{details}" if details else spec.summary,
            short_help=spec.summary,
            epilog=f"\b\nExamples:\n{examples}",
        )(func)

    return decorate


def write_text(text: str, output: Path | None) -> None:
    """To stdout, or to `output` through the one careful writer (render/atomic.py)."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    from archviz.render.atomic import write_atomic

    write_atomic(output, text if text.endswith("\n") else text + "\n")
    say(f"wrote {output}")
