"""Graphviz's `dot` as a child that never outlives archviz.

`dot` runs in its own process group with a time limit. Whatever ends the wait (the limit,
Ctrl-C, SIGTERM, an error) the `finally` kills the whole group, so no `dot` is left
running at full CPU after archviz has gone. SIGTERM's default action would end Python
without running `finally`, so while `dot` runs it is turned into SystemExit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from archviz.errors import ArchvizError

DOT_TIMEOUT = 60.0  # seconds; the node budget keeps a diagram well inside it


def run_dot(source: str, fmt: str, timeout: float = DOT_TIMEOUT) -> bytes:
    """`dot -T<fmt>` on `source`; ArchvizError when it fails or runs past `timeout`."""
    with _sigterm_exits():
        proc = subprocess.Popen(
            ["dot", f"-T{fmt}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as one, never orphaned
        )
        try:
            out, err = proc.communicate(source.encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ArchvizError(
                f"dot did not finish within {timeout:g} s and was stopped; draw less: "
                "a smaller --depth, or a lower --max-nodes"
            ) from None
        finally:
            _kill(proc)
    if proc.returncode != 0:  # a bug here, not the user's: say what dot said
        raise ArchvizError(f"dot failed: {err.decode(errors='replace').strip()}")
    return out


def _kill(proc: subprocess.Popen) -> None:
    """Kill `dot`'s process group if it still runs, and reap it."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) while inside, so `finally` blocks run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
