"""Shared fixtures: seeded, offline, CPU, one thread. The big model's traces are made once
per session (each xdist worker's), so the tests that check vit_b_16 share its forwards."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from archviz.records import Trace
from tests.fixtures.torchvision_models import torchvision_model

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
