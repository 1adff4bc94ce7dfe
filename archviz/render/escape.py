"""Make user- and file-derived strings safe to print to a terminal or put in Markdown.

Checkpoint keys, module names and paths are untrusted text. Printed raw, `\\x1b[2J`
clears the screen and `\\r` or `\\n` forges a "verdict: compatible" line; in Markdown a
`|` splits a table cell and `<script>` is HTML. `term_safe` shows every control
character as its escape (`\\x1b`, `\\n`); `md_escape` does that, then backslash-escapes
Markdown's punctuation, so the text renders exactly as written.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what is shown
# ("Trojan Source"): none of them is ever printed as is.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Punctuation that means something anywhere in a line of CommonMark/GFM: emphasis, code,
# links (`(`, `)` and `!` only matter after an unescaped `]`), HTML, tables, entities,
# strikethrough, GitHub's `$` math, and `_` at a word's edge (`state_dict` is safe).
# `#`, `+`, `-` and `1.` only matter where a line starts, so they are escaped there and
# "resnet18-stage 1.2 G" stays readable.
_MARKDOWN = re.compile(r"([\\`*\[\]<>|&~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_LINE_START = re.compile(r"^(\s*)([#+\-](?=\s|$)|\d+(?=[.)](?:\s|$)))")


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def term_safe(text: object) -> str:
    """`text` with control characters shown as escapes: one line, nothing the terminal runs."""
    return _CONTROL.sub(_escape_control, str(text))


def md_escape(text: object) -> str:
    """`text` as literal Markdown: controls escaped, then every Markdown metacharacter."""
    escaped = _MARKDOWN.sub(r"\\\1", term_safe(text))
    return _LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(match: re.Match[str]) -> str:
    space, mark = match.groups()
    return f"{space}\\{mark}" if not mark[0].isdigit() else f"{space}{mark}\\"
