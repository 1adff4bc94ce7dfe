"""What one run shares across its stages: the files it read, and the user code it runs.

- The files a run reads (a checkpoint, a config, the factory's source) are registered
  here by whoever reads them (`register_input`); `write_atomic` refuses every one of them
  as a destination, so `-o` can never replace the run's own input.
- User code (a factory, a forward) runs inside `user_code(during)`: a `sys.exit()` in it
  is bad input (exit 2), not archviz's own exit with no output, and `time_limit` (the
  CLI's `--timeout`) says which module was running when the time ran out.

Top-level and torch-free at import, like `archviz.errors`: models/, tracing/, checkpoints/,
benchmark/ and render/ all use it, and it imports none of them.
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from archviz.errors import EXIT_BAD_INPUT, ArchvizError

# None outside a run (the Python API): nothing is recorded, `inputs=` still applies.
_INPUTS: ContextVar[list[str] | None] = ContextVar("archviz_run_inputs", default=None)
# What user code runs now, innermost last: each entry describes where it is.
_DOING: list[Callable[[], str]] = []
HARD_STOP_GRACE_S = 5.0  # after the limit, how long code that ignores signals may run on


@contextmanager
def run_scope() -> Iterator[None]:
    """One CLI run: the inputs registered inside are this run's, and only this run's."""
    token = _INPUTS.set([])
    try:
        yield
    finally:
        _INPUTS.reset(token)


def register_input(path: str | os.PathLike[str] | None) -> None:
    """Record a file this run reads, so no output of the run replaces it."""
    files = _INPUTS.get()
    if files is not None and path:
        files.append(os.fspath(path))


def run_inputs() -> tuple[str, ...]:
    """The files this run has read so far."""
    return tuple(_INPUTS.get() or ())


@contextmanager
def user_code(
    during: str, *, model: Any = None, where: Callable[[], str] | None = None
) -> Iterator[None]:
    """Run the user's `factory` or `forward`: sys.exit() inside is an ArchvizError.

    With `model`, global forward hooks follow which of its modules runs, so a timeout
    names it; `where` describes the place otherwise.
    """
    stack: list[Any] = []
    describe = where or (lambda: f"during the model's {during}")
    if model is not None:
        describe = _module_place(model, stack, during)
    handles = _follow_modules(stack) if model is not None else []
    _DOING.append(describe)
    try:
        yield
    except SystemExit as exc:
        code = "" if exc.code is None else repr(exc.code)
        raise ArchvizError(f"the model called sys.exit({code}) during its {during}") from None
    finally:
        _DOING.pop()
        for handle in handles:
            handle.remove()


def _follow_modules(stack: list[Any]) -> list[Any]:
    from torch.nn.modules import module as torch_module

    def pre(module: Any, args: Any) -> None:
        stack.append(module)

    def post(module: Any, args: Any, output: Any) -> None:
        if stack and stack[-1] is module:
            stack.pop()

    return [
        torch_module.register_module_forward_pre_hook(pre),
        torch_module.register_module_forward_hook(post),
    ]


def _module_place(model: Any, stack: list[Any], during: str) -> Callable[[], str]:
    def describe() -> str:
        if not stack:
            return f"during the model's {during}"
        names = {id(m): n for n, m in model.named_modules()}
        inner = next((m for m in reversed(stack) if id(m) in names), None)
        if inner is None:
            return f"during the model's {during}"
        name = names[id(inner)]
        shown = repr(name if len(name) <= 80 else name[:80] + "...") if name else "the model"
        return f"in module {shown} ({type(inner).__name__}) during the model's {during}"

    return describe


class _OutOfTime(BaseException):
    """Raised by SIGALRM in the main thread; a BaseException so user code's
    `except Exception` cannot swallow it."""


def check_seconds(seconds: float) -> float:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ArchvizError(f"--timeout is a positive number of seconds, got {seconds}")
    return float(seconds)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Stop the run after `seconds` (None: no limit) with one line naming what was running.

    SIGALRM interrupts the main thread (sleeps and lock waits included); a watchdog
    thread ends the process (exit 2) if code that ignores signals runs on past a grace.
    """
    if seconds is None:
        yield
        return
    seconds = check_seconds(seconds)

    def message() -> str:
        place = _DOING[-1]() if _DOING else "while archviz was working"
        return f"timed out after {seconds:g} s {place}; raise --timeout to allow longer"

    def alarm(signum: int, frame: Any) -> None:
        raise _OutOfTime(message())

    def hard_stop() -> None:
        os.write(2, f"archviz: error: {message()}\n".encode(errors="replace"))
        os._exit(EXIT_BAD_INPUT)

    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, alarm) if on_main else None
    watchdog = threading.Timer(seconds + HARD_STOP_GRACE_S * (1 if on_main else 0), hard_stop)
    watchdog.daemon = True
    if on_main:
        signal.setitimer(signal.ITIMER_REAL, seconds)
    watchdog.start()
    try:
        yield
    except _OutOfTime as exc:
        raise ArchvizError(str(exc)) from None
    finally:
        watchdog.cancel()
        if on_main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
