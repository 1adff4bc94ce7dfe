"""archviz's ResNet family and the model registry (imported on first use: see _lazy.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archviz._lazy import install
from archviz.models.names import STANDARD, list_models

__all__ = [
    "DEFAULT_FORM",
    "DEPTHS",
    "INPUT_FORMS",
    "STANDARD",
    "BasicBlock",
    "Bottleneck",
    "InputForm",
    "ResNet",
    "get_model",
    "input_form",
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
_EAGER = ("STANDARD", "list_models")  # torch-free, from names.py
_REGISTRY = ("DEFAULT_FORM", "INPUT_FORMS", "InputForm", "get_model", "input_form", "resolve_model")
_WHERE = {n: "archviz.models.resnet" for n in __all__ if n not in (*_EAGER, *_REGISTRY)}
_WHERE.update({n: "archviz.models.registry" for n in _REGISTRY})

install(__name__, _WHERE)

if TYPE_CHECKING:  # what the type checker and IDEs see
    from archviz.models.registry import (
        DEFAULT_FORM,
        INPUT_FORMS,
        InputForm,
        get_model,
        input_form,
        resolve_model,
    )
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
