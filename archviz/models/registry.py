"""Model names -> constructors: archviz's own ResNets and, with a `torchvision:` prefix,
any torchvision classification model for comparison. The names live in `names.py`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from archviz.errors import ArchvizError
from archviz.models.names import MODEL_NAMES, STANDARD, TORCHVISION_PREFIX, list_models
from archviz.models.resnet import ResNet

__all__ = ["MODELS", "STANDARD", "TORCHVISION_PREFIX", "get_model", "list_models", "resolve_model"]

# Every name in MODEL_NAMES is a factory of the same name in resnet.py. (By module path:
# `archviz.models.resnet` the attribute is the `resnet()` factory, not the module.)
_FACTORIES = importlib.import_module("archviz.models.resnet")
MODELS: dict[str, Callable[..., ResNet]] = {n: getattr(_FACTORIES, n) for n in MODEL_NAMES}


def get_model(name: str, *, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a model by name, randomly initialised unless `weights` names torchvision weights.

    `weights` is a torchvision weight name such as "IMAGENET1K_V1" or "DEFAULT"; archviz's
    models load them directly because their state_dicts are torchvision's.
    """
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision_model(name.removeprefix(TORCHVISION_PREFIX), weights, kwargs)
    if name not in MODELS:
        raise ArchvizError(
            f"unknown model {name!r}; choose one of {', '.join(MODELS)}, "
            f"'torchvision:NAME', or an import path 'package.module:factory'"
            if ":" not in name
            else f"unknown model {name!r}"
        )
    model = MODELS[name](**kwargs)
    if weights is not None:
        model.load_state_dict(_weights(name, weights).get_state_dict(progress=True))
    return model


def resolve_model(spec: str | nn.Module) -> nn.Module:
    """A module as is; a registry name; or an import path `package.module:factory`."""
    if isinstance(spec, nn.Module):
        return spec
    if ":" in spec and not spec.startswith(TORCHVISION_PREFIX):
        return _import_factory(spec)()
    return get_model(spec)


def _import_factory(path: str) -> Callable[[], nn.Module]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArchvizError(f"cannot import {module_name!r} from {path!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ArchvizError(f"{module_name!r} has no callable {attr!r}")
    return factory


def _torchvision_model(name: str, weights: str | None, kwargs: dict) -> nn.Module:
    from torchvision import models as tvm

    if name not in tvm.list_models(module=tvm):
        raise ArchvizError(f"unknown torchvision model {name!r}")
    return tvm.get_model(name, weights=weights, **kwargs)


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
