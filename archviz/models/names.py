"""The model names archviz knows, without importing torch: `archviz models` reads them here.

`registry.py` maps each name to its factory in `resnet.py`; a test checks the two agree.
"""

from __future__ import annotations

TORCHVISION_PREFIX = "torchvision:"

MODEL_NAMES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet200",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
)

# The five variants of the paper's Table 1: the default set for compare and report.
STANDARD = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def list_models(include_torchvision: bool = False) -> list[str]:
    """archviz's model names (and `torchvision:` names of torchvision's whole zoo)."""
    names = list(MODEL_NAMES)
    if include_torchvision:
        names += [TORCHVISION_PREFIX + n for n in torchvision_names()]
    return names


def torchvision_names() -> list[str]:
    """torchvision's whole zoo (imports torchvision, so only when asked)."""
    from torchvision import models as tvm

    return tvm.list_models()
