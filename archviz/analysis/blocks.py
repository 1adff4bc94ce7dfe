"""The repeated blocks of a model: its transformer layers, read from the observed graph.

A stack is a run of consecutive sibling calls of one module type that each hold weighted
layers, two or more of them structurally identical (GPT-2's 12 GPT2Blocks under
`transformer.h`, T5's encoder and decoder blocks). Only the outermost stacks count: a
block's own sub-layers are not stacks of the model. Nothing here reads a class name for
meaning: blocks are found by where they ran and compared by structural signature (type,
parameter shapes, edges).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from archviz.analysis.depth import Depth
from archviz.analysis.graph import groups, record_ids, signatures, top_level
from archviz.records import Trace

if TYPE_CHECKING:
    from archviz.analysis.explain import DepthExplanation

E = TypeVar("E", bound="DepthExplanation")
# The config's figures that publish a block count (see archviz/models/facts.py).
PUBLISHED = ("layers", "decoder_layers")

MAJOR = 0.1  # a stack holding at least this share of the parameters is one of the model's


@dataclass(frozen=True)
class Stack:
    """One run of repeated blocks: `count` calls of `type` under `where`."""

    where: str  # the blocks' common parent name: "transformer.h", "encoder.block"
    type: str  # "GPT2Block"
    count: int
    identical: int  # blocks structurally identical to the most common one
    params_each: int  # parameters of the first block
    flops_each: int  # FLOPs of the first block's call
    params: int  # all the blocks' parameters
    flops: int  # all the blocks' FLOPs
    ids: tuple[str, ...]  # graph ids of the blocks, in run order

    @property
    def text(self) -> str:
        """'12 x GPT2Block'."""
        return f"{self.count} x {self.type}"


def repeated_blocks(trace: Trace, major: float = MAJOR) -> tuple[Stack, ...]:
    """The outermost stacks, in run order, holding at least `major` of the parameters."""
    tree = groups(trace)
    index = record_ids(trace)
    sig = signatures(trace)
    records = trace.records
    found: list[Stack] = []

    def weighted(gid: str) -> bool:
        rec = records[index[gid]] if gid in index else None
        return rec is not None and rec.params_total > 0 and rec.macs_total > 0

    def visit(kids: list[str]) -> None:
        for run in _runs(kids, tree):
            alike = Counter(sig(k) for k in run).most_common(1)[0][1]
            if alike >= 2 and all(weighted(k) for k in run):
                found.append(_stack(trace, run, index, sig))
            else:
                for gid in run:
                    visit(list(tree[gid].children))

    visit([k for k in top_level(trace) if k in tree])
    total = trace.totals.params
    return tuple(s for s in found if total and s.params >= major * total)


def _runs(kids: list[str], tree: dict) -> list[list[str]]:
    """Consecutive sibling groups of one type; nodes that are not groups are skipped."""
    runs: list[list[str]] = []
    for gid in (k for k in kids if k in tree):
        if runs and tree[runs[-1][0]].type == tree[gid].type:
            runs[-1].append(gid)
        else:
            runs.append([gid])
    return runs


def _stack(trace: Trace, run: list[str], index: dict[str, int], sig) -> Stack:
    rows = [trace.records[index[gid]] for gid in run]
    shapes = Counter(sig(gid) for gid in run)
    parent = rows[0].name.rpartition(".")[0]
    return Stack(
        where=parent,
        type=rows[0].type,
        count=len(run),
        identical=shapes.most_common(1)[0][1],
        params_each=rows[0].params_total,
        flops_each=rows[0].flops_total,
        params=sum(r.params_total for r in rows if r.call == 0),
        flops=sum(r.flops_total for r in rows),
        ids=tuple(run),
    )


def with_blocks(result: Trace, explanation: E, found: Depth) -> E:
    """The explanation with the model's repeated blocks, beside its weighted depth.

    The block count its authors publish (the config's num_hidden_layers and decoder
    layers, else the observed repeat count) is what a transformer is named by; depth
    counts the weighted layers on the main path through those blocks.
    """
    stacks = repeated_blocks(result)
    if not stacks:
        return explanation
    config = result.extra.get("config", {})
    published = tuple((key, config[key]) for key in PUBLISHED if isinstance(config.get(key), int))
    several = len(stacks) > 1
    formula = " + ".join(s.text + (f" ({s.where})" if several else "") for s in stacks)
    on_path = [
        sum(1 for i in found.main_path if any(i.startswith(b + ".") for b in s.ids)) for s in stacks
    ]
    each = ", ".join(f"{n} in the {s.text}" for s, n in zip(stacks, on_path, strict=True))
    if len(published) == 2:
        source = (
            f"the config publishes {published[0][1]} encoder and {published[1][1]} decoder layers"
        )
    elif published:
        source = f"the config publishes {published[0][1]} layers (num_hidden_layers)"
    else:
        source = "counted from the trace"
    sentence = (
        f"blocks: {formula}; {source}. Depth {found.depth} counts the weighted layers on the "
        f"main path, {each}."
    )
    return replace(
        explanation,
        stacks=stacks,
        blocks_formula=formula,
        published_blocks=published,
        blocks_sentence=sentence,
    )
