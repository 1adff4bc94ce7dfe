"""compare(): ResNet variants side by side, one trace each, reused by report and plots.

Each row is read from the model's own Trace and DepthExplanation, so a user's
configuration sits beside the standard ones on the same terms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from archviz.analysis.explain import DepthExplanation, build, check_size, explain_trace, paper_view
from archviz.analysis.llm import LLMFacts, llm_facts
from archviz.errors import ArchvizError
from archviz.models import STANDARD
from archviz.options import FORMATS as _FORMATS
from archviz.records import Shape, Trace, first_shape
from archviz.tracing.trace import trace

FORMATS = _FORMATS["compare"]


@dataclass(frozen=True)
class ComparisonRow:
    """One variant: raw integers; the renderers turn them into "4.09 G"."""

    name: str
    block: str  # "" for a model that is not ResNet-like
    layers: tuple[int, ...]  # () for a model that is not ResNet-like
    depth: int
    params: int
    macs: int
    flops: int
    macs_stride_in_1x1: int | None  # the paper's stride placement; None if not switchable
    paper_table1_gmacs: float | None  # He et al. (2015) Table 1, standard configurations only
    activation_bytes: int  # leaf outputs of one forward pass at the given batch
    stage_shapes: tuple[tuple[str, Shape | None], ...]  # (stage, output shape) for layer1..4
    stage_macs: tuple[tuple[str, int], ...]  # (part, MACs) for stem, layer1..4, head
    llm: LLMFacts | None = None  # models built from a transformer config (analysis/llm.py)


@dataclass(frozen=True)
class Comparison:
    """Rows in the order asked, plus each model's Trace and explanation for reuse."""

    input_size: Shape  # the first model's (first) input; each row's own is in its trace
    rows: tuple[ComparisonRow, ...]
    traces: tuple[Trace, ...] = field(default=(), compare=False, repr=False)
    explanations: tuple[DepthExplanation, ...] = field(default=(), compare=False, repr=False)

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts, raw values: name, block, layers, depth, params, macs, flops, ..."""
        out = []
        for row in self.rows:
            record = asdict(row)
            record["layers"] = list(row.layers)
            record["stage_shapes"] = {s: list(v) if v else None for s, v in row.stage_shapes}
            record["stage_macs"] = dict(row.stage_macs)
            out.append(record)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(
            {"input_size": list(self.input_size), "rows": self.to_records()}, indent=indent
        )

    def to_dataframe(self):
        """One row per variant, raw integers; stage shapes and MACs as their own columns."""
        from archviz.render.compare import comparison_dataframe

        return comparison_dataframe(self)


def compare(
    models: Sequence[str | nn.Module] = STANDARD,
    input_size: Sequence[int] | None = None,
    *,
    inputs: Any = None,
    dtype: torch.dtype | None = None,
    paper: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
    device: str = "meta",
) -> Comparison:
    """Trace each model once on the meta device (plus the other stride placement if
    `paper`), and explain its depth from that trace. Without `input_size` or `inputs`
    each model takes its own input (1x3x224x224 images, 1x128 tokens for a transformer).
    `progress(done, total, what runs)` hears about each model before it is traced.
    `device`: where to trace (meta: nothing allocated; cpu for models whose forward
    depends on values, such as detectors)."""
    if not models:
        raise ArchvizError("compare needs at least one model, e.g. resnet18 resnet50")
    size = check_size(input_size) if input_size is not None else None
    traces, explanations, rows = [], [], []
    for done, spec in enumerate(models):
        name = spec if isinstance(spec, str) else type(spec).__name__
        if progress is not None:
            progress(done, len(models), f"tracing {name}")
        model = build(spec, device)
        result = trace(model, size, inputs=inputs, device=device, dtype=dtype, name=name)
        explanation = explain_trace(result)
        if paper:
            explanation = replace(explanation, paper=paper_view(model, result))
        traces.append(result)
        explanations.append(explanation)
        rows.append(_row(result, explanation))
    if progress is not None:
        progress(len(models), len(models), "")
    shown = size or first_shape(traces[0].input_shapes) or ()
    return Comparison(shown, tuple(rows), tuple(traces), tuple(explanations))


def _row(result: Trace, e: DepthExplanation) -> ComparisonRow:
    return ComparisonRow(
        name=result.model,
        block=e.block or "",
        layers=e.layers,
        depth=e.depth,
        params=result.totals.params,
        macs=result.totals.macs,
        flops=result.totals.flops,
        macs_stride_in_1x1=e.paper.stride_in_1x1_macs if e.paper else None,
        paper_table1_gmacs=e.paper.table1_gmacs if e.paper else None,
        activation_bytes=result.totals.activation_bytes,
        stage_shapes=tuple((r.stage, r.output_shape) for r in e.stages[1:-1]),  # ResNets only
        stage_macs=tuple((r.stage, r.macs) for r in e.stages),
        llm=llm_facts(result),
    )
