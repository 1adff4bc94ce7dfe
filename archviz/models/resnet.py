"""ResNet, ResNeXt and wide ResNet, written for archviz, state_dict-compatible with torchvision.

Module names (`conv1`, `bn1`, `layer1`..`layer4`, `downsample`, `fc`) are the state_dict
contract with torchvision's checkpoints, so they are kept exactly. Unlike torchvision, the
model describes itself (`block`, `layers`, `stage_names`, `feature_info`), so analysis reads
the configuration instead of parsing module names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from archviz.errors import ArchvizError

NormLayer = Callable[[int], nn.Module]
STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")
STAGE_PLANES = (64, 128, 256, 512)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1):
    """3x3 convolution, padding = dilation so that stride 1 keeps the spatial size."""
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,  # a BatchNorm follows, whose shift makes a bias redundant
        dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution: changes channel count (and, with stride, resolution) cheaply."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus a shortcut: the block of ResNet-18 and -34.

    `expansion = 1`: the block's output has as many channels as its inner width.
    """

    expansion = 1
    convs_per_block = 2

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: NormLayer | None = None,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ArchvizError("BasicBlock supports only groups=1 and width_per_group=64")
        if dilation > 1:
            raise ArchvizError("BasicBlock does not support dilation > 1")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)

    def last_norm(self) -> nn.Module:
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand, plus a shortcut: the block of ResNet-50 and deeper.

    `expansion = 4`: the 3x3 conv works on a quarter of the block's output channels, which
    is what makes a 3-conv block cheaper than two full-width 3x3 convs (the paper's
    "bottleneck design", sec. 4.1). torchvision puts the stride-2 in the 3x3 conv ("v1.5",
    slightly more accurate and about 0.3 GMACs dearer at 224px); the paper puts it in the
    first 1x1 conv: `stride_in_1x1=True` restores that. Either way the keys are identical.
    """

    expansion = 4
    convs_per_block = 3

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: NormLayer | None = None,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        # ResNeXt widens with groups (cardinality); wide ResNets widen with base_width.
        width = int(planes * (base_width / 64.0)) * groups
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride_1x1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride_3x3, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)

    def last_norm(self) -> nn.Module:
        return self.bn3


Block = type[BasicBlock] | type[Bottleneck]


@dataclass(frozen=True)
class StageInfo:
    """What a stage produces, timm's `feature_info` idea: analysis reads this, not names."""

    module: str
    blocks: int
    channels: int
    reduction: int


