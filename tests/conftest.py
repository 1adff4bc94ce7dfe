"""Shared fixtures: seeded, offline, CPU."""

from __future__ import annotations

import os

import pytest
import torch

# The CLI's progress lines (stderr, every few seconds when not a terminal) would land in
# CliRunner's combined output on a slow machine; tests of progress set their own interval.
os.environ.setdefault("ARCHVIZ_PROGRESS_INTERVAL", "3600")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
