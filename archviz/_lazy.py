"""Public names imported on first use (PEP 562), so `archviz --help` does not load torch.

A package's `__init__` names where each public attribute lives instead of importing it.
Where a function shares its submodule's name (`archviz.trace`, the function, lives in
`archviz/tracing/trace.py`), importing the submodule would rebind the package attribute to the
module; `_Package` keeps the function there instead, as the eager imports used to.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _Package(types.ModuleType):
    _lazy_names: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        where = self.__dict__.get("_lazy_names", {})
        if name not in where:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_names", {}):
            return  # the import system binding a submodule over a public function of its name
        super().__setattr__(name, value)


def install(package: str, where: dict[str, str]) -> None:
    """Make `package`'s attributes in `where` (name -> module) import on first use."""
    module = sys.modules[package]
    module.__class__ = _Package
    object.__setattr__(module, "_lazy_names", dict(where))
