"""Graphviz diagrams of a Trace's dataflow graph, never of a model.

`diagram(trace, depth=N)` draws modules opened down to depth N (diagram_view.py decides
what is drawn, diagram_draw.py writes DOT with the `graphviz` package); the ResNet levels
stage, block and layer are presets of it. `Diagram` renders with Graphviz's `dot` only
when an image is asked for. The same Trace always gives the same bytes (ids from the
graph's own ids, no timestamps), so diagrams in a docs repo diff cleanly. Labels are plain
text, escaped in `_diagram_parts.text` and nowhere else.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import graphviz

from archviz.errors import ArchvizError
from archviz.records import Trace
from archviz.render.atomic import write_atomic
from archviz.render.diagram.draw import draw
from archviz.render.diagram.view import build_view

LEVELS = ("stage", "block", "layer")  # ResNet presets: depth 1, 2 and 3
FORMATS = ("svg", "png", "pdf", "dot")  # the output file's suffix chooses one
INSTALL_HINT = (
    "install Graphviz to render images: apt-get install graphviz (macOS: brew install graphviz)"
)


@dataclass(frozen=True)
class Diagram:
    """DOT source plus rendering; shows itself as SVG in Jupyter."""

    source: str

    def render(self, fmt: str) -> bytes:
        """The diagram as `fmt` bytes, rendered by Graphviz's `dot`."""
        if fmt not in FORMATS:
            raise ArchvizError(
                f"unknown diagram format {fmt!r}; choose one of {', '.join(FORMATS)}"
            )
        if fmt == "dot":
            return self.source.encode()
        if not has_dot():
            raise ArchvizError(f"Graphviz's `dot` is not on the PATH; {INSTALL_HINT}")
        try:
            return graphviz.pipe("dot", fmt, self.source.encode(), quiet=True)
        except graphviz.CalledProcessError as exc:  # a bug here, not the user's: say what dot said
            raise ArchvizError(
                f"dot failed: {exc.stderr.decode(errors='replace').strip()}"
            ) from None

    def svg(self) -> str:
        return self.render("svg").decode()

    def _repr_svg_(self) -> str:
        return self.svg()

    def save(self, path: str | Path) -> Path:
        """Write the format the suffix names (.svg, .png, .pdf, .dot).

        Without `dot`, an image cannot be made: the DOT source is written beside it (same
        name, .dot) so nothing is lost, and ArchvizError says how to install Graphviz.
        """
        target = Path(path)
        fmt = target.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ArchvizError(
                f"cannot tell the format of {target.name!r}; end it in "
                + ", ".join(f".{f}" for f in FORMATS)
            )
        if fmt != "dot" and not has_dot():
            fallback = target.with_suffix(".dot")
            write_atomic(fallback, self.source)
            raise ArchvizError(
                f"Graphviz's `dot` is not on the PATH; wrote {fallback}; {INSTALL_HINT}"
            )
        write_atomic(target, self.render(fmt))
        return target


def has_dot() -> bool:
    """Whether Graphviz's `dot` is on the PATH (needed for images, not for .dot files)."""
    return shutil.which("dot") is not None


def diagram(
    trace: Trace, level: str | None = None, *, depth: int | None = None, collapse: bool = True
) -> Diagram:
    """A diagram of `trace` with modules opened down to `depth`.

    Without `depth`, `level` (stage, block, layer; default stage for a ResNet) picks a
    preset of the same drawing: depth 1, 2 or 3, every block drawn, a ResNet's stem and
    head as parts. Neither, for a model that is not ResNet-like: `detail_depth`.
    With `collapse`, runs of structurally identical siblings are drawn once as "x N".
    """
    if level is not None and depth is not None:
        raise ArchvizError("give a level or a depth, not both")
    if level is None and depth is None and trace.architecture is None:
        depth = detail_depth(trace)  # no preset: the deepest view that stays readable
    if depth is None:
        level = level or "stage"
        if level not in LEVELS:
            raise ArchvizError(
                f"unknown diagram level {level!r}; choose one of {', '.join(LEVELS)}"
            )
        depth = LEVELS.index(level) + 1
        parts_open: bool | None = depth >= 3 if trace.architecture is not None else None
        view = build_view(trace, depth, collapse=False, parts_open=parts_open)
        return Diagram(draw(trace, view, f"{level} level").source)
    if depth < 1:
        raise ArchvizError(f"diagram depth must be 1 or more; got {depth}")
    return Diagram(draw(trace, build_view(trace, depth, collapse), f"depth {depth}").source)


def detail_depth(trace: Trace, most: int = 70) -> int:
    """The deepest depth whose diagram still has at most `most` nodes (repeats collapsed):
    the report's detailed view of a model that has no ResNet preset."""
    best, previous = 1, -1
    for depth in range(1, 12):
        count = len(build_view(trace, depth).units)
        if count > most or count == previous:
            break
        best, previous = depth, count
    return best
