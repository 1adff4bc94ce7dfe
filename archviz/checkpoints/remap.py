"""Propose how a checkpoint's modules map onto a reference's: pure functions of names and shapes.

Two things go wrong in real checkpoints. A wrapper adds a prefix to every key (`module.`
from DataParallel/DDP, `_orig_mod.` from torch.compile, `model.`/`backbone.` from training
frameworks); and a re-implementation names modules differently (a `shortcut` that is
torchvision's `downsample`, Hugging Face's `stages.0.layers.0.layer.2.convolution`).

Keys are grouped by owning module (a conv's weight, a BatchNorm's weight, bias and
buffers move together) and modules are paired, never keys. Pairing takes evidence in
this order: the observed dataflow graph (given by the caller as `decided`), a known
library layout, names (token synonyms, stage numbering), then shape where only one
module of that shape is left in its block or in the model. Equal-shape modules that
no evidence tells apart are reported as an `Ambiguity`, never paired by their order.
Everything is linear in the length of the keys: a hostile 100 kB key costs 100 kB.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from archviz.checkpoints import layouts, prefix

Shape = tuple[int, ...]
Shapes = Mapping[str, Shape]
Signature = tuple[tuple[str, Shape], ...]
V = TypeVar("V")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Pair:
    """A candidate module (path after the prefix step) paired with a reference module."""

    candidate: str
    reference: str
    evidence: str  # "graph", "layout <name>", "name", "shape"


@dataclass(frozen=True)
class Ambiguity:
    """Equal-shape modules that could be assigned in more than one way."""

    candidates: tuple[str, ...]
    references: tuple[str, ...]
    shapes: str  # e.g. "weight 256x64x1x1"
    missing: str  # the evidence that would decide


@dataclass(frozen=True)
class Remapping:
    """Candidate key -> reference key. Keys not in `mapping` or `dropped` stay as they are."""

    strip: str  # prefix removed from candidate keys ("" if none)
    add: str  # prefix added to candidate keys ("" if none)
    renames: tuple[tuple[str, str, int], ...]  # (old name, new name, keys): the summary
    mapping: tuple[tuple[str, str], ...]  # every changed key, candidate -> reference
    dropped: tuple[str, ...]  # candidate keys outside the wrapper prefix
    pairs: tuple[Pair, ...] = ()  # renamed modules and the evidence for each
    ambiguities: tuple[Ambiguity, ...] = ()  # unpaired: no evidence decides
    layout: str | None = None  # a recognised library layout
    order_guess: tuple[tuple[str, str], ...] = ()  # ambiguous keys paired by order: never used

    @property
    def decided(self) -> bool:
        return not self.ambiguities


def same_shape(candidate: Shape, reference: Shape) -> bool:
    """PyTorch's rule: equal, or a 1-element 1-d tensor loading into a 0-d one (0.3 compat)."""
    return candidate == reference or (reference == () and candidate == (1,))


def propose(
    candidate: Shapes, reference: Shapes, decided: Mapping[str, str] | None = None
) -> Remapping | None:
    """The remapping that makes the most candidate keys reference keys, or None if none helps.

    `decided` pairs candidate module paths (as in `candidate`) with reference module paths
    from stronger evidence than names, e.g. the dataflow graph.
    """
    strip, add = prefix.best_prefix(candidate, reference)
    moved: dict[str, str] = {}  # candidate key -> key after the prefix step
    dropped: list[str] = []
    for key in candidate:
        if key.startswith(strip):
            moved[key] = add + key[len(strip) :]
        else:
            dropped.append(key)
    graph = {add + k[len(strip) :]: v for k, v in (decided or {}).items() if k.startswith(strip)}
    shapes = {moved[k]: candidate[k] for k in moved}
    pairs, ambiguities, layout = pair_modules(modules(shapes), modules(reference), graph)
    renamed = {p.candidate: p.reference for p in pairs}
    mapping = _key_mapping(moved, renamed)
    if not mapping and not dropped and not ambiguities:
        return None
    guess = {c: r for a in ambiguities for c, r in zip(a.candidates, a.references, strict=True)}
    order_guess = _key_mapping({k: m for k, m in moved.items() if _module(m) in guess}, guess)
    summary = _summarise({c: r for c, r in renamed.items() if c != r})
    return Remapping(
        strip, add, summary, mapping, tuple(dropped), pairs, ambiguities, layout, order_guess
    )


