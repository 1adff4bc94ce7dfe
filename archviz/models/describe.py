"""How a ResNet-like model is laid out: its stem, stages and head, read from the model.

Works for archviz's ResNet (which carries `stage_names`) and, by structure, for
torchvision's ResNet and users' own models with the same top-level names. Analysis asks
here instead of guessing from module names.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

STEM = ("conv1", "bn1", "relu", "maxpool")
HEAD = ("avgpool", "fc")
DEFAULT_STAGES = ("layer1", "layer2", "layer3", "layer4")


@dataclass(frozen=True)
class Layout:
    """Top-level module names per part: stem, each stage (a Sequential of blocks), head."""

    stem: tuple[str, ...]
    stages: tuple[str, ...]
    head: tuple[str, ...]

    @property
    def parts(self) -> tuple[str, ...]:
        return ("stem", *self.stages, "head")

    def locate(self, name: str) -> tuple[str | None, int | None]:
        """Qualified module name -> (part, block index): 'layer3.2.conv1' -> ('layer3', 2)."""
        top, _, rest = name.partition(".")
        if top in self.stem:
            return "stem", None
        if top in self.head:
            return "head", None
        if top in self.stages:
            index = rest.partition(".")[0]
            return top, int(index) if index.isdigit() else None
        return None, None


def layout(model: nn.Module) -> Layout | None:
    """The model's layout if it is ResNet-like (stem convs, Sequential stages, a head)."""
    stages = tuple(getattr(model, "stage_names", DEFAULT_STAGES))
    children = dict(model.named_children())
    if not all(isinstance(children.get(s), nn.Sequential) for s in stages):
        return None
    stem = tuple(n for n in STEM if n in children)
    head = tuple(n for n in HEAD if n in children)
    if "conv1" not in stem or "fc" not in head:
        return None
    return Layout(stem, stages, head)
