"""Any input shape gives a trace or one ArchvizError line, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from archviz.errors import ArchvizError
from archviz.tracing.trace import trace

_MODEL = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-3, max_value=64), min_size=0, max_size=6))
def test_small_shapes_trace_or_fail_in_one_line(size: list[int]) -> None:
    try:
        result = trace(_MODEL, tuple(size))
    except ArchvizError as exc:
        assert "\n" not in str(exc)
    else:
        assert result.totals.params == 4 * 3 * 9 + 4


@pytest.mark.parametrize("size", [(1, 3, 2**62, 2), (1, 3, 2**70, 5)])
def test_huge_dimensions_fail_in_one_line(size: tuple[int, ...]) -> None:
    with pytest.raises(ArchvizError):
        trace(_MODEL, size)