def apply(state_dict: Mapping[str, V], remapping: Remapping) -> dict[str, V]:
    """A new dict with the remapping applied; values are shared, not copied."""
    mapping, dropped = dict(remapping.mapping), set(remapping.dropped)
    return {mapping.get(k, k): v for k, v in state_dict.items() if k not in dropped}


def apply_guess(state_dict: Mapping[str, V], remapping: Remapping) -> dict[str, V]:
    """The remapping with each ambiguity filled in by order: only to test that *some*
    assignment loads (then the verdict is `ambiguous`, not `incompatible`). Never written."""
    mapping = dict(remapping.mapping) | dict(remapping.order_guess)
    dropped = set(remapping.dropped)
    return {mapping.get(k, k): v for k, v in state_dict.items() if k not in dropped}


def confirm_guess(remapping: Remapping) -> Remapping:
    """The order guess, once a forward pass showed that it computes the candidate's outputs."""
    extra = tuple(
        Pair(c, r, "order, confirmed by the forward check")
        for a in remapping.ambiguities
        for c, r in zip(a.candidates, a.references, strict=True)
    )
    return dataclasses.replace(
        remapping,
        mapping=remapping.mapping + remapping.order_guess,
        pairs=remapping.pairs + extra,
        ambiguities=(),
        order_guess=(),
    )


def modules(shapes: Shapes) -> dict[str, dict[str, Shape]]:
    """Module path -> {leaf name: shape}, in first-seen order: the unit that moves together."""
    found: dict[str, dict[str, Shape]] = {}
    for key, shape in shapes.items():
        path, _, leaf = key.rpartition(".")
        found.setdefault(path, {})[leaf] = shape
    return found


def signature(leaves: Mapping[str, Shape]) -> Signature:
    """What must agree for two modules to swap places; `num_batches_tracked` may be absent."""
    return tuple(sorted((k, v) for k, v in leaves.items() if k != "num_batches_tracked"))


def _rename(key: str, renamed: Mapping[str, str]) -> str:
    path, dot, leaf = key.rpartition(".")
    return renamed[path] + dot + leaf if path in renamed else key


def _module(key: str) -> str:
    return key.rpartition(".")[0]


