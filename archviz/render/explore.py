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

from markupsafe import Markup

from archviz.analysis import graph
from archviz.errors import ArchvizError
from archviz.records import ModuleRecord, Node, Trace
from archviz.render.atomic import write_atomic
from archviz.render.explore_roofline import add_predicted, overlay_options
from archviz.render.templates import environment
from archviz.render.units import shape, si

ELK_DIR = Path(__file__).resolve().parent.parent / "vendor" / "elk"
ELK_VERSION = "0.12.1"
ELK_ELEMENT_ID = "archviz-elk"  # the host's <script type="text/plain"> holding the engine
FOLD_MIN = 6  # fold a run of identical sibling blocks into one "x N" box from this length
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


def explore(trace: Trace, *, fold: int = FOLD_MIN, host_engine: bool = False) -> Explorer:
    """The explorer page for `trace`; runs of `fold` or more identical blocks start folded.

    `host_engine`: for a page framed (srcdoc) in a host that holds the engine once, as the
    report does with `engine_element()`; the page then loads ELK from its parent instead
    of carrying its own 1.6 MB copy."""
    data = page_data(trace, fold=fold)
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


def page_data(trace: Trace, fold: int = FOLD_MIN) -> dict[str, Any]:
    """The page's JSON: boxes in execution order with their parent, edges between leaves."""
    if fold < 2:
        raise ArchvizError(f"fold must be at least 2 (a run of one block is no run), got {fold}")
    if not trace.nodes:
        raise ArchvizError(
            f"the trace of {trace.model} has no dataflow graph; trace it with archviz.trace"
        )
    boxes = _Boxes(trace)
    for node in trace.nodes:
        boxes.add_node(node)
    boxes.fold_runs(fold)
    add_predicted(boxes.rows, trace)
    edges = [
        [boxes.index[e.src], boxes.index[e.dst], shape(e.shape)]
        for e in trace.edges
        if e.src in boxes.index and e.dst in boxes.index
    ]
    t = trace.totals
    return {
        "model": trace.model,
        "input": shape(trace.input_shapes),
        "totals": {
            "macs": t.macs,
            "params": t.params,
            "elementwise": t.elementwise_flops,
            # every module node's output: Totals counts leaf modules only, and a module whose
            # children never ran (nn.MultiheadAttention) is a node here
            "act": sum(row.get("act", 0) for row in boxes.rows if row["k"] == "module"),
        },
        "headline": f"{t.params:,} parameters · {si(t.macs, 'MACs')} · "
        f"{si(t.elementwise_flops)} elementwise FLOPs · input {shape(trace.input_shapes)}",
        "boxes": boxes.rows,
        "edges": edges,
    }


class _Boxes:
    """Builds the box rows: groups as their first node appears, then nodes, then runs."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.groups = graph.groups(trace)
        self.rows: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}

    def add_node(self, node: Node) -> None:
        for group_id in node.scope:
            if group_id not in self.index:
                group = self.groups[group_id]
                record = self.trace.records[group.record] if group.record is not None else None
                self._add(group_id, "group", group.type, group.parent, record)
        record = self.trace.records[node.record] if node.record is not None else None
        parent = node.scope[-1] if node.scope else None
        row = self._add(node.id, node.kind, node.type, parent, record)
        if record is None:
            row["out"] = shape(node.output_shapes)
        elif node.kind == "module":
            self._add_act(node.scope, record.output_bytes, row)

    def _add(
        self, box_id: str, kind: str, type_: str, parent: str | None, record: ModuleRecord | None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": box_id,
            "k": kind,
            "t": type_,
            "p": self.index[parent] if parent is not None else -1,
        }
        if record is not None:
            row.update(
                {
                    "in": shape(record.input_shapes),
                    "out": shape(record.output_shapes),
                    "params": record.params_total,
                    "macs": record.macs_total,
                    "ew": record.elementwise_flops_total,
                    "act": 0,
                }
            )
        self.index[box_id] = len(self.rows)
        self.rows.append(row)
        return row

    def _add_act(self, scope: tuple[str, ...], nbytes: int, row: dict[str, Any]) -> None:
        """Activation bytes: a leaf's output, summed into every enclosing group."""
        row["act"] = nbytes
        for group_id in scope:
            self.rows[self.index[group_id]]["act"] += nbytes

    def fold_runs(self, fold: int) -> None:
        """Give each long run of identical sibling groups a "run" box as their new parent."""
        sig = graph.signatures(self.trace)
        siblings = [graph.top_level(self.trace), *(g.children for g in self.groups.values())]
        for items in siblings:
            for run in graph.repeat_runs(self.trace, list(items), sig):
                if len(run) >= fold:
                    self._add_run(run)

    def _add_run(self, run: list[str]) -> None:
        members = [self.rows[self.index[g]] for g in run]
        first = members[0]
        row = {
            "id": f"{run[0]}..{run[-1]}",
            "k": "run",
            "t": first["t"],
            "p": first["p"],
            "n": len(run),
            "in": first.get("in", "-"),
            "out": members[-1].get("out", "-"),
            **{key: sum(m.get(key, 0) for m in members) for key in ("params", "macs", "ew", "act")},
        }
        self.index[row["id"]] = len(self.rows)
        self.rows.append(row)
        for member in members:
            member["p"] = self.index[row["id"]]
