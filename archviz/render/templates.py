"""The one jinja2 Environment, with autoescape, over the top-level `templates/` folder.

Templates live at the repository's top level so they are easy to edit; the wheel ships
them as `archviz/templates` (see pyproject.toml), and the lookup below finds either.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from archviz.errors import ArchvizError
from archviz.render.escape import md_escape

_PACKAGE = Path(__file__).resolve().parent.parent


def template_dir() -> Path:
    """`archviz/templates` in an installed wheel, else the checkout's `templates/`."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise ArchvizError(f"archviz's report templates are missing (looked beside {_PACKAGE})")


@cache
def environment() -> jinja2.Environment:
    """The HTML environment: autoescape everything, model-derived strings are untrusted."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing context key is a bug, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _markdown_finalize(value: object) -> object:
    """Every `{{ }}` in a Markdown template: Markdown-escaped unless marked ready (Markup:
    tables and links archviz built and escaped itself)."""
    return value if isinstance(value, Markup) else md_escape(value)


@cache
def markdown_environment() -> jinja2.Environment:
    """The Markdown environment: Markdown escaping, not HTML's (which showed `&#39;`).

    A module name with `|`, a newline or `<script>` renders as those characters, literally:
    backslash escapes work in GitHub, MkDocs and every CommonMark renderer.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=False,
        finalize=_markdown_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
