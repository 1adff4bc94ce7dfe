"""torchvision's whole zoo by name, offline; each family's input form; a representative
model per family traced and checked against FlopCounterMode (the full sweep is
benchmarks/zoo_sweep.py); and every way a model spec or factory can go wrong."""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
import urllib.error

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models as tvm

import archviz
from archviz import ArchvizError, TraceError, trace
from archviz.cli.main import cli
from archviz.models import DEFAULT_FORM, get_model, input_form, list_models, resolve_model


def _flop_counter(model: nn.Module, *args) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(*args)
    return counter.get_total_flops()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to download weights fails, as it does on a machine without a network."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


# --- the zoo by name --------------------------------------------------------------------


def test_every_torchvision_name_is_listed() -> None:
    listed = set(list_models(include_torchvision=True))
    assert {f"torchvision:{n}" for n in tvm.list_models()} <= listed
    for name in ("fasterrcnn_resnet50_fpn", "raft_small", "r3d_18", "quantized_resnet18"):
        assert f"torchvision:{name}" in listed


BACKBONED = [
    n
    for n in tvm.list_models()
    if "weights_backbone" in inspect.signature(tvm.get_model_builder(n)).parameters
]


@pytest.mark.parametrize("name", BACKBONED)
def test_builds_without_downloading(name: str, offline: None) -> None:
    # These builders download an ImageNet backbone by default (weights_backbone=...).
    with torch.device("meta"):
        model = get_model(f"torchvision:{name}")
    assert isinstance(model, nn.Module)


def test_torchvision_import_path_builds_offline_too(offline: None) -> None:
    # The spec from issue 13 that ended in a URLError traceback.
    with torch.device("meta"):
        model = resolve_model("torchvision.models.detection:fasterrcnn_resnet50_fpn")
    assert type(model).__name__ == "FasterRCNN"


def test_asking_for_weights_offline_is_one_line(offline: None) -> None:
    with pytest.raises(ArchvizError, match="tried to download weights") as caught:
        get_model("resnet18", weights="DEFAULT")
    assert "\n" not in str(caught.value)


def test_regnet_builds_under_a_meta_default_device() -> None:
    # RegNet reads its widths' values while building: it cannot be built on meta.
    with torch.device("meta"):
        model = get_model("torchvision:regnet_x_400mf")
    published = tvm.get_model_weights("regnet_x_400mf").DEFAULT.meta["_ops"]
    assert round(trace(model).totals.macs / 1e9, 3) == published


# --- input forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family", "default"),
    [
        ("resnet18", "image", (1, 3, 224, 224)),
        ("fasterrcnn_resnet50_fpn", "detection", (1, 3, 800, 800)),
        ("deeplabv3_resnet50", "segmentation", (1, 3, 520, 520)),
        ("r3d_18", "video", (1, 3, 16, 112, 112)),
        ("mvit_v2_s", "video", (1, 3, 16, 224, 224)),
        ("raft_small", "optical flow", (1, 3, 368, 496)),
    ],
)
def test_input_forms(name: str, family: str, default: tuple[int, ...]) -> None:
    with torch.device("meta"):
        model = get_model(f"torchvision:{name}")
    form = input_form(model)
    assert (form.family, form.default) == (family, default)
    # The video defaults are the crop sizes torchvision's weights were trained at.
    if family == "video":
        crop = tvm.get_model_weights(name).DEFAULT.transforms.keywords["crop_size"]
        assert default[-2:] == tuple(crop)


def test_own_models_take_the_default_form_any_rank() -> None:
    assert input_form(nn.Linear(4, 2)) is DEFAULT_FORM
    assert trace(nn.Linear(4, 2), (3, 4)).totals.macs == 3 * 4 * 2


def test_video_default_input_and_published_macs() -> None:
    with torch.device("meta"):
        model = get_model("torchvision:r3d_18")
    result = trace(model)  # no size: the family's default
    assert result.input_shapes == (1, 3, 16, 112, 112)  # one tensor: its shape
    assert (
        round(result.totals.macs / 1e9, 3) == tvm.get_model_weights("r3d_18").DEFAULT.meta["_ops"]
    )
    with pytest.raises(
        ArchvizError, match=r"video models take 5-D input sizes such as 1x3x16x112x112"
    ):
        trace(model, (1, 3, 112, 112))


def test_segmentation_on_meta_equals_flop_counter() -> None:
    with torch.device("meta"):
        model = get_model("torchvision:lraspp_mobilenet_v3_large")
    result = trace(model, (1, 3, 64, 64))
    assert result.output_shapes == {"out": (1, 21, 64, 64)}
    assert result.totals.flops == _flop_counter(model, torch.empty(1, 3, 64, 64, device="meta"))


