"""The `archviz` command: parse options, call one public function, write the result.

Start-up is fast because nothing heavy is imported here: each command imports torch,
pandas or the renderers when it runs. The option vocabulary lives in `archviz.options`;
the exit-code contract lives in `_exit_code`, the one place that turns exceptions into
exit codes (see `archviz.errors`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

import click

from archviz.cli.app import say
from archviz.cli.bench import bench_cmd
from archviz.cli.draw import diagram_cmd, explore_cmd
from archviz.cli.hardware import memory_cmd, roofline_cmd
from archviz.cli.inspect import compare_cmd, explain_cmd, models_cmd, trace_cmd
from archviz.cli.report import report_cmd
from archviz.cli.verify import verify_cmd
from archviz.errors import EXIT_BAD_INPUT, EXIT_BUG, EXIT_OK, EXIT_VERDICT, ArchvizError, Verdict
from archviz.run import run_scope

EXIT_INTERRUPTED = 130  # the shell's 128 + SIGINT


class _Never(Exception):
    """Stands in for NoArgsIsHelpError on clicks before 8.2, which print the help themselves."""


_NO_ARGS: type[Exception] = getattr(click.exceptions, "NoArgsIsHelpError", _Never)


class _Group(click.Group):
    """Every run, the console script's and CliRunner's alike, goes through `_exit_code`."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        with run_scope():  # the files this run reads are never its outputs
            code = _exit_code(
                lambda: super(_Group, self).main(args, "archviz", standalone_mode=False, **extra)
            )
        sys.exit(code)


def _exit_code(run: Callable[[], Any]) -> int:
    """The exit-code contract: 0 ok, 1 verdict, 2 bad input, 3 bug, 130 interrupted."""
    try:
        code = run()
    except Verdict as exc:
        say(f"archviz: {_one_line(exc)}")
        return EXIT_VERDICT
    except ArchvizError as exc:
        say(f"archviz: error: {_one_line(exc)}")
        return EXIT_BAD_INPUT
    except _NO_ARGS as exc:  # bare `archviz`: the help, as click 8.1 gave it
        ctx = getattr(exc, "ctx", None)
        click.echo(ctx.get_help() if ctx else "archviz --help")
        return EXIT_OK
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "archviz"
        say(f"archviz: error: {_one_line(exc)} (see '{where} --help')")
        return EXIT_BAD_INPUT
    except click.ClickException as exc:  # e.g. a file click could not open
        say(f"archviz: error: {_one_line(exc)}")
        return EXIT_BAD_INPUT
    except (click.Abort, KeyboardInterrupt):
        say("archviz: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        say(f"archviz: internal error: {_one_line(exc)} (traceback saved to {_save_traceback()})")
        return EXIT_BUG
    return code if isinstance(code, int) else EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    name = type(exc).__name__
    first = (
        first
        if isinstance(exc, (ArchvizError, Verdict, click.ClickException))
        else (f"{name}: {first}" if first else name)
    )
    return first if len(first) <= 400 else first[:400] + "..."


def _save_traceback() -> str:
    """The full traceback in a file (the terminal gets one line); its path."""
    fd, path = tempfile.mkstemp(prefix="archviz-traceback-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(f"archviz {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return path


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog="\b\nExit codes: 0 ok; 1 a verdict (incompatible, outputs differ); "
    "2 bad input;\n3 a bug in archviz (the traceback is saved to a file); 130 interrupted.",
)
@click.version_option(package_name="archviz")
def cli() -> None:
    """Open up PyTorch architectures: trace, explain, compare, verify, benchmark, render.

    MODEL is a registry name (see `archviz models`), torchvision:NAME, or an import path
    package.module:factory.
    """
    # Running a model makes PyTorch and torchvision warn about things the user cannot act
    # on here (deprecations inside torchvision, meta-device notes); stderr is for archviz's
    # one-line messages.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


for _cmd in (
    models_cmd,
    trace_cmd,
    explain_cmd,
    compare_cmd,
    diagram_cmd,
    explore_cmd,
    verify_cmd,
    report_cmd,
    bench_cmd,
    roofline_cmd,
    memory_cmd,
):
    cli.add_command(_cmd)


def main() -> None:
    """Console-script entry point: the exit-code contract is applied in `_Group.main`."""
    cli.main(prog_name="archviz")


if __name__ == "__main__":  # pragma: no cover
    main()
