"""archviz's exceptions and the one exit-code contract they map to.

| exit | meaning                                                   | raised as            |
|------|-----------------------------------------------------------|----------------------|
| 0    | success, or a compatible verdict                          | -                    |
| 1    | a verdict: incompatible, ambiguous, outputs differ        | `Verdict`            |
| 2    | bad input or an environment problem: one line, no trace   | `ArchvizError`       |
| 3    | an internal error (a bug in archviz): one line + log path | anything else        |

`ArchvizError` subclasses ValueError so notebook users can catch the familiar type.
The CLI maps these to exit codes in one place (`archviz/cli/main.py`, `_exit_code`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_BAD_INPUT = 2
EXIT_BUG = 3


class ArchvizError(ValueError):
    """Bad input from the user, or an environment problem: exit 2, one line."""

    exit_code = EXIT_BAD_INPUT


class Verdict(Exception):
    """A finished check whose answer is 'no' (incompatible, ambiguous): exit 1.

    Not an error in archviz or in the input; the message is the verdict's one line.
    """

    exit_code = EXIT_VERDICT