def test_detection_on_cpu_at_a_small_size() -> None:
    # min_size/max_size shrink the detector's own resize, so a CPU forward takes a moment.
    model = get_model("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", min_size=96, max_size=96)
    with pytest.raises(TraceError, match=r"in rpn .*aten::nonzero.*--device cpu"):
        trace(model, (1, 3, 96, 96))  # meta cannot run its proposal filtering
    # ...and that failed trace left no meta tensors in the model (issue 12)
    assert all(a.device.type == "cpu" for a in model.rpn.anchor_generator.cell_anchors)
    torch.manual_seed(1)
    images = [torch.rand(3, 96, 96)]
    result = trace(model, inputs=(images,), device="cpu")
    assert result.input_shapes == ((3, 96, 96),)  # one input, a list of one image
    assert result.totals.flops == _flop_counter(model, images) > 0
    assert {"backbone", "rpn", "roi_heads"} <= {r.name for r in result.records}
    # Data movement (full_like, index_put_, nonzero) is free; what is left does arithmetic
    # archviz has no convention for, and says so.
    assert set(dict(result.uncounted_ops)) <= {"nms", "roi_align", "topk", "upsample_bilinear2d"}
    # From a size: N x C x H x W becomes a list of N images.
    (built,) = input_form(model).build((2, 3, 96, 96), torch.zeros)
    assert [tuple(image.shape) for image in built] == [(3, 96, 96), (3, 96, 96)]


def test_raft_small_pair_on_meta_and_cpu() -> None:
    model = get_model("torchvision:raft_small")
    frames = {"image1": torch.rand(1, 3, 128, 128), "image2": torch.rand(1, 3, 128, 128)}
    frames["num_flow_updates"] = 2  # RAFT's own argument: 2 refinement steps, not 12
    on_meta = trace(model, inputs=frames)
    assert all(t.device.type == "cpu" for t in model.corr_block.corr_pyramid)  # none on meta
    on_cpu = trace(model, inputs=frames, device="cpu")
    assert on_meta.totals == on_cpu.totals
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(**frames)
    assert on_cpu.totals.flops == counter.get_total_flops()
    assert trace(model, (1, 3, 128, 128)).input_shapes == ((1, 3, 128, 128), (1, 3, 128, 128))


def test_quantizable_model_traces_as_float() -> None:
    with torch.device("meta"):
        quantizable = get_model("torchvision:quantized_resnet18")
        plain = get_model("torchvision:resnet18")
    assert trace(quantizable).totals.macs == trace(plain).totals.macs


# --- specs and factories: one line, exit 2, with the fix ---------------------------------


@pytest.fixture
def factories(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package of user factories that go wrong in every way issue 12/13 found."""
    package = tmp_path / "userfactories"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        textwrap.dedent(
            """
            import urllib.error
            import torch.hub
            from torch import nn

            def model():
                return nn.Linear(4, 2)

            def raises():
                raise RuntimeError("out of coffee\\nsecond line")

            def number():
                return 42

            def downloads():
                return torch.hub.load_state_dict_from_url("https://example.invalid/w.pth")
            """
        )
    )
    (package / "broken.py").write_text("def model(:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "userfactories"
    for name in [m for m in sys.modules if m.startswith("userfactories")]:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "userfactories.good:raises",
            r"factory 'userfactories.good:raises' raised RuntimeError: out of coffee; fix it",
        ),
        (
            "userfactories.good:number",
            r"returned int, not a torch.nn.Module; make it return the model",
        ),
        ("userfactories.good:downloads", r"tried to download weights.*weights=None"),
        ("userfactories.broken:model", r"importing 'userfactories.broken'.* failed: SyntaxError"),
        ("userfactories.good:nothing", r"has no callable 'nothing'"),
        (":f", r"malformed model spec ':f'; write package.module:factory"),
        ("userfactories.good:", r"malformed model spec"),
        ("a..b:f", r"malformed model spec"),
        ("torchvision:no_such_net", r"unknown torchvision model 'no_such_net'"),
        ("torchvision:", r"unknown torchvision model ''"),
    ],
)
def test_bad_specs_are_one_line(factories: str, offline: None, spec: str, message: str) -> None:
    with pytest.raises(ArchvizError, match=message) as caught:
        resolve_model(spec)
    assert "\n" not in str(caught.value)


def test_a_good_factory(factories: str) -> None:
    assert isinstance(resolve_model("userfactories.good:model"), nn.Linear)


@pytest.mark.parametrize(
    "spec",
    ["userfactories.good:raises", "userfactories.good:number", ":f", "userfactories.broken:model"],
)
def test_cli_bad_specs_exit_2_one_line(factories: str, spec: str) -> None:
    result = CliRunner().invoke(cli, ["trace", spec])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archviz: error: "), result.output


@pytest.mark.parametrize("device", ["xla", "mps"])
def test_cli_unsupported_device_exit_2_one_line(device: str) -> None:
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    result = CliRunner().invoke(cli, ["trace", "resnet18", "--device", device])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_public_api_exports_the_forms() -> None:
    assert archviz.models.INPUT_FORMS and archviz.models.input_form


def test_cli_trace_without_input_uses_the_familys_input() -> None:
    # No --input: a video model gets its 5-D clip (N x C x T x H x W), not an image size.
    result = CliRunner().invoke(cli, ["trace", "torchvision:r3d_18", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["input_shapes"] == [1, 3, 16, 112, 112]
