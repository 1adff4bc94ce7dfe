"""Depth from the observed graph equals the depth each architecture's authors published.

The expected figures are the papers' and documentation's own, cited per row; archviz's
output is never pasted back. Depth = weighted layers (conv, linear) on the longest
input-to-output path of the traced graph.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from archviz.analysis.depth import derive_depth
from archviz.tracing.trace import trace

PUBLISHED = [
    # He et al. 2015, "Deep Residual Learning for Image Recognition", Table 1.
    ("resnet18", 18, "1 + 2 x (2 + 2 + 2 + 2) + 1 = 18"),
    ("resnet34", 34, "1 + 2 x (3 + 4 + 6 + 3) + 1 = 34"),
    ("resnet50", 50, "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50"),
    ("resnet101", 101, "1 + 3 x (3 + 4 + 23 + 3) + 1 = 101"),
    ("resnet152", 152, "1 + 3 x (3 + 8 + 36 + 3) + 1 = 152"),
    # Simonyan & Zisserman 2014, "Very Deep Convolutional Networks...", Table 1
    # (configurations A, D, E: 8/13/16 conv + 3 FC).
    ("vgg11", 11, "8 + 3 = 11"),
    ("vgg16", 16, "13 + 3 = 16"),
    ("vgg19", 19, "16 + 3 = 19"),
    # Huang et al. 2017, "Densely Connected Convolutional Networks", Table 1: a 7x7 conv,
    # dense blocks of [6, 12, 24, 16] / [6, 12, 32, 32] / [6, 12, 48, 32] layers of
    # 1x1 + 3x3 convs, 3 transition 1x1 convs, and the classifier.
    ("densenet121", 121, "1 + 2 x (6 + 12 + 24 + 16) + 3 + 1 = 121"),
    ("densenet169", 169, "1 + 2 x (6 + 12 + 32 + 32) + 3 + 1 = 169"),
    ("densenet201", 201, "1 + 2 x (6 + 12 + 48 + 32) + 3 + 1 = 201"),
    # Szegedy et al. 2014, "Going Deeper with Convolutions", section 5: "22 layers deep
    # when counting only layers with parameters".
    ("googlenet", 22, "3 + 2 x 9 + 1 = 22"),
    # Sandler et al. 2018, MobileNetV2, Table 2 (a 3x3 conv, 17 bottlenecks: the first
    # with expansion 1 has no 1x1 expansion conv, a 1x1 conv, the classifier); 53 is the
    # depth MATLAB's and Keras's documentation give for mobilenetv2.
    ("mobilenet_v2", 53, "1 + 2 + 3 x 16 + 1 + 1 = 53"),
    # Szegedy et al. 2015, "Rethinking the Inception Architecture"; "Inception-v3 is a
    # convolutional neural network that is 48 layers deep" (MATLAB inceptionv3 docs).
    ("inception_v3", 48, None),
    # Krizhevsky et al. 2012: "eight learned layers: five convolutional and three fully
    # connected".
    ("alexnet", 8, "5 + 3 = 8"),
]


def _build(name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    kwargs = (
        {"aux_logits": False, "init_weights": False}
        if name
        in (
            "googlenet",
            "inception_v3",
        )
        else {}
    )
    with torch.device("meta"):  # weights=None: nothing downloaded, nothing allocated
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
    return model, (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)


@pytest.mark.parametrize(("name", "published", "formula"), PUBLISHED)
def test_depth_from_the_graph_equals_the_published_depth(
    name: str, published: int, formula: str | None
) -> None:
    model, size = _build(name)
    found = derive_depth(trace(model, size))
    assert found.depth == published
    if formula is not None:
        assert found.formula == formula
    assert sum(t.layers for t in found.terms) == found.depth


def test_googlenet_branches_beside_the_path_are_listed_not_counted() -> None:
    model, size = _build("googlenet")
    found = derive_depth(trace(model, size))
    # 9 Inception modules x 6 convs, 2 of which lie on the path: 9 x 4 = 36 beside it.
    assert len(found.beside) == 36
    assert not set(found.beside) & set(found.main_path)
