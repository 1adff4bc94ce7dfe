"""VerifyResult -> text, Markdown or JSON: one screen, problems grouped by module prefix.

Rendering only: nothing here loads or runs a model. Keys are grouped (`layer4.2.*: 18 keys`)
so a missing stage reads as one line, not a wall of keys; shape mismatches are listed with
both shapes because the two shapes are the diagnosis.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from archviz.checkpoints.prefix import KNOWN_PREFIXES
from archviz.render.escape import md_escape, term_safe

if TYPE_CHECKING:  # keeps `archviz --help` free of the torch import
    from archviz.checkpoints.verify import ShapeMismatch, VerifyResult

MAX_GROUPS = 6  # lines per section before coarser grouping / "... and N more"
MAX_NAME = 120  # a key longer than this is shortened in text (a hostile file's 100 kB key)


def _name(text: str) -> str:
    """A key or module path for a line of text: escaped, and shortened past MAX_NAME."""
    if len(text) > MAX_NAME:
        text = f"{text[:60]}...{text[-40:]} ({len(text)} chars)"
    return term_safe(text)


def group_keys(keys: Sequence[str], max_groups: int = MAX_GROUPS) -> list[tuple[str, int]]:
    """Counts per module prefix, block level (`layer4.2.*`) or, if too many, stage level."""
    prefixes: list[str] = []
    for depth in (2, 1):
        prefixes = [_prefix(k, depth) for k in keys]
        if len(set(prefixes)) <= max_groups:
            break
    first: dict[str, str] = {}
    for prefix, key in zip(prefixes, keys, strict=True):
        first.setdefault(prefix, key)
    return [(first[p] if n == 1 else f"{p}.*", n) for p, n in Counter(prefixes).items()]


def _prefix(key: str, depth: int) -> str:
    parts = key.split(".")
    return ".".join(parts[: max(1, min(depth, len(parts) - 1))])


def remapping_lines(result: VerifyResult) -> list[str]:
    """The proposed remapping in words: prefix change, renames and their evidence, drops."""
    remapping = result.remapping
    if remapping is None:
        return []
    lines = []
    if remapping.strip:
        origin = KNOWN_PREFIXES.get(remapping.strip)
        strip = _name(remapping.strip)
        lines.append(f"strip prefix '{strip}'" + (f" ({origin})" if origin else ""))
    if remapping.add:
        lines.append(f"add prefix '{_name(remapping.add)}'")
    if remapping.layout:
        lines.append(f"layout: {remapping.layout} ({len(remapping.pairs)} modules by its rules)")
    renames = [
        f"rename '{_name(old)}' -> '{_name(new)}' ({n} modules)"
        if n > 1
        else f"rename '{_name(old)}' -> '{_name(new)}'"
        for old, new, n in remapping.renames
    ]
    lines += _capped(renames)
    evidence = Counter(p.evidence for p in remapping.pairs)
    if evidence:
        lines.append("paired by " + ", ".join(f"{e} ({n})" for e, n in evidence.items()))
    if remapping.dropped:
        lines.append(f"drop {len(remapping.dropped)} keys outside the prefix")
    return lines


def ambiguity_lines(result: VerifyResult, sep: str = "\n    ") -> list[str]:
    """Which modules could be swapped, and the evidence that would decide it."""
    if result.remapping is None:
        return []
    lines = []
    for a in result.remapping.ambiguities[:MAX_GROUPS]:
        cands = ", ".join(_name(c) for c in a.candidates[:3])
        refs = ", ".join(_name(r) for r in a.references[:3])
        more = f" and {len(a.candidates) - 3} more" if len(a.candidates) > 3 else ""
        lines.append(f"{cands}{more} ({a.shapes}){sep}could be {refs}{more}")
    if result.remapping.ambiguities:
        lines.append(f"missing evidence: {result.remapping.ambiguities[0].missing}")
    return lines


def render_text(result: VerifyResult) -> str:
    """The one-screen summary: verdict first, counts, then grouped problems."""
    r = result
    where = f" (state_dict under '{_name(r.container)}')" if r.container else ""
    lines = [
        f"verdict: {r.verdict}",
        f"candidate: {_name(r.candidate)}{where}, {r.candidate_keys} keys",
        f"reference: {_name(r.reference)}, {r.reference_keys} keys",
        f"matched: {r.matched} of {r.reference_keys} reference keys"
        + (f" after remapping ({r.matched_as_is} as is)" if r.remapping else ""),
    ]
    lines += [f"remap: {line}" for line in remapping_lines(r)]
    lines += _section("ambiguous (equal shapes, no evidence)", ambiguity_lines(r))
    lines += _section("shape mismatches", _shape_lines(r.shape_mismatches))
    lines += _section("missing", _group_lines(r.missing, "missing"))
    lines += _section("unexpected", _group_lines(r.unexpected, "unexpected"))
    dtypes = [f"{_name(m.key)}: {m.candidate} -> {m.reference}" for m in r.dtype_mismatches]
    lines += _section("dtype differences", _capped(dtypes))
    lines.append(f"forward: {_forward_text(r)}")
    lines += [f"note: {note}" for note in r.notes]
    # Keys and paths come from the file: escaped per line, so an embedded newline or
    # ANSI sequence shows as `\n` / `\x1b` instead of forging a line or clearing the screen.
    return "\n".join(term_safe(line) for line in lines)


def render_markdown(result: VerifyResult) -> str:
    """The same content as text, as a Markdown section for a PR comment or report."""
    r = result
    rows = [
        ("verdict", f"**{r.verdict}**"),
        ("candidate", f"`{_cell(r.candidate)}` ({r.candidate_keys} keys)"),
        ("reference", f"`{_cell(r.reference)}` ({r.reference_keys} keys)"),
        ("container", f"`{_cell(r.container)}`" if r.container else "none"),
        ("matched", f"{r.matched} ({r.matched_as_is} as is)"),
        ("forward check", md_escape(_forward_text(r))),
    ]
    lines = ["## archviz verify", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    sections = [
        ("Remapping", remapping_lines(r)),
        ("Ambiguous pairings", ambiguity_lines(r, sep=" ")),
        ("Shape mismatches", _shape_lines(r.shape_mismatches)),
        ("Missing keys", _group_lines(r.missing, "missing")),
        ("Unexpected keys", _group_lines(r.unexpected, "unexpected")),
        ("Notes", list(r.notes)),
    ]
    for title, items in sections:
        if items:
            lines += ["", f"### {title}", ""] + [f"- {md_escape(item)}" for item in items]
    return "\n".join(lines)


def render_json(result: VerifyResult) -> str:
    """Every field, plus `ok` and the grouped keys, for CI tools."""
    data = dataclasses.asdict(result)
    data["ok"] = result.ok
    data["missing_groups"] = dict(group_keys(result.missing))
    data["unexpected_groups"] = dict(group_keys(result.unexpected))
    return json.dumps(data, indent=2)


FORMATS: dict[str, Callable[[VerifyResult], str]] = {  # keys: archviz.options.FORMATS["verify"]
    "table": render_text,
    "json": render_json,
    "markdown": render_markdown,
}


def _section(title: str, items: list[str]) -> list[str]:
    return [f"{title}:"] + [f"  {item}" for item in items] if items else []


def _cell(text: str) -> str:
    """A name inside a Markdown table's code span: no pipes or backticks to break out."""
    return _name(text).replace("|", "\\|").replace("`", "'")


