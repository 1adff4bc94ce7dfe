"""Wrapper prefixes: `module.` (DataParallel/DDP), `_orig_mod.` (torch.compile),
`model.`/`backbone.` (training and detection frameworks), found by voting over key tails.

Linear in the length of the keys: a key is only sliced where its tail could be a key of
the other side (same length), so a hostile 100 kB key of 50,000 dots costs 100 kB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

Shapes = Mapping[str, tuple[int, ...]]

# Wrapper prefixes whose origin is worth naming in the report.
KNOWN_PREFIXES = {
    "module.": "DataParallel/DistributedDataParallel",
    "_orig_mod.": "torch.compile",
    "model.": "a training wrapper such as Lightning",
    "backbone.": "a detection/segmentation backbone wrapper",
}


def best_prefix(candidate: Shapes, reference: Shapes) -> tuple[str, str]:
    """(strip, add): the prefix change that makes the most keys match, ("", "") if none."""
    votes: Counter[tuple[str, str]] = Counter()
    for _key, head in _matching_tails(candidate, reference):
        votes[(head, "")] += 1
    for _key, head in _matching_tails(reference, candidate):
        votes[("", head)] += 1
    before = sum(1 for k in candidate if k in reference)
    for (strip, add), _ in votes.most_common(3):
        after = sum(
            1 for k in candidate if k.startswith(strip) and add + k[len(strip) :] in reference
        )
        if after > before:
            return strip, add
    return "", ""


def _matching_tails(keys: Shapes, targets: Shapes) -> list[tuple[str, str]]:
    """(key, head) for each split `head + tail` of a key at a dot where `tail` is a target.

    Only splits whose tail has the length of some target are sliced, so a key costs its
    length plus a few short slices, never its length times its number of dots.
    """
    lengths = {len(t) for t in targets}
    found = []
    for key in keys:
        dot = key.find(".")
        while dot != -1:
            if len(key) - dot - 1 in lengths and key[dot + 1 :] in targets:
                found.append((key, key[: dot + 1]))
            dot = key.find(".", dot + 1)
    return found
