"""Hostile checkpoint files, built at test time (nothing binary is committed)."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch


class _Storage:
    """Stands for a storage in the pickle; torch.save writes it as a persistent id."""


class _Tensor:
    def __init__(self, storage: _Storage, numel: int) -> None:
        self.storage, self.numel = storage, numel

    def __reduce__(self):
        return (
            torch._utils._rebuild_tensor_v2,
            (self.storage, 0, (self.numel,), (1,), False, OrderedDict()),
        )


def data_pkl(numel: int) -> bytes:
    """torch.save's pickle for {'weight': <float32 tensor of `numel` in record 0>}."""
    storage = _Storage()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is storage:
                return ("storage", torch.FloatStorage, "0", "cpu", numel)
            return None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"weight": _Tensor(storage, numel)})
    return buffer.getvalue()


def compressed_bomb(path: Path, nbytes: int) -> Path:
    """A torch zip checkpoint whose one float32 record inflates to `nbytes` zeros."""
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bomb/data.pkl", data_pkl(nbytes // 4))
        archive.writestr("bomb/byteorder", "little")
        archive.writestr("bomb/version", "3\n")
        info = zipfile.ZipInfo("bomb/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = 1  # type: ignore[attr-defined]  # fast; zipfile has no public knob
        with archive.open(info, "w", force_zip64=True) as record:
            for _ in range(nbytes // len(chunk)):
                record.write(chunk)
            record.write(bytes(nbytes % len(chunk)))
    return path


def with_data_pkl(path: Path, data_pkl: bytes) -> Path:
    """A real torch.save zip whose pickle is replaced by `data_pkl`."""
    base = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, base)
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = data_pkl if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info.filename, data)
    return path


def deep_pickle(depth: int) -> bytes:
    """{'state_dict': {'state_dict': ... {}}}, `depth` levels, without recursion."""
    key = pickle.dumps("state_dict", 2)[2:-1]
    return b"\x80\x02" + (b"}" + key) * depth + b"}" + b"s" * depth + b"."


def self_referencing_pickle() -> bytes:
    d: dict = {}
    d["state_dict"] = d
    return pickle.dumps(d, 2)
