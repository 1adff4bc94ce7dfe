"""Known layouts against the real libraries, with random weights (nothing is downloaded).

Each test skips cleanly where its library is absent (`pip install -e ".[layouts]"`).
A layout counts as recognised only if the remapped file loads strictly into torchvision's
resnet50 and computes the library model's own logits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import models as tvm

from archviz import verify
from archviz.checkpoints.layouts import LAYOUTS

X = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def _logits(output: object) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.logits  # type: ignore[attr-defined]


def _check_written(out: Path, original: torch.nn.Module) -> float:
    """Max abs difference between the original's logits and torchvision holding the file."""
    reference = tvm.resnet50().eval()
    reference.load_state_dict(torch.load(out, weights_only=True), strict=True)
    with torch.no_grad():
        return float((reference(X) - _logits(original.eval()(X))).abs().max())


@pytest.fixture(scope="module")
def timm_resnet50() -> torch.nn.Module:
    timm = pytest.importorskip("timm")
    return timm.create_model("resnet50", pretrained=False)


@pytest.fixture(scope="module")
def hf_resnet50() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.ResNetConfig(num_labels=1000)  # microsoft/resnet-50's shape
    return transformers.ResNetForImageClassification(config)


def test_layouts_are_listed() -> None:
    assert {"torchvision", "timm", "Hugging Face transformers"} <= {x.name for x in LAYOUTS}


def test_timm_resnet50_loads_as_is(tmp_path: Path, timm_resnet50) -> None:
    path, out = tmp_path / "timm.safetensors", tmp_path / "tv.pt"
    from safetensors.torch import save_file

    save_file(timm_resnet50.state_dict(), str(path))
    result = verify(path, "torchvision:resnet50", write_remapped=out)
    assert result.verdict == "compatible" and result.remapping is None
    assert _check_written(out, timm_resnet50) <= 1e-5
    module = verify(timm_resnet50, "torchvision:resnet50")
    assert module.forward.status == "match" and module.forward.max_abs_diff == 0.0


def test_hugging_face_file_is_remapped_by_its_layout(tmp_path: Path, hf_resnet50) -> None:
    path, out = tmp_path / "model.safetensors", tmp_path / "tv.pt"
    from safetensors.torch import save_file

    save_file(hf_resnet50.state_dict(), str(path))
    result = verify(path, "torchvision:resnet50", write_remapped=out)
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None and result.remapping.layout == "Hugging Face transformers"
    assert {p.evidence for p in result.remapping.pairs} == {"layout Hugging Face transformers"}
    mapping = dict(result.remapping.mapping)
    shortcut = "resnet.encoder.stages.0.layers.0.shortcut.convolution.weight"
    assert mapping[shortcut] == "layer1.0.downsample.0.weight"  # stored before conv3
    assert result.write is not None and result.write.written
    assert _check_written(out, hf_resnet50) <= 1e-5


def test_hugging_face_module_is_paired_by_graph(hf_resnet50) -> None:
    result = verify(hf_resnet50, "torchvision:resnet50")
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None
    assert {p.evidence for p in result.remapping.pairs} == {"graph"}
    assert result.forward.status == "match" and result.forward.max_abs_diff == 0.0
    assert "output.logits" in result.forward.note
