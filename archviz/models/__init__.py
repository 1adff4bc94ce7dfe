"""archviz's ResNet family and the model registry."""

from archviz.models.registry import STANDARD, get_model, list_models, resolve_model
from archviz.models.resnet import (
    DEPTHS,
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnet200,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)

__all__ = [
    "DEPTHS",
    "STANDARD",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "get_model",
    "list_models",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet200",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resolve_model",
    "wide_resnet50_2",
    "wide_resnet101_2",
]