class ResNet(nn.Module):
    """Stem, four stages of residual blocks, global pooling and a linear classifier.

    The first block of a stage gets a projection shortcut (1x1 conv + BN) whenever the
    shape changes (stride 2 or more channels), so the residual add has matching shapes;
    all other shortcuts are identities, which add no parameters.
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        replace_stride_with_dilation: Sequence[bool] | None = None,
        norm_layer: NormLayer | None = None,
        stride_in_1x1: bool = False,
        stem_downsample: bool = True,
    ) -> None:
        super().__init__()
        layers = _check_layers(layers)
        dilations = list(replace_stride_with_dilation or (False, False, False))
        if len(dilations) != 3:
            raise ArchvizError(
                f"replace_stride_with_dilation must have 3 entries, got {len(dilations)}"
            )
        if num_classes < 1:
            raise ArchvizError(f"num_classes must be positive, got {num_classes}")
        self.block = block
        self.layers = tuple(layers)
        self.groups = groups
        self.base_width = width_per_group
        self.stride_in_1x1 = stride_in_1x1
        self.stem_downsample = stem_downsample
        self.replace_stride_with_dilation = tuple(dilations)
        self.stage_names = STAGE_NAMES
        self._norm_layer = norm_layer or nn.BatchNorm2d

        # Stem: a 7x7 stride-2 conv and a stride-2 max-pool cut 224px to 56px (reduction 4).
        # Without downsampling (forensics' "nodown" models) the stride is 1 and the pool is
        # an Identity, so no state_dict key changes.
        self.conv1 = nn.Conv2d(
            3, 64, kernel_size=7, stride=2 if stem_downsample else 1, padding=3, bias=False
        )
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem_downsample else nn.Identity()
        )

        inplanes, dilation = 64, 1
        reduction = 4 if stem_downsample else 1
        self.feature_info: list[StageInfo] = []
        for index, (planes, blocks) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
            stride, previous_dilation = (1 if index == 0 else 2), dilation
            if index > 0 and dilations[index - 1]:
                dilation, stride = dilation * stride, 1
            stage = self._make_layer(inplanes, planes, blocks, stride, previous_dilation, dilation)
            inplanes = planes * block.expansion
            self.add_module(STAGE_NAMES[index], stage)
            reduction *= stride
            self.feature_info.append(
                StageInfo(STAGE_NAMES[index], blocks, planes * block.expansion, reduction)
            )

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(
        self,
        inplanes: int,
        planes: int,
        blocks: int,
        stride: int,
        previous_dilation: int,
        dilation: int,
    ) -> nn.Sequential:
        """Build one stage. Pure with respect to `self` (torchvision mutates `self.inplanes`).

        A dilated stage's first block keeps the previous dilation, as torchvision does.
        """
        block, norm = self.block, self._norm_layer
        outplanes = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != outplanes:
            downsample = nn.Sequential(conv1x1(inplanes, outplanes, stride), norm(outplanes))
        common: dict[str, Any] = dict(
            groups=self.groups,
            base_width=self.base_width,
            norm_layer=norm,
            stride_in_1x1=self.stride_in_1x1,
        )
        modules = [
            block(inplanes, planes, stride, downsample, dilation=previous_dilation, **common)
        ]
        modules += [block(outplanes, planes, dilation=dilation, **common) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            # Each residual branch then starts as zero, so every block starts as an identity:
            # Goyal et al. (2017) report +0.2-0.3% top-1 from this.
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last = m.last_norm()
                    if isinstance(last, nn.BatchNorm2d) and last.weight is not None:
                        nn.init.constant_(last.weight, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _check_layers(layers: Sequence[int]) -> list[int]:
    values = list(layers)
    if len(values) != 4 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ArchvizError(
            f"layers must be 4 positive integers (blocks per stage), e.g. [3, 4, 6, 3]; "
            f"got {values!r}"
        )
    return values


# depth -> (block, layers): He et al. (2015) Table 1, plus ResNet-200 (He et al., 2016).
DEPTHS: dict[int, tuple[Block, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
    200: (Bottleneck, (3, 24, 36, 3)),
}


def resnet(depth: int, **kwargs) -> ResNet:
    """A standard-depth ResNet; `kwargs` go to `ResNet` (groups, width_per_group, ...)."""
    if depth not in DEPTHS:
        raise ArchvizError(f"unknown ResNet depth {depth}; choose one of {sorted(DEPTHS)}")
    block, layers = DEPTHS[depth]
    return ResNet(block, layers, **kwargs)


def resnet18(**kwargs) -> ResNet:
    return resnet(18, **kwargs)


def resnet34(**kwargs) -> ResNet:
    return resnet(34, **kwargs)


def resnet50(**kwargs) -> ResNet:
    return resnet(50, **kwargs)


def resnet101(**kwargs) -> ResNet:
    return resnet(101, **kwargs)


def resnet152(**kwargs) -> ResNet:
    return resnet(152, **kwargs)


def resnet200(**kwargs) -> ResNet:
    return resnet(200, **kwargs)


def resnext50_32x4d(**kwargs) -> ResNet:
    """32 groups of width 4 in each 3x3 conv: same depth as ResNet-50, wider and grouped."""
    return resnet(50, groups=32, width_per_group=4, **kwargs)


def resnext101_32x8d(**kwargs) -> ResNet:
    return resnet(101, groups=32, width_per_group=8, **kwargs)


def resnext101_64x4d(**kwargs) -> ResNet:
    return resnet(101, groups=64, width_per_group=4, **kwargs)


def wide_resnet50_2(**kwargs) -> ResNet:
    """Twice the bottleneck width (128 per group); the outer channels stay those of ResNet-50."""
    return resnet(50, width_per_group=128, **kwargs)


def wide_resnet101_2(**kwargs) -> ResNet:
    return resnet(101, width_per_group=128, **kwargs)
