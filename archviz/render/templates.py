"""The one jinja2 Environment, with autoescape, over the top-level `templates/` folder.

Templates live at the repository's top level so they are easy to edit; the wheel ships
them as `archviz/templates` (see pyproject.toml), and the lookup below finds either.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from archviz.errors import ArchvizError

_PACKAGE = Path(__file__).resolve().parent.parent


def template_dir() -> Path:
    """`archviz/templates` in an installed wheel, else the checkout's `templates/`."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise ArchvizError(f"archviz's report templates are missing (looked beside {_PACKAGE})")


@cache
def environment() -> jinja2.Environment:
    """Autoescape everything: model-derived strings (module names) are untrusted text.

    Markdown gets HTML escaping too: GitHub and MkDocs render inline HTML, so `<script>`
    in a module name must arrive as `&lt;script&gt;`, which both display as text.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing context key is a bug, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
