"""Shared fixtures: seeded, offline, CPU. Traces of big models are made once per session
(each worker's), so every test that checks vit_b_16 or a ResNet shares one forward pass."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from archviz.records import Trace

# The CLI's progress lines (stderr, every few seconds when not a terminal) would land in
# CliRunner's combined output on a slow machine; tests of progress set their own interval.
os.environ.setdefault("ARCHVIZ_PROGRESS_INTERVAL", "3600")
# One thread per test process: `make test` runs two xdist workers on two cores, often beside
# other jobs, and torch's default (a thread per core, spinning) oversubscribes them; a
# resnet50 forward then took 3-10x as long as on one thread. Subprocesses inherit the limit.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def torchvision_model(name: str, device: str = "cpu") -> nn.Module:
    """A torchvision model; on "empty-cpu" its tensors are allocated but not initialised
    (shape checks only: skips seconds of weight init for the big ones); on "meta" nothing is."""
    if device == "cpu":
        return tvm.get_model(name, weights=None)
    with torch.device("meta"):
        model = tvm.get_model(name, weights=None)
    return model.to_empty(device="cpu") if device == "empty-cpu" else model


@pytest.fixture(scope="session")
def vit_b_16() -> nn.Module:
    """vit_b_16 with uninitialised weights: shapes and counts only."""
    return torchvision_model("vit_b_16", "empty-cpu")


@pytest.fixture(scope="session")
def vit_b_16_traces(vit_b_16: nn.Module) -> tuple[Trace, Trace]:
    """vit_b_16 at 1x3x224x224 traced on meta and on cpu (a real forward through the fused
    attention kernel): the suite's only full-size ViT forward."""
    from archviz import trace

    return trace(vit_b_16), trace(vit_b_16, device="cpu")
