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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from archviz.analysis.fold import MODES, fold_ops
from archviz.errors import ArchvizError
from archviz.options import MAX_NODES  # never more nodes to Graphviz: it folds shallower
from archviz.records import Trace
from archviz.render.atomic import write_atomic
from archviz.render.diagram.draw import draw
from archviz.render.diagram.run_dot import DOT_TIMEOUT, run_dot
from archviz.render.diagram.view import View, build_view

LEVELS = ("stage", "block", "layer")  # ResNet presets: depth 1, 2 and 3
FORMATS = ("svg", "png", "pdf", "dot")  # the output file's suffix chooses one
INSTALL_HINT = (
    "install Graphviz to render images: apt-get install graphviz (macOS: brew install graphviz)"
)


@dataclass(frozen=True)
class Diagram:
    """DOT source plus rendering; shows itself as SVG in Jupyter."""

    source: str
    notes: tuple[str, ...] = ()  # what was folded to stay within the node budget
    timeout: float = DOT_TIMEOUT  # seconds `dot` may take before it is stopped

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
        return run_dot(self.source, fmt, self.timeout)

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
    trace: Trace,
    level: str | None = None,
    *,
    depth: int | None = None,
    collapse: bool = True,
    ops: str = "folded",
    max_nodes: int = MAX_NODES,
) -> Diagram:
    """A diagram of `trace` with modules opened down to `depth`.

    Without `depth`, `level` (stage, block, layer; default stage for a ResNet) picks a
    preset of the same drawing: depth 1, 2 or 3, every block drawn, a ResNet's stem and
    head as parts. Neither, for a model that is not ResNet-like: `detail_depth`.
    With `collapse`, runs of structurally identical siblings are drawn once as "x N".
    `ops="folded"` draws data-moving ops (view, permute, getitem) on edges and runs of
    ops as one node (archviz.analysis.fold); "all" draws every op. A view of more than
    `max_nodes` nodes is drawn shallower, and `Diagram.notes` says so.
    """
    if level is not None and depth is not None:
        raise ArchvizError("give a level or a depth, not both")
    if ops not in MODES:
        raise ArchvizError(f"unknown ops mode {ops!r}; choose one of {', '.join(MODES)}")
    if max_nodes < 1:
        raise ArchvizError(f"the node budget must be 1 or more; got {max_nodes}")
    shown = fold_ops(trace).trace if ops == "folded" else trace
    if level is None and depth is None and trace.architecture is None:
        depth = detail_depth(shown)  # no preset: the deepest view that stays readable
    if depth is None:
        level = level or "stage"
        if level not in LEVELS:
            raise ArchvizError(
                f"unknown diagram level {level!r}; choose one of {', '.join(LEVELS)}"
            )
        depth = LEVELS.index(level) + 1
        parts_open: bool | None = depth >= 3 if trace.architecture is not None else None
        view = build_view(shown, depth, collapse=False, parts_open=parts_open)
        drawn, view, notes = _within(trace, shown, view, depth, max_nodes, f"--level {level}")
        return Diagram(draw(drawn, view, f"{level} level").source, notes)
    if depth < 1:
        raise ArchvizError(f"diagram depth must be 1 or more; got {depth}")
    view = build_view(shown, depth, collapse)
    drawn, view, notes = _within(trace, shown, view, depth, max_nodes, f"--depth {depth}")
    return Diagram(draw(drawn, view, f"depth {view.depth}").source, notes)


def fits(view: View, most: int) -> bool:
    """At most `most` nodes, and long edges that make at most 4 x `most` of Graphviz's
    virtual nodes (one per rank an edge crosses): RAFT's 12 refinement steps all read one
    correlation pyramid, and 150 nodes with those edges kept `dot` busy for minutes."""
    return len(view.units) <= most and long_edges(view) <= 4 * most


def long_edges(view: View) -> int:
    """The ranks edges skip, ranks being longest paths in run order."""
    rank = _ranks(view)
    return sum(max(0, rank[d] - rank[s] - 1) for s, d in view.edges if s in rank and d in rank)


def widest(view: View) -> int:
    """The most nodes side by side on one rank: what decides a diagram's width."""
    return max(Counter(_ranks(view).values()).values(), default=0)


def _ranks(view: View) -> dict[str, int]:
    rank: dict[str, int] = {}
    into: dict[str, list[str]] = {}
    for src, dst in view.edges:
        into.setdefault(dst, []).append(src)
    for uid in view.units:
        rank[uid] = max((rank[p] + 1 for p in into.get(uid, ()) if p in rank), default=0)
    return rank


def _within(
    trace: Trace, shown: Trace, view: View, depth: int, most: int, asked: str
) -> tuple[Trace, View, tuple[str, ...]]:
    """The view itself, or the deepest shallower one (repeats collapsed) that fits the
    budget, then the same with every run of ops one node; with a note saying so."""
    if fits(view, most):
        return shown, view, ()
    coarse = fold_ops(trace, coarse=True).trace
    tries = [(shown, d) for d in range(depth, 0, -1)] + [(coarse, d) for d in range(depth, 0, -1)]
    for drawn, shallower in tries:
        smaller = build_view(drawn, shallower, collapse=True)
        if fits(smaller, most):
            break
    else:
        raise ArchvizError(
            f"{trace.model} has {len(smaller.units)} nodes even at depth 1, over the budget "
            f"of {most}; draw it with --max-nodes {len(smaller.units)}"
        )
    ops = ", every run of ops one node" if drawn is coarse else ""
    note = (
        f"{asked} of {trace.model} ({len(view.units)} nodes, long edges over "
        f"{long_edges(view)} ranks) is over the budget of {most} nodes and {4 * most} "
        f"ranks: drew depth {shallower} "
        f"({len(smaller.units)} nodes, repeats collapsed{ops}); "
        f"--max-nodes {max(len(view.units), long_edges(view) // 4 + 1)} draws it all"
    )
    return drawn, smaller, (note,)


def detail_depth(trace: Trace, most: int = 70, wide: int = 8) -> int:
    """The deepest depth whose diagram still has at most `most` nodes (repeats collapsed)
    and at most `wide` side by side, so it reads at page width: the report's detailed view
    of a model that has no ResNet preset (Mask R-CNN's five pyramid levels stay closed)."""
    best, previous = 1, -1
    for depth in range(1, 12):
        view = build_view(trace, depth)
        count = len(view.units)
        too_wide = depth > 1 and widest(view) > wide
        if not fits(view, most) or too_wide or count == previous:
            break
        best, previous = depth, count
    return best
