"""Human units for raw integers; the only place numbers are turned into text."""

from __future__ import annotations

from typing import Any

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float, unit: str = "", digits: int = 2) -> str:
    """4089184256 -> '4.09 G' (+ unit)."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f} {prefix}{unit}".rstrip()
    return f"{value:,.0f} {unit}".rstrip() if float(value).is_integer() else f"{value:.{digits}f}"


def nbytes(value: float) -> str:
    """Binary units for memory: 102228128 -> '97.5 MiB'."""
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= scale:
            return f"{value / scale:.1f} {prefix}"
    return f"{value:.0f} B"


def shape(tree: Any) -> str:
    """(1, 64, 56, 56) -> '1x64x56x56'; nested structures keep their brackets."""
    if tree is None:
        return "-"
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k}: {shape(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, (tuple, list)) and all(isinstance(d, int) for d in tree):
        return "x".join(str(d) for d in tree) if tree else "scalar"
    if isinstance(tree, (tuple, list)) and len(tree) == 1:
        return shape(tree[0])
    return "(" + ", ".join(shape(t) for t in tree) + ")"


def chw(tree: Any) -> str:
    """An activation shape without the batch: (1, 256, 56, 56) -> '256x56x56'."""
    if isinstance(tree, (tuple, list)) and tree and all(isinstance(d, int) for d in tree):
        return "x".join(str(d) for d in tree[1:]) or "scalar"
    return shape(tree)
