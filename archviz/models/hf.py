"""Model specs from other ecosystems: a Hugging Face `config.json`, `hf:ORG/NAME`,
`transformers:ClassName` and `timm:NAME`.

Transformers are built from their config alone, on the meta device: no weights are read,
allocated or initialised, so Llama-3-70B builds in seconds. `hf:ORG/NAME` fetches only that
model's config.json (from Hugging Face's cache if it is there, else fetched once into
~/.cache/archviz/hf). transformers and timm are the optional
`layouts` extra; without them a spec says which extra to install.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from archviz.errors import ArchvizError
from archviz.run import register_input

HF_PREFIX, TRANSFORMERS_PREFIX, TIMM_PREFIX = "hf:", "transformers:", "timm:"
PREFIXES = (HF_PREFIX, TRANSFORMERS_PREFIX, TIMM_PREFIX)
HUB_URL = "https://huggingface.co/{repo}/resolve/main/config.json"
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_spec(spec: str) -> bool:
    """A spec this module builds: one of PREFIXES, or a path to a config.json (or its folder)."""
    if spec.startswith(PREFIXES):
        return True
    path = Path(spec).expanduser()
    return spec.endswith(".json") or (path.is_dir() and (path / "config.json").is_file())


def build_spec(spec: str) -> nn.Module:
    """The model a spec names, randomly initialised (transformers: on meta, no weights)."""
    if spec.startswith(TIMM_PREFIX):
        return _timm(spec.removeprefix(TIMM_PREFIX))
    if spec.startswith(TRANSFORMERS_PREFIX):
        return _transformers_class(spec.removeprefix(TRANSFORMERS_PREFIX))
    if spec.startswith(HF_PREFIX):
        return from_config_file(fetch_config(spec.removeprefix(HF_PREFIX)))
    return from_config_file(Path(spec).expanduser())


def require(name: str) -> ModuleType:
    """Import an optional dependency, or say in one line which extra brings it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ArchvizError(
            f"this model needs {name}, part of archviz's optional 'layouts' extra: "
            f"pip install 'archviz[layouts]' (or pip install {name})"
        ) from None


def from_config_file(path: Path) -> nn.Module:
    """`architectures[0]` of a Hugging Face config.json (a file, or the folder holding it)."""
    if path.is_dir():
        path = path / "config.json"
    register_input(path)  # an input of this run: no output may replace it
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchvizError(f"no such config file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchvizError(f"cannot read {path} as a JSON config: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise ArchvizError(
            f'{path} is not a Hugging Face config.json: it has no "model_type"; '
            "give a model's config.json (from its page on huggingface.co)"
        )
    transformers = require("transformers")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    kind = data["model_type"]
    if kind not in CONFIG_MAPPING:
        raise ArchvizError(
            f"{path}: model_type {kind!r} is unknown to transformers "
            f"{transformers.__version__}; upgrade transformers"
        )
    with _quiet():
        config = CONFIG_MAPPING[kind].from_dict(data)
    names = data.get("architectures") or []
    cls = getattr(transformers, names[0], None) if names and isinstance(names[0], str) else None
    if cls is None:
        cls = transformers.AutoModel
        if names:
            raise ArchvizError(
                f"{path}: transformers {transformers.__version__} has no class {names[0]!r}; "
                'upgrade transformers, or remove "architectures" to build the base model'
            )
    return build_on_meta(cls, config, str(path))


def build_on_meta(cls: Any, config: Any, where: str) -> nn.Module:
    """`cls` from `config` on the meta device, in the config's dtype: no weights anywhere."""
    build = cls.from_config if cls.__name__.startswith("Auto") else cls._from_config
    try:
        with torch.device("meta"), _quiet():
            model = build(config)
    except ArchvizError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArchvizError(f"building {cls.__name__} from {where} failed: {first}") from None
    return model.eval()


def _transformers_class(name: str) -> nn.Module:
    """A transformers model class with its config class's defaults (BertModel: bert-base)."""
    transformers = require("transformers")
    cls = getattr(transformers, name, None) if name.isidentifier() else None
    config_class = getattr(cls, "config_class", None)
    if cls is None or config_class is None:
        raise ArchvizError(
            f"transformers has no model class {name!r}; write transformers:ClassName, "
            "e.g. transformers:BertModel"
        )
    with _quiet():
        config = config_class()
    return build_on_meta(cls, config, f"{config_class.__name__}()")


def _timm(name: str) -> nn.Module:
    timm = require("timm")
    if name not in timm.list_models():
        raise ArchvizError(f"unknown timm model {name!r}; timm.list_models() lists them")
    return timm.create_model(name, pretrained=False)


def cache_dir() -> Path:
    """Where fetched configs live: $ARCHVIZ_CACHE, else ~/.cache/archviz."""
    return Path(os.environ.get("ARCHVIZ_CACHE", "~/.cache/archviz")).expanduser() / "hf"


def fetch_config(repo: str) -> Path:
    """The cached config.json of a Hub repo ORG/NAME, fetched once (nothing else)."""
    if not _REPO.match(repo) or ".." in repo:
        raise ArchvizError(f"malformed Hugging Face repo {repo!r}; write hf:ORG/NAME")
    target = cache_dir() / repo / "config.json"
    if target.is_file():
        return target
    cached = hub_cached(repo)
    if cached is not None:
        return cached
    url = HUB_URL.format(repo=repo)
    try:
        data = download(url)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ArchvizError(
            f"cannot fetch {url} ({exc}); download that config.json yourself and pass "
            "its path instead: archviz trace path/to/config.json"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def hub_cached(repo: str) -> Path | None:
    """The config.json Hugging Face's own cache holds for `repo` (from_pretrained put it
    there), if huggingface_hub is installed and has one."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, "config.json")
    return Path(found) if isinstance(found, str) else None


def download(url: str) -> bytes:
    """One GET (tests replace this: they never touch the network)."""
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.read()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers' notes on generation configs and init go to the log, not the terminal."""
    try:
        from transformers.utils import logging
    except ImportError:
        yield
        return
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)
