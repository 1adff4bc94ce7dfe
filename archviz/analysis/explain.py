"""explain(): why [3, 4, 6, 3] is ResNet-50 (and VGG-16 16), derived from the traced graph.

A network's depth is the number of weighted layers on its longest input-to-output path
(archviz/analysis/depth.py derives it, and its formula, from the observed dataflow graph). For
ResNet-like models the per-stage table and the paper's stride view are added: He et al.
(2015) name a ResNet by stem + convs per block x blocks + classifier, and the block list
counts blocks, not layers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from archviz.analysis.blocks import Stack, with_blocks
from archviz.analysis.depth import Depth, Term, derive_depth
from archviz.analysis.graph import call_id, groups, record_ids, top_level
from archviz.analysis.paper import PaperView, paper_view
from archviz.errors import ArchvizError
from archviz.models import resolve_model
from archviz.records import ModuleRecord, Shape, ShapeTree, Trace, first_shape
from archviz.tracing.trace import trace

BESIDE_REASON = (
    "beside the main path (a shortcut or a parallel branch); depth counts the longest path"
)


@dataclass(frozen=True)
class StageRow:
    """One row of the per-stage table: stem, layer1..layer4, head."""

    stage: str
    blocks: int  # 0 for stem and head
    convs_per_block: int | None  # None for stem and head, or if blocks differ
    weighted_layers: int
    output_shape: Shape | None
    params: int
    macs: int


@dataclass(frozen=True)
class DepthExplanation:
    """Why a model has the depth in its name, from its own trace and graph."""

    model: str
    depth: int
    formula: str  # "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50", "13 + 3 = 16"
    terms: tuple[Term, ...]  # the formula's terms, each with its unit and where it sits
    main_path: tuple[str, ...]  # the weighted layers counted, in order
    beside: tuple[str, ...]  # weighted layers off the main path: listed, not counted
    not_counted: tuple[tuple[str, int, str], ...]  # (module type, calls, why)
    params: int
    macs: int
    input_size: ShapeTree
    # ResNet-like models only (a stem, stages of residual blocks, a head):
    block: str | None = None
    layers: tuple[int, ...] = ()
    convs_per_block: int | None = None  # None when blocks hold different numbers of convs
    stem_layers: int = 0
    head_layers: int = 0
    blocks_answer: str = ""  # the "16 blocks, not 50 layers" sentence
    stages: tuple[StageRow, ...] = ()
    shortcuts: tuple[str, ...] = ()  # the projection convs beside the path
    paper: PaperView | None = None
    notes: tuple[str, ...] = ()
    # Models built of repeated blocks (transformers), when there is no ResNet stage view:
    stacks: tuple[Stack, ...] = ()  # "12 x GPT2Block" under transformer.h
    blocks_formula: str = ""  # "12 x GPT2Block", "6 x T5Block + 6 x T5Block"
    published_blocks: tuple[tuple[str, int], ...] = ()  # the config's ("layers", 12)...
    blocks_sentence: str = ""

    def text(self) -> str:
        """Formula, the blocks sentence, the stage table, and what is not counted."""
        from archviz.render.explain import explanation_text

        return explanation_text(self)

    def _repr_html_(self) -> str:
        from archviz.render.explain import explanation_html

        return explanation_html(self)

    def __str__(self) -> str:
        return self.text()

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(asdict(self), indent=indent)


def explain(
    model_or_name: str | nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    inputs: Any = None,
    dtype: torch.dtype | None = None,
    paper: bool = True,
    name: str | None = None,
    device: str = "meta",
) -> DepthExplanation:
    """Trace the model (on the meta device unless `device` says otherwise: a detector's
    data-dependent steps need cpu) and count its weighted layers.

    Without `input_size` or `inputs` the model takes its own input (1x3x224x224 for an
    image classifier, 1x128 token ids for a transformer: archviz.models.inputs). With
    `paper`, an archviz ResNet is traced once more with the other stride placement.
    """
    size = check_size(input_size) if input_size is not None else None
    model = build(model_or_name, device)
    label = name or (model_or_name if isinstance(model_or_name, str) else type(model).__name__)
    result = trace(model, size, inputs=inputs, device=device, dtype=dtype, name=label)
    explanation = explain_trace(result)
    if paper:
        explanation = replace(explanation, paper=paper_view(model, result))
    return explanation


def check_size(input_size: Sequence[int]) -> Shape:
    """One input shape of positive integers, batch first (N x C x H x W for images)."""
    size = tuple(input_size)
    if not size or not all(isinstance(d, int) and d > 0 for d in size):
        raise ArchvizError(f"input must be positive dims such as 1x3x224x224; got {size}")
    return size


def build(spec: str | nn.Module, device: str = "meta") -> nn.Module:
    """A registry name is built on the meta device (no weights allocated or initialised),
    or, to be traced elsewhere, as the registry builds it (trace moves it)."""
    if isinstance(spec, nn.Module):
        return spec
    if str(device) != "meta":
        return resolve_model(spec)
    with torch.device("meta"):
        return resolve_model(spec)


def explain_trace(result: Trace) -> DepthExplanation:
    """The depth derivation from a Trace alone (compare and report reuse traces this way)."""
    found = derive_depth(result)
    first = first_shape(result.input_shapes)
    explanation = DepthExplanation(
        model=result.model,
        depth=found.depth,
        formula=found.formula,
        terms=found.terms,
        main_path=found.main_path,
        beside=found.beside,
        not_counted=_not_counted(result, found),
        params=result.totals.params,
        macs=result.totals.macs,
        input_size=first,
    )
    arch = result.architecture
    if arch is None or not _has_blocks(result, arch.stages):
        parts = _parts_note(result, found)  # a detector's backbone and heads, named
        explanation = with_blocks(result, explanation, found)
        return replace(explanation, notes=(*explanation.notes, parts)) if parts else explanation
    return _with_stages(result, explanation, found)


def _parts_note(result: Trace, found: Depth) -> str:
    """'backbone: backbone (BackboneWithFPN: 51 on the main path, 10 beside it); heads:
    rpn (...)'. The first top-level module the main path runs through is the backbone; the
    other top-level modules with weighted layers are heads. Read from the graph, not names."""
    tree = groups(result)
    nodes = {n.id: n for n in result.nodes}
    on_path: Counter[str] = Counter()
    beside: Counter[str] = Counter()
    for ids, counter in ((found.main_path, on_path), (found.beside, beside)):
        for i in ids:
            counter[(*nodes[i].scope, i)[0]] += 1
    parts = [item for item in top_level(result) if item in tree and on_path[item] + beside[item]]
    if len(parts) < 2:
        return ""
    trunk = next((item for item in parts if on_path[item]), parts[0])

    def said(item: str) -> str:
        where = [f"{on_path[item]} on the main path"] if on_path[item] else []
        where += [f"{beside[item]} beside it"] if beside[item] else []
        return f"{item} ({tree[item].type}: {', '.join(where)})"

    heads = ", ".join(said(item) for item in parts if item != trunk)
    return f"backbone: {said(trunk)}; heads: {heads}"


def _with_stages(result: Trace, e: DepthExplanation, found: Depth) -> DepthExplanation:
    """Add the ResNet view: per-stage rows of the main path's layers, the blocks sentence."""
    arch = result.architecture
    assert arch is not None
    index = record_ids(result)
    main = [result.records[index[i]] for i in found.main_path if i in index]
    rows = _stage_rows(result, main)
    body = rows[1:-1]
    per_block = {r.convs_per_block for r in body}
    cpb = per_block.pop() if len(per_block) == 1 else None
    notes: tuple[str, ...] = ()
    if cpb is not None and cpb != arch.convs_per_block:
        notes = (
            f"the model's self-description says {arch.convs_per_block} convs per block, "
            f"the trace ran {cpb} on the main path; the trace is counted",
        )
    return replace(
        e,
        block=arch.block,
        layers=arch.layers,
        convs_per_block=cpb,
        stem_layers=rows[0].weighted_layers,
        head_layers=rows[-1].weighted_layers,
        blocks_answer=_blocks_answer(arch.block, rows, cpb, e.depth),
        stages=tuple(rows),
        shortcuts=found.beside,
        notes=notes,
    )