def _group_lines(keys: Sequence[str], what: str) -> list[str]:
    groups = group_keys(keys)
    lines = [f"{_name(p)}: {n} keys {what}" if n > 1 else _name(p) for p, n in groups]
    return _capped(lines)


def _shape_lines(mismatches: Sequence[ShapeMismatch]) -> list[str]:
    if len(mismatches) > MAX_GROUPS:
        groups = group_keys([m.key for m in mismatches])
        lines = [
            f"{_name(p)}: {n} keys with other shapes" if n > 1 else _name(p) for p, n in groups
        ]
        return _capped(lines)
    width = max((len(_name(m.key)) for m in mismatches), default=0)
    return [
        f"{_name(m.key):<{width}}  candidate {_shape(m.candidate)}, reference {_shape(m.reference)}"
        for m in mismatches
    ]


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_GROUPS:
        return lines
    return [*lines[: MAX_GROUPS - 1], f"... and {len(lines) - MAX_GROUPS + 1} more"]


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))  # (10,) reads as a shape; (10) would not


def _forward_text(result: VerifyResult) -> str:
    f = result.forward
    size = "x".join(map(str, f.input_shape))
    note = term_safe(f.note)
    if f.max_abs_diff is not None:
        return f"{f.status}, max abs difference {f.max_abs_diff:.3g} on {size} ({note})"
    return f"{f.status} ({note})"