def _key_mapping(
    moved: Mapping[str, str], renamed: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """Every candidate key whose name changes: by the prefix step, then its module's rename."""
    pairs = ((key, _rename(new, renamed)) for key, new in moved.items())
    return tuple((key, new) for key, new in pairs if new != key)


def pair_modules(
    cand: Mapping[str, Mapping[str, Shape]],
    ref: Mapping[str, Mapping[str, Shape]],
    decided: Mapping[str, str],
) -> tuple[tuple[Pair, ...], tuple[Ambiguity, ...], str | None]:
    """Pair modules the reference lacks with modules it has not matched, by evidence.

    Modules with the same name and signature on both sides are left as they are. Each
    pass pairs a candidate with a reference only where its key (a name, a name plus
    signature, a signature) picks out exactly one of each; the passes repeat, so pairing
    one of two equal-shape modules by name decides the other by elimination.
    """
    sigs = {n: signature(v) for n, v in cand.items()}
    rsigs = {n: signature(v) for n, v in ref.items()}
    pairs = [
        Pair(c, r, "graph")
        for c, r in decided.items()
        if c in sigs and r in rsigs and sigs[c] == rsigs[r]
    ]
    taken = {p.candidate for p in pairs} | {p.reference for p in pairs}
    same = {n for n in cand if n in ref and n not in taken}
    left = [n for n in cand if n not in same and n not in taken]
    wanted = [n for n in ref if n not in same and n not in taken]
    layout = layouts.detect(left)
    # Every pass keys on the signature: a module whose signature no wanted module has can
    # never pair, so a 1,000,000-key candidate costs one look each, not one per pass.
    wanted_sigs = {rsigs[n] for n in wanted}
    left = [n for n in left if sigs[n] in wanted_sigs]
    passes = _passes(layout, sigs, rsigs)
    while True:
        found = _unique_pairs(left, wanted, passes)
        if not found:
            break
        pairs += found
        done_c, done_r = {p.candidate for p in found}, {p.reference for p in found}
        left = [n for n in left if n not in done_c]
        wanted = [n for n in wanted if n not in done_r]
    return tuple(pairs), _ambiguities(left, wanted, sigs, rsigs), layout.name if layout else None


Pass = tuple[str, Callable[[str], object], Callable[[str], object]]


def _passes(
    layout: layouts.Layout | None, sigs: Mapping[str, Signature], rsigs: Mapping[str, Signature]
) -> list[Pass]:
    """(evidence, candidate key, reference key), strongest evidence first."""
    found: list[Pass] = []
    if layout is not None:
        found.append(
            (
                f"layout {layout.name}",
                lambda c: (layouts.rename(layout, c), sigs[c]),
                lambda r: (r, rsigs[r]),
            )
        )

    def by(name: Callable[[str], str]) -> tuple[Callable[[str], object], Callable[[str], object]]:
        memo: dict[str, str] = {}  # passes repeat; names are computed once per run

        def cached(path: str) -> str:
            if path not in memo:
                memo[path] = name(path)
            return memo[path]

        return (lambda c: (cached(c), sigs[c])), (lambda r: (cached(r), rsigs[r]))

    in_block = lambda path: layouts.canonical(_module(path))  # noqa: E731
    return [
        *found,
        ("name", *by(layouts.canonical)),
        ("name", *by(layouts.coarse)),
        ("shape in block", *by(in_block)),
        ("shape", lambda c: sigs[c], lambda r: rsigs[r]),
    ]


def _unique_pairs(
    left: list[str],
    wanted: list[str],
    passes: list[Pass],
) -> list[Pair]:
    """The first pass that pairs anything: keys with exactly one module on each side."""
    for evidence, cand_key, ref_key in passes:
        by_c: dict[object, list[str]] = defaultdict(list)
        by_r: dict[object, list[str]] = defaultdict(list)
        for n in left:
            by_c[cand_key(n)].append(n)
        for n in wanted:
            by_r[ref_key(n)].append(n)
        found = [
            Pair(cs[0], by_r[k][0], evidence)
            for k, cs in by_c.items()
            if len(cs) == 1 and len(by_r.get(k, ())) == 1
        ]
        if found:
            return found
    return []


def _ambiguities(
    left: list[str],
    wanted: list[str],
    sigs: Mapping[str, Signature],
    rsigs: Mapping[str, Signature],
) -> tuple[Ambiguity, ...]:
    """Equal-shape modules left over in equal numbers: any assignment would load."""
    by_c: dict[Signature, list[str]] = defaultdict(list)
    by_r: dict[Signature, list[str]] = defaultdict(list)
    for n in left:
        by_c[sigs[n]].append(n)
    for n in wanted:
        by_r[rsigs[n]].append(n)
    found = []
    for sig, cs in by_c.items():
        rs = by_r.get(sig, [])
        if len(cs) == len(rs) >= 2:
            found.append(Ambiguity(tuple(cs), tuple(rs), _describe(sig), _missing()))
    return tuple(found)


def _describe(sig: Signature) -> str:
    """'weight 256x64x1x1', or 'weight 256 and 3 more tensors' for a BatchNorm."""
    leaf, shape = next(((k, v) for k, v in sig if k == "weight"), sig[0])
    more = f" and {len(sig) - 1} more tensors" if len(sig) > 1 else ""
    return f"{leaf[:40]} {'x'.join(map(str, shape)) or 'scalar'}{more}"


def _missing() -> str:
    return "no name, layout, unique shape or dataflow position tells these modules apart"


def _summarise(pairs: Mapping[str, str]) -> tuple[tuple[str, str, int], ...]:
    """Collapse module pairs to the names that differ, numbers as '#':
    ('shortcut', 'downsample', 6), ('stages.#.blocks.#.norm1', 'layer#.#.bn1', 4)."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for old, new in pairs.items():
        a, b = old.split("."), new.split(".")
        if len(a) == len(b):
            diff = [i for i in range(len(a)) if a[i] != b[i]]
            if diff and diff[-1] - diff[0] + 1 == len(diff):
                a, b = a[diff[0] : diff[-1] + 1], b[diff[0] : diff[-1] + 1]
        short = (".".join(a), ".".join(b))
        groups[(_DIGITS.sub("#", short[0]), _DIGITS.sub("#", short[1]))].append(short)
    return tuple(
        (*(key if len(set(members)) > 1 else members[0]), len(members))
        for key, members in groups.items()
    )
