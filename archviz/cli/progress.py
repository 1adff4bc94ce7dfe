"""Progress of long work on stderr, wherever it runs.

On a terminal: click's progress bar. Elsewhere (CI logs, `2> log`, a pipe): one line every
few seconds saying what runs and how much is done, so a twelve-minute benchmark is never
silent. The API functions take a plain callback `(done, total, what runs now)`; this is
the CLI's implementation of it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

import click

INTERVAL_S = 5.0  # seconds between lines when stderr is not a terminal
INTERVAL_VARIABLE = "ARCHVIZ_PROGRESS_INTERVAL"  # overrides INTERVAL_S (seconds)


class Progress:
    """A context manager and a `(done, total, label)` callback in one."""

    def __init__(
        self,
        what: str,
        *,
        stream: TextIO | None = None,
        interval: float | None = None,
        tty: bool | None = None,
    ) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval if interval is not None else _interval()
        self.tty = self.stream.isatty() if tty is None else tty
        self.done, self.total, self.label = 0, 0, ""
        self._bar: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._start = time.monotonic()
        self._lines = 0  # status lines written; a run that never wrote one ends silently

    def __call__(self, done: int, total: int, label: str) -> None:
        self.done, self.total, self.label = done, total, label
        if not self.tty:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=max(total, 1), label=self.what, file=self.stream)
            self._bar.__enter__()
        self._bar.label = f"{self.what} {label}".rstrip()
        self._bar.update(done - self._bar.pos)

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if not self.tty:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        elif not self.tty and self._thread.is_alive():
            self._thread.join()
            if exc[0] is None and self.total and self._lines:
                self._write(f"{self.done}/{self.total} done")

    def line(self) -> str:
        """The status line: what runs now, how much is done, how long it has taken."""
        count = f"{self.done}/{self.total} done" if self.total else ""
        return "; ".join(filter(None, [self.label, count])) or "starting"

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._write(self.line())

    def _write(self, text: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"archviz {self.what}: {text} ({elapsed:.0f} s)", file=self.stream, flush=True)
        self._lines += 1


def _interval() -> float:
    try:
        return max(float(os.environ.get(INTERVAL_VARIABLE, INTERVAL_S)), 0.1)
    except ValueError:
        return INTERVAL_S
