"""Model names -> constructors: archviz's own ResNets, every model of torchvision's zoo
(`torchvision:NAME`, built offline), and `package.module:factory` import paths. One source
of truth for the CLI. Other ecosystems' specs (config.json, hf:, transformers:, timm:) are
built in hf.py; the input each model takes is chosen in inputs.py (re-exported here)."""

from __future__ import annotations

import importlib
import inspect
import socket
import sys
import urllib.error
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archviz.errors import ArchvizError
from archviz.models.hf import build_spec, is_spec
from archviz.models.inputs import DEFAULT_FORM, INPUT_FORMS, InputForm, input_form
from archviz.models.names import (
    MODEL_NAMES,
    STANDARD,
    TORCHVISION_PREFIX,
    list_models,
    torchvision_names,
)
from archviz.models.resnet import ResNet
from archviz.run import register_input, user_code

__all__ = [
    "DEFAULT_FORM",
    "INPUT_FORMS",
    "MODELS",
    "STANDARD",
    "TORCHVISION_PREFIX",
    "InputForm",
    "get_model",
    "input_form",
    "list_models",
    "resolve_model",
]

# Every name in MODEL_NAMES (names.py, torch-free for `archviz models`) is a factory of the
# same name in resnet.py. By module path: `archviz.models.resnet` the package attribute is
# the `resnet()` factory, not the module.
_FACTORIES = importlib.import_module("archviz.models.resnet")
MODELS: dict[str, Callable[..., ResNet]] = {n: getattr(_FACTORIES, n) for n in MODEL_NAMES}

# Builder arguments that would download weights unless set to None.
_DOWNLOADS = ("weights", "weights_backbone")
_OFFLINE_ERRORS = (urllib.error.URLError, ConnectionError, socket.timeout)


def get_model(name: str, *, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a model by name, randomly initialised unless `weights` names torchvision weights.

    `weights` is a torchvision weight name such as "IMAGENET1K_V1" or "DEFAULT"; archviz's
    models load them directly because their state_dicts are torchvision's.
    """
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision_model(name.removeprefix(TORCHVISION_PREFIX), weights, kwargs)
    if is_spec(name):
        if weights is not None or kwargs:
            raise ArchvizError(f"{name!r} is built from its config alone: no weights or arguments")
        return build_spec(name)
    if name not in MODELS:
        raise ArchvizError(
            f"unknown model {name!r}; choose one of {', '.join(MODELS)}, "
            f"'torchvision:NAME', 'timm:NAME', 'hf:ORG/NAME', 'transformers:ClassName', "
            "a path to a config.json, or an import path 'package.module:factory'"
            if ":" not in name
            else f"unknown model {name!r}"
        )
    model = MODELS[name](**kwargs)
    if weights is not None:
        state = _download(name, lambda: _weights(name, weights).get_state_dict(progress=True))
        model.load_state_dict(state)
    return model


def resolve_model(spec: str | nn.Module) -> nn.Module:
    """A module as is; a registry name; a spec of archviz.models.hf (a config.json,
    hf:ORG/NAME, transformers:ClassName, timm:NAME); or an import path `package.module:factory`."""
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ArchvizError(f"malformed model {spec!r}; give a name such as resnet50")
    if ":" in spec and not spec.startswith(TORCHVISION_PREFIX) and not is_spec(spec):
        return _call_factory(spec, _import_factory(spec))
    return get_model(spec)


def _import_factory(path: str) -> Callable[[], Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr.isidentifier() or any(not p for p in module_name.split(".")):
        raise ArchvizError(
            f"malformed model spec {path!r}; write package.module:factory, "
            "e.g. torchvision.models:resnet50"
        )
    try:
        with user_code("import"):
            module = importlib.import_module(module_name)
    except ArchvizError:
        raise
    except ImportError as exc:
        raise ArchvizError(f"cannot import {module_name!r} from {path!r}: {exc}") from None
    except Exception as exc:  # a syntax error or a failing import-time statement
        raise ArchvizError(
            f"importing {module_name!r} from {path!r} failed: {_one_line(exc)}; "
            "fix that module, then try again"
        ) from None
    register_input(getattr(module, "__file__", None))  # its source is never an output
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ArchvizError(f"{module_name!r} has no callable {attr!r}")
    return factory


def _call_factory(path: str, factory: Callable[[], Any]) -> nn.Module:
    """Call a user's factory; whatever goes wrong becomes one line naming it and the fix."""
    name = _torchvision_builder_name(factory)
    if name is not None:  # torchvision's own builder: built offline like torchvision:NAME
        return _torchvision_model(name, None, {})
    with user_code("factory", where=lambda: f"in the factory {path!r}"):
        model = _download(path, factory, what="the factory")
    if not isinstance(model, nn.Module):
        raise ArchvizError(
            f"factory {path!r} returned {type(model).__name__}, not a torch.nn.Module; "
            "make it return the model"
        )
    register_input(getattr(sys.modules.get(type(model).__module__), "__file__", None))
    return model


def _download(path: str, build: Callable[[], Any], what: str = "building") -> Any:
    """Run `build`; a failed download or any other error becomes one ArchvizError line."""
    try:
        return build()
    except ArchvizError:
        raise
    except Exception as exc:
        if _is_offline(exc):
            raise ArchvizError(
                f"{what} {path!r} tried to download weights and could not "
                f"({_one_line(exc)}); build the model with weights=None (archviz's "
                "torchvision:NAME does), or put the weights in torch.hub's cache first"
            ) from None
        raise ArchvizError(
            f"{what} {path!r} raised {_one_line(exc)}; fix it, or build the model "
            "yourself and pass the module to archviz's Python API"
        ) from None


def _is_offline(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, _OFFLINE_ERRORS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _torchvision_builder_name(factory: Callable) -> str | None:
    """The zoo name of `factory` if it is one of torchvision's registered builders."""
    if not getattr(factory, "__module__", "").startswith("torchvision.models"):
        return None
    from torchvision import models as tvm

    for name in tvm.list_models():
        if tvm.get_model_builder(name) is factory:
            return name
    return None


def _torchvision_model(name: str, weights: str | None, kwargs: dict) -> nn.Module:
    """Any model of torchvision's zoo, without downloading anything unless asked."""
    from torchvision import models as tvm

    if name not in torchvision_names():
        raise ArchvizError(
            f"unknown torchvision model {name!r}; `archviz models --torchvision` lists them"
        )
    builder = tvm.get_model_builder(name)
    accepted = inspect.signature(builder).parameters
    offline = {key: None for key in _DOWNLOADS if key in accepted}
    args = {**offline, **kwargs}
    if weights is not None:
        args["weights"] = _weights(name, weights)

    def build() -> nn.Module:
        with warnings.catch_warnings():  # torchvision's notes on future init defaults
            warnings.simplefilter("ignore", (UserWarning, FutureWarning))
            try:
                return builder(**args)
            except NotImplementedError:  # RegNet reads its widths' values: not on meta
                with torch.device("cpu"):
                    return builder(**args)

    return _download(TORCHVISION_PREFIX + name, build)


def _weights(name: str, weights: str):
    from torchvision import models as tvm

    enum = tvm.get_model_weights(name)
    try:
        return enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except KeyError:
        raise ArchvizError(
            f"unknown weights {weights!r} for {name}; choose one of "
            f"{', '.join(w.name for w in enum)} or DEFAULT"
        ) from None
