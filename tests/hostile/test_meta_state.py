"""A meta trace, successful or failed, leaves the model object exactly as it was.

torchvision's detection models rebind `AnchorGenerator.cell_anchors` in forward and RAFT
keeps `corr_block.corr_pyramid`; before archviz.tracing.state both were left as meta tensors and
every later CPU forward failed with "Cannot copy out of meta tensor".

The default run covers one model per family that behaves differently; set
ARCHVIZ_HOSTILE_FULL=1 for every detection model and RAFT (about a minute more).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.models import detection, optical_flow

from archviz.tracing.state import _HOOK_KEYS
from archviz.tracing.trace import trace

FULL = os.environ.get("ARCHVIZ_HOSTILE_FULL") == "1"
SMALL = {"min_size": 64, "max_size": 64}  # R-CNN family resizes to 800 by default
DETECTION = {
    "fasterrcnn_resnet50_fpn": SMALL,
    "fasterrcnn_resnet50_fpn_v2": SMALL,
    "fasterrcnn_mobilenet_v3_large_fpn": SMALL,
    "fasterrcnn_mobilenet_v3_large_320_fpn": SMALL,
    "maskrcnn_resnet50_fpn": SMALL,
    "maskrcnn_resnet50_fpn_v2": SMALL,
    "keypointrcnn_resnet50_fpn": SMALL,
    "retinanet_resnet50_fpn": SMALL,
    "retinanet_resnet50_fpn_v2": SMALL,
    "fcos_resnet50_fpn": SMALL,
    "ssd300_vgg16": {},
    "ssdlite320_mobilenet_v3_large": {},
}
DEFAULT = ("fasterrcnn_mobilenet_v3_large_320_fpn",)  # AnchorGenerator: R-CNN, RetinaNet, FCOS


def _describe(value: Any) -> Any:
    """A comparable picture of an attribute: object identity, and for tensors the version
    counter (bumped by every in-place write), device, dtype and shape."""
    if isinstance(value, torch.Tensor):
        return ("tensor", id(value), value._version, str(value.device), value.dtype, value.shape)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=id) if isinstance(value, (set, frozenset)) else value
        return (type(value).__name__, id(value), [_describe(v) for v in items])
    if isinstance(value, dict):
        return ("dict", id(value), {k: _describe(v) for k, v in value.items()})
    return ("object", id(value), value if isinstance(value, (int, float, str, bool)) else None)


def module_state(model: nn.Module) -> dict[str, Any]:
    """Every attribute of every module (parameters, buffers and plain ones), hooks aside."""
    return {
        f"{name}.{key}": _describe(value)
        for name, module in model.named_modules()
        for key, value in vars(module).items()
        if key not in _HOOK_KEYS
    }


def _flat(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for k in sorted(value) for t in _flat(value[k])]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    return []


def _assert_bit_identical(before: Any, after: Any) -> None:
    a, b = _flat(before), _flat(after)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.device.type == "cpu" and x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x, y) or (x.is_floating_point() and torch.equal(x.isnan(), y.isnan()))


def _check_untouched(model: nn.Module, run, meta_inputs) -> None:
    model.eval()
    with torch.no_grad():
        before = run()
    state = module_state(model)
    with contextlib.suppress(ValueError):  # a failed meta trace must leave it alone too
        trace(model, inputs=meta_inputs, device="meta")
    assert module_state(model) == state
    with torch.no_grad():
        after = run()
    _assert_bit_identical(before, after)


@pytest.mark.parametrize("name", DETECTION if FULL else DEFAULT)
def test_detection_model_runs_after_meta_trace(name: str) -> None:
    model = getattr(detection, name)(weights=None, weights_backbone=None, **DETECTION[name])
    image = torch.rand(3, 64, 64)
    _check_untouched(model, lambda: model([image]), ([image],))


@pytest.mark.parametrize("name", ["raft_small", "raft_large"] if FULL else ["raft_small"])
def test_raft_runs_after_meta_trace(name: str) -> None:
    model = getattr(optical_flow, name)(weights=None)
    a, b = torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128)
    meta_inputs = {"image1": a, "image2": b, "num_flow_updates": 2}
    _check_untouched(model, lambda: model(a, b, num_flow_updates=2), meta_inputs)


class _Caches(nn.Module):
    """Every way a forward can leave tensors behind outside parameters and buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.scale = torch.ones(1)
        self.pair = (torch.zeros(1), 2)
        self.history: list[torch.Tensor] = []
        self.by_shape: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scale = self.scale.to(x.device)
        self.pair = (self.pair[0].to(x.device), 3)
        self.history.append(x)
        self.by_shape[str(x.shape)] = x
        self.added = x
        y = self.conv(x) * self.scale
        if x.device.type == "meta":
            raise RuntimeError("fails half-way on meta")
        return y


def test_plain_attributes_lists_tuples_dicts_restored_after_failed_trace() -> None:
    model = _Caches()
    x = torch.rand(1, 3, 8, 8)
    _check_untouched(model, lambda: model(x), (x,))
    # two CPU runs, and nothing the meta run stored
    assert [t.device.type for t in model.history] == ["cpu", "cpu"]
    assert {t.device.type for t in (model.added, model.scale, *model.by_shape.values())} == {"cpu"}
