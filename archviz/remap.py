"""Propose how a checkpoint's keys map onto a reference's: pure functions of names and shapes.

Two things go wrong in real checkpoints. A wrapper adds a prefix to every key (`module.`
from DataParallel/DDP, `_orig_mod.` from torch.compile, `model.`/`backbone.` from training
frameworks); and a re-implementation names a module differently (a `shortcut` that is
torchvision's `downsample`). The first is found by voting over key suffixes, the second by
pairing leftover keys in registration order within each (leaf name, shape) class, so a
BatchNorm's weight never pairs with its bias even though both are (C,).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

Shape = tuple[int, ...]
Shapes = Mapping[str, Shape]
V = TypeVar("V")

# Wrapper prefixes whose origin is worth naming in the report.
KNOWN_PREFIXES = {
    "module.": "DataParallel/DistributedDataParallel",
    "_orig_mod.": "torch.compile",
    "model.": "a training wrapper such as Lightning",
    "backbone.": "a detection/segmentation backbone wrapper",
}


@dataclass(frozen=True)
class Remapping:
    """Candidate key -> reference key. Keys not in `mapping` or `dropped` stay as they are."""

    strip: str  # prefix removed from candidate keys ("" if none)
    add: str  # prefix added to candidate keys ("" if none)
    renames: tuple[tuple[str, str, int], ...]  # (old name, new name, keys): the summary
    mapping: tuple[tuple[str, str], ...]  # every changed key, candidate -> reference
    dropped: tuple[str, ...]  # candidate keys outside the wrapper prefix


def same_shape(candidate: Shape, reference: Shape) -> bool:
    """PyTorch's rule: equal, or a 1-element 1-d tensor loading into a 0-d one (0.3 compat)."""
    return candidate == reference or (reference == () and candidate == (1,))


def propose(candidate: Shapes, reference: Shapes) -> Remapping | None:
    """The remapping that makes the most candidate keys reference keys, or None if none helps."""
    strip, add = _best_prefix(candidate, reference)
    keys: dict[str, str] = {}  # candidate key -> key after the prefix step
    dropped: list[str] = []
    for key in candidate:
        if key.startswith(strip):
            keys[key] = add + key[len(strip) :]
        else:
            dropped.append(key)
    renamed = _align({keys[k]: candidate[k] for k in keys}, reference)
    mapping = tuple(
        (key, renamed.get(new, new)) for key, new in keys.items() if renamed.get(new, new) != key
    )
    if not mapping and not dropped:
        return None
    return Remapping(strip, add, _summarise(renamed), mapping, tuple(dropped))


def apply(state_dict: Mapping[str, V], remapping: Remapping) -> dict[str, V]:
    """A new dict with the remapping applied; values are shared, not copied."""
    mapping, dropped = dict(remapping.mapping), set(remapping.dropped)
    return {mapping.get(k, k): v for k, v in state_dict.items() if k not in dropped}


def _best_prefix(candidate: Shapes, reference: Shapes) -> tuple[str, str]:
    """(strip, add): the prefix change that makes the most keys match, ("", "") if none."""
    votes: Counter[tuple[str, str]] = Counter()
    for key in candidate:
        for head, tail in _splits(key):
            if tail in reference:
                votes[(head, "")] += 1
    for key in reference:
        for head, tail in _splits(key):
            if tail in candidate:
                votes[("", head)] += 1
    before = sum(1 for k in candidate if k in reference)
    for (strip, add), _ in votes.most_common(3):
        after = sum(
            1 for k in candidate if k.startswith(strip) and add + k[len(strip) :] in reference
        )
        if after > before:
            return strip, add
    return "", ""


def _splits(key: str) -> list[tuple[str, str]]:
    """'a.b.c' -> [('a.', 'b.c'), ('a.b.', 'c')]: every prefix/rest split at a dot."""
    parts = key.split(".")
    return [(".".join(parts[:i]) + ".", ".".join(parts[i:])) for i in range(1, len(parts))]


def _align(candidate: Shapes, reference: Shapes) -> dict[str, str]:
    """Pair unexpected keys with missing ones by order within each (leaf, shape) class.

    Accepted only if every missing key finds a partner: a partial pairing of unrelated
    architectures would be a guess, not a mapping.
    """
    unexpected = [k for k in candidate if k not in reference]
    missing = [k for k in reference if k not in candidate]
    if not unexpected or not missing:
        return {}
    pools: dict[tuple[str, Shape], list[str]] = defaultdict(list)
    for key in unexpected:
        pools[(key.rsplit(".", 1)[-1], candidate[key])].append(key)
    pairs: dict[str, str] = {}
    for key in missing:
        pool = pools.get((key.rsplit(".", 1)[-1], reference[key]))
        if not pool:
            return {}
        pairs[pool.pop(0)] = key
    return pairs


def _summarise(pairs: Mapping[str, str]) -> tuple[tuple[str, str, int], ...]:
    """Collapse key pairs to the names that differ: ('shortcut', 'downsample', 12)."""
    counts: Counter[tuple[str, str]] = Counter()
    for old, new in pairs.items():
        a, b = old.split("."), new.split(".")
        if len(a) == len(b):
            diff = [i for i in range(len(a)) if a[i] != b[i]]
            if diff and diff[-1] - diff[0] + 1 == len(diff):
                lo, hi = diff[0], diff[-1] + 1
                counts[(".".join(a[lo:hi]), ".".join(b[lo:hi]))] += 1
                continue
        counts[(old, new)] += 1
    return tuple((old, new, n) for (old, new), n in counts.items())
