"""The interactive explorer: one offline HTML file that opens the observed graph level by level.

The page carries the trace's dataflow graph as JSON (boxes: module calls, ops, container
groups and folded runs of identical blocks; edges between the fine-grained nodes) and the
vendored ELK layout engine, inlined; the browser lays out whatever is open. Nothing is
fetched: the file works offline, in a docs site, in a notebook and as an attachment.
A page made for a host (the comparison report, `host_engine=True`) carries no engine: the
host holds its source once, in an inert element, and each framed page runs it from there.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["FOLD_MIN", "Explorer", "engine_element", "explore", "page_data", "script_json"]

from markupsafe import Markup

from archviz.analysis.fold import MODES
from archviz.errors import ArchvizError
from archviz.records import Trace
from archviz.render.atomic import write_atomic
from archviz.render.explore_data import FOLD_MIN, page_data
from archviz.render.explore_roofline import overlay_options
from archviz.render.templates import environment

ELK_DIR = Path(__file__).resolve().parent.parent / "vendor" / "elk"
ELK_VERSION = "0.12.1"
ELK_ELEMENT_ID = "archviz-elk"  # the host's <script type="text/plain"> holding the engine
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}  # fmt: skip


@dataclass(frozen=True)
class Explorer:
    """A rendered explorer page. A notebook shows it inline; `save` writes the file."""

    model: str
    html: str
    standalone: bool = True  # False: the engine comes from the host page (see ELK_ELEMENT_ID)

    def save(self, path: str | Path) -> Path:
        """Write the page atomically (temp file + rename); never through a link."""
        if not self.standalone:
            raise ArchvizError("this explorer runs only inside its report; use archviz.explore")
        try:
            return write_atomic(Path(path), self.html)
        except OSError as exc:  # e.g. a parent that is a file: write_atomic's mkdir raises
            raise ArchvizError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None

    def iframe(self, height: int = 680, lazy: bool = False) -> str:
        """The page in an iframe's srcdoc: its scripts and styles stay apart from the host's.

        The attribute is single-quoted, so only `&`, `<`, `>` and `'` need escaping: the
        page's JSON keeps its double quotes (as `&quot;` they were a third of a framed page)."""
        loading = ' loading="lazy"' if lazy else ""
        srcdoc = html.escape(self.html, quote=False).replace("'", "&#x27;")
        return (
            f"<iframe srcdoc='{srcdoc}'{loading} "
            f'title="{html.escape(self.model)}: architecture explorer" '
            f'style="width:100%;height:{height}px;border:1px solid #d1d9e0;border-radius:6px">'
            "</iframe>"
        )

    def _repr_html_(self) -> str:
        return self.iframe()


def explore(
    trace: Trace, *, fold: int = FOLD_MIN, host_engine: bool = False, ops: str = "folded"
) -> Explorer:
    """The explorer page for `trace`; runs of `fold` or more identical blocks start folded.

    `host_engine`: for a page framed (srcdoc) in a host that holds the engine once, as the
    report does with `engine_element()`; the page then loads ELK from its parent instead
    of carrying its own 1.6 MB copy."""
    if ops not in MODES:
        raise ArchvizError(f"unknown ops mode {ops!r}; choose one of {', '.join(MODES)}")
    data = {**page_data(trace, fold=fold), "ops": ops}
    page = (
        environment()
        .get_template("explore.html.j2")
        .render(
            title=f"{trace.model}: architecture explorer",
            data_json=Markup(script_json(data)),
            elk_source=None if host_engine else Markup(elk_source()),
            elk_version=ELK_VERSION,
            elk_element_id=ELK_ELEMENT_ID,
            time_overlays=overlay_options(),
        )
    )
    return Explorer(model=trace.model, html=page, standalone=not host_engine)


def engine_element() -> Markup:
    """The engine, once, for a host page: inert text that framed explorers run themselves.
    `elk_source` has checked that it cannot close the element."""
    return Markup(
        f"<!-- Layout engine of the explorers below: elkjs {ELK_VERSION} (Eclipse Layout "
        "Kernel), lib/elk.bundled.js unmodified, EPL-2.0 (or GPL-3.0-or-later); source: "
        "https://github.com/kieler/elkjs -->\n"
        f'<script type="text/plain" id="{ELK_ELEMENT_ID}">{elk_source()}</script>'
    )


def script_json(data: Any) -> str:
    """JSON that is safe inside <script>: no `</script>`, `<!--`, or JS line separators."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _SCRIPT_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


@cache
def elk_source() -> str:
    """The vendored elkjs bundle, checked to be safe to inline in a <script> element."""
    path = ELK_DIR / "elk.bundled.js"
    if not path.is_file():
        raise ArchvizError(f"archviz's vendored layout engine is missing ({path})")
    source = path.read_text(encoding="utf-8")
    lowered = source.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise ArchvizError(f"{path} cannot be inlined: it contains '</script' or '<!--'")
    return source