def _has_blocks(result: Trace, stages: tuple[str, ...]) -> bool:
    """Every stage is a sequence of blocks (modules with children), not bare layers."""
    for stage in stages:
        children = [r for r in result.records if r.parent == stage]
        if not children or any(r.is_leaf for r in children):
            return False
    return True


def _stage_rows(result: Trace, main: list[ModuleRecord]) -> list[StageRow]:
    rows = []
    for summary in result.stages():
        mine = [r for r in main if r.stage == summary.name]
        counts = set(Counter(r.block for r in mine).values()) if summary.blocks else set()
        rows.append(
            StageRow(
                stage=summary.name,
                blocks=summary.blocks,
                convs_per_block=counts.pop() if len(counts) == 1 else None,
                weighted_layers=len(mine),
                output_shape=summary.output_shape,  # type: ignore[arg-type]
                params=summary.params,
                macs=summary.macs,
            )
        )
    return rows


def _blocks_answer(block: str, rows: list[StageRow], cpb: int | None, depth: int) -> str:
    body = rows[1:-1]
    blocks = sum(r.blocks for r in body)
    inner = sum(r.weighted_layers for r in body)
    layers = [r.blocks for r in body]
    each = f"{cpb} weighted convolutions each" if cpb else "their weighted convolutions"
    return (
        f"{layers} counts blocks, not layers: its {blocks} {block} blocks hold {each} "
        f"({inner}); {_plural(rows[0].weighted_layers, 'stem convolution')} and "
        f"{_plural(rows[-1].weighted_layers, 'classifier layer')} bring the depth to {depth}."
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _not_counted(result: Trace, found: Depth) -> tuple[tuple[str, int, str], ...]:
    """Every leaf that ran but is not a weighted layer on the main path, grouped by type."""
    counted = set(found.main_path)
    beside = set(found.beside)
    ids = {call_id(r): r for r in result.records}
    reasons: dict[tuple[str, str], int] = Counter()
    for gid, r in ids.items():
        if not r.is_leaf or gid in counted:
            continue
        kind = r.type
        if gid in beside:
            kind, why = f"{r.type} (beside the main path)", BESIDE_REASON
        elif any(len(shape) == 2 for shape in r.param_shapes):
            why = "a lookup table (an embedding): rows are read, no multiply-adds"
        elif r.params_total > 0:
            why = "normalisation only: a per-channel scale and shift, no multiply-adds"
        else:
            why = "no weights"
        reasons[(kind, why)] += 1
    return tuple((kind, calls, why) for (kind, why), calls in reasons.items())
