"""Rows for containers that did not run but hold modules that did, so depth is the tree's.

A forward that iterates an nn.ModuleList, reads an nn.ModuleDict, or calls a Sequential's
children one by one never calls the container, so hooks see its children and not it:
`ml.0` would sit at depth 1, under nothing. torchinfo shows such a container as a row at
its depth with its children beneath; so does archviz. The row is marked `called=False`,
has no shapes and no work of its own, and its `*_total` figures are those of the calls
listed beneath it, so a table cut at its depth still adds up.

Like torchinfo, a container row is shown again wherever its children resume after another
row came between (a shared module called inside the loop, say); the repeats have
`call` 1, 2, ... and hold no parameters, so parameters are listed once. The dataflow
graph (nodes, edges) is untouched: explain, the diagrams and the explorer read that.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from archviz.records import ModuleRecord

Counts = tuple[int, int, int, int]  # own, subtree, subtree trainable, subtree buffers
_SUMS = ("macs_total", "flops_total", "elementwise_flops_total")


def with_tree_rows(
    records: list[ModuleRecord], tree: dict[str, tuple[str, Counts]], calls: set[str]
) -> tuple[list[ModuleRecord], list[int]]:
    """The records (in call order) with container rows inserted and depths made the tree's,
    and where each input record went."""
    out: list[ModuleRecord] = []
    moved: list[int] = []
    shown: list[str] = []  # what the table shows at each depth right now
    depths: list[int] = []  # the new depth of the latest record at each call depth
    repeats: Counter[str] = Counter()
    for record in records:
        base = depths[record.depth - 1] + 1 if record.depth else 0
        between = uncalled_between(record, tree, calls)
        parent = record.parent
        for offset, name in enumerate(between):
            depth = base + offset
            if len(shown) <= depth or shown[depth] != name:
                del shown[depth:]
                shown.append(name)
                out.append(_container_row(name, tree[name], depth, parent, repeats[name]))
                repeats[name] += 1
            parent = name
        depth = base + len(between)
        del depths[record.depth :]
        depths.append(depth)
        del shown[depth:]
        shown.append(f"{record.name}:{record.call}")
        moved.append(len(out))
        out.append(replace(record, depth=depth) if depth != record.depth else record)
    return _with_sums(out), moved


def uncalled_between(
    record: ModuleRecord, tree: dict[str, tuple[str, Counts]], calls: set[str]
) -> list[str]:
    """Containers between the record's caller and it in the module tree that never ran."""
    if record.parent is None:
        return []
    prefix = f"{record.parent}." if record.parent else ""
    if not record.name.startswith(prefix):
        return []  # a shared module called from elsewhere: it sits under its caller
    parts = record.name[len(prefix) :].split(".")
    names = [prefix + ".".join(parts[:i]) for i in range(1, len(parts))]
    return [n for n in names if n in tree and n not in calls]


def _container_row(
    name: str, entry: tuple[str, Counts], depth: int, parent: str | None, repeat: int
) -> ModuleRecord:
    kind, (own, total, trainable, buffers) = entry
    return ModuleRecord(
        name=name,
        type=kind,
        depth=depth,
        parent=parent,
        stage=None,
        block=None,
        call=repeat,
        input_shapes=None,
        output_shapes=None,
        dtype=None,
        is_leaf=False,
        params=own if repeat == 0 else 0,
        params_total=total,
        trainable_total=trainable,
        buffers_total=buffers,
        macs=0,
        macs_total=0,
        flops=0,
        flops_total=0,
        elementwise_flops=0,
        elementwise_flops_total=0,
        output_bytes=0,
        container=True,
        called=False,
    )


def _with_sums(rows: list[ModuleRecord]) -> list[ModuleRecord]:
    """Each container row's totals: the sums of the rows directly beneath it (last first,
    so a nested container's sums are ready before its parent's)."""
    for i in range(len(rows) - 1, -1, -1):
        if rows[i].called:
            continue
        sums = [0, 0, 0]
        for row in rows[i + 1 :]:
            if row.depth <= rows[i].depth:
                break
            if row.depth == rows[i].depth + 1:
                for at, key in enumerate(_SUMS):
                    sums[at] += getattr(row, key)
        macs, flops, elementwise = sums
        rows[i] = replace(
            rows[i], macs_total=macs, flops_total=flops, elementwise_flops_total=elementwise
        )
    return rows
