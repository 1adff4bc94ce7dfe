"""Load and save checkpoint files safely: untrusted files never run code.

A `.pt`/`.pth`/`.bin`/`.ckpt` file is a pickle, and unpickling can run arbitrary code, so
it is read with `torch.load(weights_only=True)`, which accepts only tensors and plain
containers. `.safetensors` holds tensors only. Every failure becomes a one-line
ArchvizError naming the file, so the CLI never shows a traceback for a bad file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from archviz.checkpoints.load_guard import (
    check_declared_size,
    check_pickle_format,
    check_readable_file,
    default_limit,
)
from archviz.errors import ArchvizError
from archviz.render.atomic import write_atomic
from archviz.run import register_input

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")

# Where training code nests the weights, most specific first: Lightning and most scripts
# use `state_dict`, detection/forensics repositories `model`, others `model_state_dict`,
# `net`, and EMA copies under `ema` / `state_dict_ema` (timm).
CONTAINER_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "ema",
    "state_dict_ema",
    "module",
)

StateDict = dict[str, Tensor]

# The CLI's --max-load-bytes: set for one command, read by every load_file below it.
MAX_LOAD_BYTES: ContextVar[int | None] = ContextVar("archviz_max_load_bytes", default=None)


def looks_like_checkpoint(spec: str | os.PathLike[str]) -> bool:
    """A path to read, as opposed to a model name: an existing path or a checkpoint suffix."""
    text = os.fspath(spec)
    return os.path.exists(text) or text.lower().endswith(CHECKPOINT_SUFFIXES)


def load_file(
    path: str | os.PathLike[str], *, max_bytes: int | None = None, reference_bytes: int = 0
) -> Any:
    """Read a checkpoint file into plain Python objects and tensors, refusing code.

    Refuses, before allocating, a file whose storages declare more than `max_bytes`
    (default: 4x the file's size or `reference_bytes`, whichever is larger).
    """
    file = Path(path)
    check_readable_file(file)
    register_input(file)
    if max_bytes is None:
        max_bytes = MAX_LOAD_BYTES.get()
    limit = max_bytes if max_bytes is not None else default_limit(file, reference_bytes)
    if file.suffix.lower() == ".safetensors":
        return _load_safetensors(file)  # its header is checked against the file's size
    check_pickle_format(file)
    check_declared_size(file, limit)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except RecursionError:
        raise ArchvizError(f"cannot load checkpoint {str(file)!r}: nested too deeply") from None
    except Exception as exc:  # untrusted bytes: any failure is the file's fault
        raise ArchvizError(f"cannot load checkpoint {str(file)!r}: {_why(exc)}") from None


def _load_safetensors(file: Path) -> StateDict:
    from safetensors.torch import load_file as st_load

    try:
        return st_load(str(file), device="cpu")
    except Exception as exc:
        raise ArchvizError(f"cannot load safetensors file {str(file)!r}: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    """One line out of torch's multi-paragraph messages, keeping the telling part."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if str(exc).startswith("Weights only load failed"):
        detail = next((line for line in lines if "Unsupported" in line), "")
        return f"refused to unpickle code or custom objects (weights_only=True). {detail}".strip()
    return f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"


def is_state_dict(obj: object) -> bool:
    """A non-empty mapping from strings to tensors."""
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


MAX_NESTING = 8  # container levels searched for the weights; real checkpoints use 1 or 2


def unwrap(obj: object, source: str) -> tuple[StateDict, str | None]:
    """The state_dict inside a checkpoint and the container path it sat under (or None).

    Unwrapping is not a remapping: `{'state_dict': sd, 'epoch': 3}` holds `sd` unchanged.
    The search is breadth-first and bounded, so a self-referencing or 100,000-deep
    container is a one-line error, not a RecursionError.
    """
    if is_state_dict(obj):
        assert isinstance(obj, Mapping)
        return dict(obj), None
    if not isinstance(obj, Mapping):
        raise ArchvizError(
            f"{source} holds a {type(obj).__name__}, not a state_dict (a dict of tensors)"
        )
    level: list[tuple[Mapping, str | None]] = [(obj, None)]
    seen, cycle = {id(obj)}, False
    for _depth in range(MAX_NESTING):
        deeper: list[tuple[Mapping, str | None]] = []
        for mapping, path in level:
            for key in CONTAINER_KEYS:
                inner = mapping.get(key)
                where = key if path is None else f"{path}.{key}"
                if is_state_dict(inner):
                    assert isinstance(inner, Mapping)
                    return dict(inner), where
                if isinstance(inner, Mapping):
                    cycle = cycle or id(inner) in seen
                    if id(inner) not in seen:
                        seen.add(id(inner))
                        deeper.append((inner, where))
        level = deeper
    if cycle:
        raise ArchvizError(f"{source} holds a container that contains itself, not a state_dict")
    if level:
        raise ArchvizError(
            f"{source} nests containers more than {MAX_NESTING} levels deep without "
            "reaching a state_dict"
        )
    keys = ", ".join(repr(k) for k in list(obj)[:8])
    raise ArchvizError(
        f"{source} holds no state_dict: a dict with keys {keys}; expected tensors or "
        f"one of {', '.join(CONTAINER_KEYS)}"
    )


def save_state_dict(
    state_dict: Mapping[str, Tensor],
    path: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
    keep_metadata: bool = False,
    check: Callable[[Path], None] | None = None,
) -> str | None:
    """Write a state_dict atomically: safetensors for `.safetensors`, else `torch.save`.

    `source` is the checkpoint it came from: never overwritten, and with `keep_metadata`
    its container entries beside the weights (`epoch`, `optimizer`, ...) are written
    too, with the weights in their old place. `check(temp_path)` may refuse the written
    bytes before the rename (see `write_atomic`). Returns a notice when entries are dropped.
    """
    file = Path(path)
    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    payload, notice = _with_metadata(tensors, source, keep_metadata, file)
    inputs = [source] if source is not None and looks_like_checkpoint(source) else []

    def write(tmp: Path) -> None:
        try:
            if file.suffix.lower() == ".safetensors":
                from safetensors.torch import save_file

                save_file(tensors, str(tmp))
            else:
                torch.save(payload, tmp)
        except OSError:
            raise
        except Exception as exc:  # torch wraps a full disk in a RuntimeError
            raise ArchvizError(f"cannot write {str(file)!r}: {_why(exc)}") from None

    write_atomic(file, write, inputs=inputs, check=check)
    return notice


def _with_metadata(
    tensors: StateDict, source: str | os.PathLike[str] | None, keep: bool, file: Path
) -> tuple[Any, str | None]:
    """The object to save and a notice about container entries left out (or None)."""
    if source is None or not looks_like_checkpoint(source):
        return tensors, None
    original = load_file(source)
    _, where = unwrap(original, f"checkpoint {os.fspath(source)!r}")
    if where is None:
        return tensors, None
    extras = sorted(str(k) for k in original if str(k) != where.split(".")[0])
    if not keep:
        dropped = ", ".join(repr(k) for k in extras) or "the container"
        return tensors, (
            f"note: wrote the weights only; dropped {dropped} from the checkpoint's container "
            "(ask for --keep-metadata to keep them)"
        )
    if file.suffix.lower() == ".safetensors":
        raise ArchvizError(
            "safetensors holds tensors only: write a .pt file to keep the checkpoint's "
            f"{', '.join(repr(k) for k in extras)}"
        )
    return _replaced(original, where.split("."), tensors), None


def _replaced(container: Mapping, path: list[str], value: Any) -> dict:
    """A copy of `container` with the entry at `path` replaced; the rest shared as is."""
    out = dict(container)
    out[path[0]] = value if len(path) == 1 else _replaced(container[path[0]], path[1:], value)
    return out
