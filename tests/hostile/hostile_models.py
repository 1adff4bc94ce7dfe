"""Small hostile models for the issue-24 tests: odd names, exits, blocking, tiny images.

Imported by spec (`tests.hostile.hostile_models:NAME`), as a user's factory would be.
"""

from __future__ import annotations

import sys
import threading
import time

import torch
from torch import nn

LONG = "n" * 100_000  # a 100 kB module name
CONTROL = "a\x01b\x1b[2J\x7fc<&>\"'\x0c\ud7ff\u202e"  # controls, markup, a bidi override


class _Named(nn.Module):
    """One Linear(4, 4) under any name, even one nn.Module.add_module refuses."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._modules[name] = nn.Linear(4, 4)  # add_module refuses "."; PyTorch keeps it
        self.child = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self._modules[self.child](x)) + 1


def dotted() -> nn.Module:
    return _Named("a.b")


def long_name() -> nn.Module:
    return _Named(LONG)


def control_name() -> nn.Module:
    return _Named(CONTROL)


def exits_in_factory() -> nn.Module:
    sys.exit(0)


class _Exits(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sys.exit(0)


def exits_in_forward() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), _Exits(4, 4))


class _Sleeps(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(600)
        return x


def sleeps_in_forward() -> nn.Module:
    """Sleeps first: a busy machine's slow first conv must not be where time runs out."""
    model = nn.Sequential()
    model.add_module("slow", _Sleeps())
    model.add_module("conv", nn.Conv2d(3, 4, 3))
    return model


def blocks_in_factory() -> nn.Module:
    threading.Event().wait()  # forever, in a lock wait
    return nn.Linear(4, 4)


def tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _ExitsImage(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sys.exit(0)


def exits_in_image_forward() -> nn.Module:
    return nn.Sequential(_ExitsImage(3, 4, 3))


def wide_linear() -> nn.Module:
    """Linear(1000, 1000): a 4 MB reference, for the load limit's reference size."""
    return nn.Sequential(nn.Linear(1000, 1000))
