"""The explorer page's data: boxes (module calls, ops, groups, folded runs), edges both ways.

Every node of the trace is a box, so the page can show everything (`ops: all`). By
default it shows the folded graph (archviz.analysis.fold): glue ops are marked (`g`) and
hidden, their edges come from the folded edge list (`fedges`, with the ops they carry);
a run of ops is an "ops" box holding them. A run of identical sibling blocks gets a
"run" box; opened, it shows its first member, marked "x N", and the other members' boxes
name their counterpart in the first (`a`) so their edges land on what is drawn. An edge
between two members of one run (`x`) is left out then: drawn once, it would loop back.
"""

from __future__ import annotations

from typing import Any

from archviz.analysis import graph
from archviz.analysis.fold import Folding, fold_ops
from archviz.errors import ArchvizError
from archviz.records import Edge, ModuleRecord, Node, Trace
from archviz.render.explore_roofline import add_predicted
from archviz.render.units import shape, si

FOLD_MIN = 6  # fold a run of identical sibling blocks into one "x N" box from this length


def page_data(trace: Trace, fold: int = FOLD_MIN) -> dict[str, Any]:
    """The page's JSON: boxes in execution order with their parent, edges between leaves."""
    if fold < 2:
        raise ArchvizError(f"fold must be at least 2 (a run of one block is no run), got {fold}")
    if not trace.nodes:
        raise ArchvizError(
            f"the trace of {trace.model} has no dataflow graph; trace it with archviz.trace"
        )
    folding = fold_ops(trace)
    boxes = _Boxes(trace)
    for node in trace.nodes:
        boxes.add_node(node, node.id in folding.glue)
    boxes.fold_runs(fold)
    boxes.add_op_runs(folding)
    boxes.align_runs()
    add_predicted(boxes.rows, trace)  # the explorer's colour-by-predicted-time overlay
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
        "edges": boxes.edges(trace.edges),
        "fedges": boxes.edges(folding.trace.edges),
    }


class _Boxes:
    """Builds the box rows: groups as their first node appears, then nodes, then runs."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.groups = graph.groups(trace)
        self.rows: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.runs: list[list[int]] = []  # each folded run's members, as row indices

    def add_node(self, node: Node, glue: bool = False) -> None:
        for group_id in node.scope:
            if group_id not in self.index:
                group = self.groups[group_id]
                record = self.trace.records[group.record] if group.record is not None else None
                self._add(group_id, "group", group.type, group.parent, record)
        record = self.trace.records[node.record] if node.record is not None else None
        parent = node.scope[-1] if node.scope else None
        row = self._add(node.id, node.kind, node.type, parent, record)
        if glue:
            row["g"] = 1
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
        self.runs.append([self.index[g] for g in run])

    def add_op_runs(self, folding: Folding) -> None:
        """An "ops" box for each run of ops the folding made one node, holding its ops."""
        for run_id, ops in folding.runs.items():
            members = [self.rows[self.index[op]] for op in ops]
            node = next(n for n in folding.trace.nodes if n.id == run_id)
            row = {"id": run_id, "k": "ops", "t": node.type, "p": members[0]["p"], "n": len(ops)}
            row["out"] = shape(node.output_shapes)
            self.index[run_id] = len(self.rows)
            self.rows.append(row)
            for member in members:
                member["p"] = self.index[run_id]

    def align_runs(self) -> None:
        """Each box of a run's later member names its counterpart in the first (`a`)."""
        kids: dict[int, list[int]] = {}
        for i, row in enumerate(self.rows):
            kids.setdefault(row["p"], []).append(i)

        def align(first: int, other: int) -> None:
            self.rows[other]["a"] = first
            for a, b in zip(kids.get(first, []), kids.get(other, []), strict=False):
                align(a, b)

        for members in self.runs:
            for other in members[1:]:
                align(members[0], other)

    def edges(self, edges: tuple[Edge, ...]) -> list[list[Any]]:
        """[src, dst, shape, 1 if between two members of one run else 0, ops carried]."""
        member: dict[int, tuple[int, int]] = {}
        for members in self.runs:
            for k, i in enumerate(members):
                member[i] = (self.rows[i]["p"], k)
        out = []
        for e in edges:
            if e.src not in self.index or e.dst not in self.index:
                continue
            s, d = self.index[e.src], self.index[e.dst]
            row = [s, d, shape(e.shape), int(self._across(s, d, member))]
            via = getattr(e, "via", ())  # a folded edge's data-moving ops
            if via:
                row.append(" · ".join(dict.fromkeys(via)))
            out.append(row)
        return out

    def _across(self, s: int, d: int, member: dict[int, tuple[int, int]]) -> bool:
        a, b = self._runs_of(s, member), self._runs_of(d, member)
        return any(a[r] != b[r] for r in a.keys() & b.keys())

    def _runs_of(self, i: int, member: dict[int, tuple[int, int]]) -> dict[int, int]:
        out = {}
        while i >= 0:
            if i in member:
                run, k = member[i]
                out[run] = k
            i = self.rows[i]["p"]
        return out
