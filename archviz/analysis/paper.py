"""The paper's view: where the stride sits in a Bottleneck, traced both ways.

He et al. (2015) put a stage's stride-2 in the first 1x1 conv of its first block;
torchvision ("v1.5") puts it in the 3x3 conv. Both placements of the same archviz ResNet
are traced and the convs whose MACs differ are named, so the explanation comes from the
two traces rather than from a remembered rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archviz.models.resnet import DEPTHS, BasicBlock, ResNet
from archviz.records import Shape, Trace, first_shape
from archviz.tracing.trace import trace

# He, Zhang, Ren, Sun (2015), "Deep Residual Learning for Image Recognition", Table 1,
# "FLOPs" row, which counts multiply-adds at 224x224: an independent source, not a trace.
PAPER_TABLE1_GMACS: dict[int, float] = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
DEFAULT_INPUT: Shape = (1, 3, 224, 224)


@dataclass(frozen=True)
class PaperView:
    """The same model traced with the stride in the 3x3 conv (torchvision) and in the 1x1."""

    stride_in_3x3_macs: int  # torchvision's "v1.5", stride_in_1x1=False
    stride_in_1x1_macs: int  # the paper's placement, stride_in_1x1=True
    table1_gmacs: float | None  # the paper's printed figure, for standard configurations
    changed: tuple[tuple[str, int, int], ...]  # (conv, MACs v1.5, MACs paper)
    sentence: str


def paper_view(model: nn.Module, result: Trace) -> PaperView | None:
    """Trace the other stride placement of an archviz ResNet and say what changed.

    Only archviz's ResNet can switch the placement (`stride_in_1x1`); for other models
    there is no paper view rather than a guess.
    """
    if not isinstance(model, ResNet):
        return None
    size = first_shape(result.input_shapes) or ()
    if model.block is BasicBlock:  # it has no 1x1 conv to move the stride to: same network
        return _view(model, result, result, size)
    with torch.device("meta"):
        other = ResNet(
            model.block,
            model.layers,
            num_classes=model.fc.out_features,
            groups=model.groups,
            width_per_group=model.base_width,
            norm_layer=model._norm_layer,
            stride_in_1x1=not model.stride_in_1x1,
            stem_downsample=model.stem_downsample,
            replace_stride_with_dilation=model.replace_stride_with_dilation,
        )
    second = trace(other, size, name=result.model)
    v15, paper = (second, result) if model.stride_in_1x1 else (result, second)
    return _view(model, v15, paper, size)


def _view(model: ResNet, v15: Trace, paper: Trace, size: Shape) -> PaperView:
    """Compare the two traces leaf by leaf: which convs the stride placement makes dearer."""
    ours = {(r.name, r.call): r for r in paper.records if r.is_leaf}
    changed = tuple(
        (r.name, r.macs, ours[(r.name, r.call)].macs)
        for r in v15.records
        if r.is_leaf and (r.name, r.call) in ours and r.macs != ours[(r.name, r.call)].macs
    )
    return PaperView(
        stride_in_3x3_macs=v15.totals.macs,
        stride_in_1x1_macs=paper.totals.macs,
        table1_gmacs=_table1(model, size),
        changed=changed,
        sentence=_stride_sentence(v15, changed),
    )


def _table1(model: ResNet, size: Shape) -> float | None:
    """The paper's figure applies only to its own configurations at 224x224, batch 1."""
    if size != DEFAULT_INPUT or model.groups != 1 or model.base_width != 64:
        return None
    for depth, (block, layers) in DEPTHS.items():
        if block is model.block and layers == model.layers and depth in PAPER_TABLE1_GMACS:
            return PAPER_TABLE1_GMACS[depth]
    return None


def _stride_sentence(v15: Trace, changed: tuple[tuple[str, int, int], ...]) -> str:
    if not changed:
        return (
            "Where the stride sits makes no difference here: no convolution's MACs change "
            "between the two traces (a BasicBlock has no 1x1 convolution to move it to)."
        )
    names = ", ".join(name for name, _, _ in changed)
    sizes = ", ".join(
        "x".join(map(str, (first_shape(v15.get(name).input_shapes) or ())[2:]))
        for name, _, _ in changed
    )
    ratios = sorted({round(a / b, 2) for _, a, b in changed})
    extra = sum(a - b for _, a, b in changed)
    return (
        f"Only {names} change: with the stride in the 3x3 conv (torchvision's v1.5) these "
        f"1x1 convs run at their input's full resolution ({sizes}) instead of the strided "
        f"one, {' / '.join(f'{x:g}' for x in ratios)}x the MACs each; every other conv, the "
        f"strided 3x3 included, produces the same output size and costs the same, so "
        f"v1.5 adds {extra / 1e9:.2f} GMACs."
    )
