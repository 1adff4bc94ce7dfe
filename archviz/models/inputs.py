"""Input forms: what a model takes as input, chosen in one place for every command.

A family of torchvision models is known by its class's module (`INPUT_FORMS`); any other
model by its forward's signature: a first input named `input_ids` takes token ids (int64,
inside the vocabulary) plus an attention mask and decoder tokens where the forward takes
them; `input_features` takes audio features (Whisper: 80 mel bins x 3000 frames);
`input_values` raw audio; `pixel_values` images. The sizes come from the model's config
where it has one. tracing/setup.py makes the tensors; nothing there knows a class name.

| first input      | `--input`                | default                | also given               |
|------------------|--------------------------|------------------------|--------------------------|
| `input_ids`      | N x T                    | 1 x 128                | attention_mask (not on   |
|                  |                          |                        | meta), decoder_input_ids |
| `input_features` | N x C x F, or N x T      | 1 x 80 x 3000, 1 x 128 | decoder_input_ids        |
| `input_values`   | N x S                    | 1 x 16000              |                          |
| `pixel_values`   | N x C x H x W            | 1 x 3 x 224 x 224      |                          |
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archviz.errors import ArchvizError

DEFAULT_TOKENS = 128  # a sequence length for token models when no --input is given
MASK, DECODER = "attention_mask", "decoder_input_ids"
Make = Callable[[tuple[int, ...]], Any]  # a float tensor of a shape
MakeInts = Callable[[tuple[int, ...], int, int], Any]  # int64 in [low, high) of a shape


@dataclass(frozen=True)
class InputForm:
    """How a family of models takes its input; `default` is its size when none is given.

    `layout` is "tensor" (one N x C x ... tensor), "images" (detection: a list of N images
    C x H x W, from an N x C x H x W size), "pair" (optical flow: two N x C x H x W frames),
    "tokens" (keyword `names[0]`: N x T token ids below `vocab`, then the other `names`)
    or "features" (N x C x F features, then N x T decoder tokens; a 2-D size is N x T).
    """

    family: str
    default: tuple[int, ...]
    layout: str = "tensor"
    fixed_rank: bool = True  # False for the default form: your own model may take any rank
    names: tuple[str, ...] = ()  # keyword inputs of the "tokens" and "features" layouts
    vocab: int = 0  # token ids are drawn from [0, vocab)

    def build(self, size: Sequence[int], make: Make) -> tuple:
        """Positional inputs for one size; `make(shape)` creates one tensor."""
        size = tuple(size)
        self._check_rank(size)
        if self.layout == "images":
            return ([make(size[1:]) for _ in range(size[0])],)
        if self.layout == "pair":
            return (make(size), make(size))
        return (make(size),)

    def inputs(
        self, size: Sequence[int], make: Make, ints: MakeInts, meta: bool = False
    ) -> tuple[tuple, dict]:
        """Positional and keyword inputs for one size (token ids from `ints`).

        On `meta` the attention mask is left out: all ones means "attend to every token",
        which is what the model does without one, and mask code reads values meta lacks.
        """
        size = tuple(size)
        if self.layout == "tokens":
            self._check_rank(size)
            out = {self.names[0]: ints(size, 0, self.vocab)}
            return (), out | self._extras(size, ints, meta)
        if self.layout == "features":
            if len(size) == 2:  # N x T: the decoder's tokens; the features take their default
                features = make((size[0], *self.default[1:]))
                return (), {self.names[0]: features} | self._extras(size, ints, meta)
            self._check_rank(size)
            tokens = (size[0], DEFAULT_TOKENS)
            return (), {self.names[0]: make(size)} | self._extras(tokens, ints, meta)
        return self.build(size, make), {}

    def _extras(self, tokens: tuple[int, ...], ints: MakeInts, meta: bool) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if MASK in self.names and self.layout == "tokens" and not meta:
            extras[MASK] = ints(tokens, 1, 2)  # all ones: every token is attended to
        if DECODER in self.names:
            extras[DECODER] = ints(tokens, 0, self.vocab)
        return extras

    def _check_rank(self, size: tuple[int, ...]) -> None:
        if self.fixed_rank and len(size) != len(self.default):
            example = "x".join(map(str, self.default))
            raise ArchvizError(
                f"{self.family} models take {len(self.default)}-D input sizes such as "
                f"{example}; got {'x'.join(map(str, size))}"
            )


# The module of the model's class -> its input form; the longest matching prefix wins. The
# sizes are torchvision's own: its weights' crop (video) and resize (segmentation) sizes,
# detection's minimum size (its transform resizes every image to it anyway) and RAFT's
# FlyingChairs crop. Anything else (classifiers, your own models) takes DEFAULT_FORM.
INPUT_FORMS: dict[str, InputForm] = {
    "torchvision.models.detection": InputForm("detection", (1, 3, 800, 800), "images"),
    "torchvision.models.optical_flow": InputForm("optical flow", (1, 3, 368, 496), "pair"),
    "torchvision.models.segmentation": InputForm("segmentation", (1, 3, 520, 520)),
    "torchvision.models.video": InputForm("video", (1, 3, 16, 224, 224)),
    "torchvision.models.video.resnet": InputForm("video", (1, 3, 16, 112, 112)),
}
DEFAULT_FORM = InputForm("image", (1, 3, 224, 224), fixed_rank=False)


def input_form(model: nn.Module) -> InputForm:
    """The model's input form: its torchvision family's, its signature's, or DEFAULT_FORM."""
    where = type(model).__module__
    matches = [p for p in INPUT_FORMS if where == p or where.startswith(p + ".")]
    if matches:
        return INPUT_FORMS[max(matches, key=len)]
    return signature_form(model) or DEFAULT_FORM


def signature_form(model: nn.Module) -> InputForm | None:
    """The form the forward's first input names (see the module docstring), or None."""
    params = forward_inputs(model)
    if not params:
        return None
    config = getattr(model, "config", None)
    first, takes = params[0], set(params)
    extras = tuple(n for n in (MASK, DECODER) if n in takes)
    if first == "input_ids":
        return InputForm("token", (1, DEFAULT_TOKENS), "tokens", True, (first, *extras),
                         vocabulary(model))  # fmt: skip
    if first == "input_features":
        mel = _int(config, "num_mel_bins", 80)
        # Whisper's encoder takes exactly 2 x max_source_positions frames (stride-2 conv).
        frames = 2 * _int(config, "max_source_positions", 1500)
        return InputForm("audio", (1, mel, frames), "features", True, (first, *extras),
                         vocabulary(model))  # fmt: skip
    if first == "input_values":
        return InputForm("raw audio", (1, 16000))  # one second at 16 kHz
    if first == "pixel_values":
        side = _int(config, "image_size", 224)
        return InputForm("image", (1, _int(config, "num_channels", 3), side, side))
    return None


def forward_inputs(model: nn.Module) -> list[str]:
    """The names of the forward's parameters, in order (no *args / **kwargs)."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # TorchScript and builtins may have none
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in signature.parameters.values() if p.kind in kinds]


def vocabulary(model: nn.Module) -> int:
    """Token ids stay below this: the config's vocab_size, else the first embedding's size."""
    size = _int(getattr(model, "config", None), "vocab_size", 0)
    if size > 0:
        return size
    first = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    return first.num_embeddings if first is not None else 2


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype a model runs in: its floating parameters' (a config's dtype, for a model
    built from one), else float32."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _int(config: Any, name: str, default: int) -> int:
    value = getattr(config, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else default
