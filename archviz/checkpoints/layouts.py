"""What module names mean: known ResNet layouts, and the synonyms other code uses.

The state_dict layouts of well-known ResNet implementations, as torchvision names.

A layout is name evidence: a rule says which torchvision module a library's module is,
so pairing does not fall back on order. Each entry is tested against the real library
(tests/test_verify_layouts.py, skipped where the library is absent), with random
weights: the remapped file must load strictly and compute the library model's logits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Name evidence: tokens that mean the same module role across implementations.
SYNONYMS = {
    "shortcut": "downsample",
    "proj": "downsample",
    "projection": "downsample",
    "skip": "downsample",
    "convolution": "conv",
    "normalization": "bn",
    "norm": "bn",
    "batchnorm": "bn",
    "classifier": "fc",
    "head": "fc",
    "embedder": "stem",
}
_INDEXED = {"layers", "blocks"}  # `layers.M` -> `M`
_STAGES = {"stages", "stage"}  # `stages.N` -> `layerN+1`
MAX_DEPTH = 64  # module nesting beyond this is not a real model's name: no synonyms
_KINDS = {"conv", "bn", "fc", "linear"}


_STAGE = r"(?:resnet\.)?encoder\.stages\.(\d+)\.layers\.(\d+)"


@dataclass(frozen=True)
class Layout:
    """One library's naming: `rules` rewrite a module path to torchvision's, if it matches."""

    name: str
    example: str  # how to build one, for the README and the test
    marker: str  # a module path pattern only this layout has; "" = torchvision's own names
    rules: tuple[tuple[str, str], ...] = ()  # (regex, template); "{2+}" is group 2 plus one


LAYOUTS = (
    Layout("torchvision", "torchvision.models.resnet50(weights=None)", ""),
    Layout("timm", "timm.create_model('resnet50', pretrained=False)", ""),
    Layout(
        "Hugging Face transformers",
        "transformers.ResNetForImageClassification(ResNetConfig())",
        r"(?:resnet\.)?embedder\.embedder\.convolution",
        (
            (r"(?:resnet\.)?embedder\.embedder\.convolution", "conv1"),
            (r"(?:resnet\.)?embedder\.embedder\.normalization", "bn1"),
            (_STAGE + r"\.shortcut\.convolution", "layer{1+}.{2}.downsample.0"),
            (_STAGE + r"\.shortcut\.normalization", "layer{1+}.{2}.downsample.1"),
            (_STAGE + r"\.layer\.(\d+)\.convolution", "layer{1+}.{2}.conv{3+}"),
            (_STAGE + r"\.layer\.(\d+)\.normalization", "layer{1+}.{2}.bn{3+}"),
            (r"classifier\.1", "fc"),
        ),
    ),
)


def detect(modules: Iterable[str]) -> Layout | None:
    """The layout whose marker one of the module paths matches, if any."""
    names = list(modules)
    for layout in LAYOUTS:
        if layout.marker and any(re.fullmatch(layout.marker, n) for n in names):
            return layout
    return None


def rename(layout: Layout, module: str) -> str | None:
    """`module`'s torchvision path under `layout`'s rules, or None where no rule applies."""
    for pattern, template in layout.rules:
        found = re.fullmatch(pattern, module)
        if found:
            return _fill(template, found.groups())
    return None


def _fill(template: str, groups: tuple[str, ...]) -> str:
    """'layer{1+}.{2}' with groups ('0', '2') -> 'layer1.2'."""

    def slot(m: re.Match[str]) -> str:
        value = groups[int(m.group(1)) - 1]
        return str(int(value) + 1) if m.group(2) else value

    return re.sub(r"\{(\d+)(\+?)\}", slot, template)


def canonical(path: str) -> str:
    """A module path in shared words: synonyms mapped, `stages.N` -> `layerN+1`, `layers.M` -> `M`.

    `layer1.0.shortcut.0` and `stages.0.blocks.0.downsample.0` both read `layer1.0.downsample.0`.
    A path deeper than any real model (a hostile key) is left as it is.
    """
    if path.count(".") >= MAX_DEPTH:
        return path
    tokens = path.split(".")
    out: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if word in _STAGES and nxt.isdigit():
            out.append(f"layer{int(nxt) + 1}")
            i += 2
            continue
        if not (word in _INDEXED and nxt.isdigit()):
            out.append(_synonym(word))
        i += 1
    if len(out) == 2 and out[0] == "stem" and out[1] in ("conv", "bn"):
        out = [out[1] + "1"]
    return ".".join(out)


def coarse(path: str) -> str:
    """The canonical path without trailing indices and bare kind words: `downsample.0` and
    `shortcut.conv` both read `downsample` (the signature then tells conv from norm)."""
    tokens = canonical(path).split(".")
    while len(tokens) > 1 and (tokens[-1].isdigit() or tokens[-1] in _KINDS):
        tokens.pop()
    return ".".join(tokens)


def _synonym(word: str) -> str:
    """`norm1` -> `bn1`, `convolution` -> `conv`: the letters mapped, a trailing number kept."""
    stem = word.rstrip("0123456789")
    return SYNONYMS.get(stem.lower(), stem) + word[len(stem) :]
