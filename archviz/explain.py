"""explain(): why [3, 4, 6, 3] is ResNet-50, derived from the traced model.

He et al. (2015) name a ResNet by its weighted layers on the main path: the stem
convolution, every convolution inside the residual blocks, and the classifier. The block
list counts blocks, not layers, so depth = stem + convs per block x sum(layers) + head.
Here that rule is applied to a Trace's records, so it holds for any `layers` list, either
block type, ResNeXt and wide variants, and users' own ResNet-like models.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from archviz.errors import ArchvizError
from archviz.models import resolve_model
from archviz.paper import DEFAULT_INPUT, PaperView, paper_view
from archviz.records import ModuleRecord, Shape, Trace, first_shape
from archviz.trace import trace

SHORTCUT = "downsample"  # the projection shortcut's module name: torchvision's state_dict key
NOT_RESNET_LIKE = "not a ResNet-like model: no layer1..layer4 stages of residual blocks"
SHORTCUT_REASON = (
    "projection shortcuts sit beside the main path, not on it; the paper counts depth "
    "along the main path only"
)


class NotResNetLike(ArchvizError):
    """The model has no stem / stages of residual blocks / classifier to count."""


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
    """Why a ResNet-like model has the depth in its name, from its own records."""

    model: str
    block: str
    layers: tuple[int, ...]
    convs_per_block: int | None  # None when blocks hold different numbers of convs
    stem_layers: int
    head_layers: int
    depth: int
    formula: str  # "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50"
    blocks_answer: str  # the "16 blocks, not 50 layers" sentence
    stages: tuple[StageRow, ...]
    shortcuts: tuple[str, ...]  # projection convs: listed, not counted
    not_counted: tuple[tuple[str, int, str], ...]  # (module type, calls, why)
    params: int
    macs: int
    input_size: Shape
    paper: PaperView | None = None
    notes: tuple[str, ...] = ()

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
    input_size: Sequence[int] = DEFAULT_INPUT,
    *,
    paper: bool = True,
    name: str | None = None,
) -> DepthExplanation:
    """Trace the model on the meta device and count its weighted layers.

    With `paper`, an archviz ResNet is traced once more with the other stride placement.
    """
    size = check_image_size(input_size)
    model = build(model_or_name)
    label = name or (model_or_name if isinstance(model_or_name, str) else type(model).__name__)
    result = trace(model, size, name=label)
    explanation = explain_trace(result)
    if paper:
        explanation = replace(explanation, paper=paper_view(model, result))
    return explanation


def check_image_size(input_size: Sequence[int]) -> Shape:
    """These are image models: the input is one N x C x H x W shape."""
    size = tuple(input_size)
    if len(size) != 4 or not all(isinstance(d, int) and d > 0 for d in size):
        raise ArchvizError(
            f"input must be 4 positive dims N x 3 x H x W, e.g. 1x3x224x224; got {size}"
        )
    return size


def build(spec: str | nn.Module) -> nn.Module:
    """A registry name is built on the meta device: no weights allocated or initialised."""
    if isinstance(spec, nn.Module):
        return spec
    with torch.device("meta"):
        return resolve_model(spec)


def explain_trace(result: Trace) -> DepthExplanation:
    """The depth derivation from a Trace alone (compare reuses its traces this way)."""
    arch = result.architecture
    if arch is None or not _has_blocks(result, arch.stages):
        raise NotResNetLike(f"{result.model} is {NOT_RESNET_LIKE}")
    weighted = [r for r in result.records if _is_weighted(r)]
    stray = [r.name for r in weighted if r.stage is None]
    if stray:
        raise NotResNetLike(
            f"{result.model} is not ResNet-like: weighted layers outside the stem, stages "
            f"and head ({', '.join(stray[:3])})"
        )
    main = [r for r in weighted if SHORTCUT not in r.name.split(".")]
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
    depth = sum(r.weighted_layers for r in rows)
    return DepthExplanation(
        model=result.model,
        block=arch.block,
        layers=arch.layers,
        convs_per_block=cpb,
        stem_layers=rows[0].weighted_layers,
        head_layers=rows[-1].weighted_layers,
        depth=depth,
        formula=_formula(rows, cpb, depth),
        blocks_answer=_blocks_answer(arch.block, rows, cpb, depth),
        stages=tuple(rows),
        shortcuts=tuple(r.name for r in weighted if SHORTCUT in r.name.split(".")),
        not_counted=_not_counted(result),
        params=result.totals.params,
        macs=result.totals.macs,
        input_size=first_shape(result.input_shapes) or (),
        notes=notes,
    )


def _is_weighted(record: ModuleRecord) -> bool:
    """A weighted layer holds parameters and does multiply-adds: conv and linear.

    Batch norm holds parameters but only scales and shifts (no MACs); ReLU and pooling
    hold none. Structural, so a user's Conv2d subclass counts without a name match.
    """
    return record.is_leaf and record.params_total > 0 and record.macs > 0


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


def _formula(rows: list[StageRow], cpb: int | None, depth: int) -> str:
    """'1 + 3 x (3 + 4 + 6 + 3) + 1 = 50'; per-stage terms when blocks differ."""
    stem, body, head = rows[0], rows[1:-1], rows[-1]
    if cpb is not None:
        middle = f"{cpb} x ({' + '.join(str(r.blocks) for r in body)})"
    else:
        terms = [
            f"{r.convs_per_block} x {r.blocks}" if r.convs_per_block else f"{r.weighted_layers}"
            for r in body
        ]
        middle = f"({' + '.join(terms)})"
    return f"{stem.weighted_layers} + {middle} + {head.weighted_layers} = {depth}"


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


def _not_counted(result: Trace) -> tuple[tuple[str, int, str], ...]:
    """Every leaf that ran but is not a main-path weighted layer, grouped by type."""
    reasons: dict[tuple[str, str], int] = Counter()
    for r in result.records:
        if not r.is_leaf or (_is_weighted(r) and SHORTCUT not in r.name.split(".")):
            continue
        kind = r.type
        if _is_weighted(r):
            kind, why = f"{r.type} (projection shortcut)", SHORTCUT_REASON
        elif r.params_total > 0:
            why = "normalisation only: a per-channel scale and shift, no multiply-adds"
        else:
            why = "no weights"
        reasons[(kind, why)] += 1
    return tuple((kind, calls, why) for (kind, why), calls in reasons.items())
