"""Nested tensors -> plain values for the records: shape trees, bytes, the first dtype."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from archviz.records import ShapeTree


def shape_tree(value: Any) -> ShapeTree:
    """Nested tensors -> nested shapes; non-tensors -> None."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(shape_tree(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): shape_tree(v) for k, v in value.items()}
    return None


def input_tree(args: tuple, kwargs: dict) -> ShapeTree:
    """A call's inputs as a shape tree: one tensor is a flat shape, like an output."""
    if len(args) == 1 and not kwargs:
        return shape_tree(args[0])
    return shape_tree((*args, kwargs) if kwargs else args)


def tensor_bytes(value: Any) -> int:
    """Bytes of every tensor in a nested value."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(tensor_bytes(v) for v in value)
    if isinstance(value, Mapping):
        return sum(tensor_bytes(v) for v in value.values())
    return 0


def first_dtype(value: Any) -> str | None:
    """The dtype name of the first tensor in a nested value, or None."""
    if isinstance(value, torch.Tensor):
        return str(value.dtype).removeprefix("torch.")
    items = value.values() if isinstance(value, Mapping) else value
    if isinstance(items, (tuple, list, type({}.values()))):
        for item in items:
            found = first_dtype(item)
            if found:
                return found
    return None
