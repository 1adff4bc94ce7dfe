"""trace(): hand-counted tiny models, full-size models against independent figures, the
model left untouched, the elementwise convention, renderers and the `trace` CLI."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models as tvm

from archviz import ArchvizError, TraceError, trace
from archviz.cli.main import cli
from tests.fixtures.tiny import ConvNet, Cummax, TiedLM, Twice, TwoInputs
from tests.fixtures.torchvision_models import torchvision_model

RESNETS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
]
OTHERS = ["vgg16", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "vit_b_16"]


_torchvision = torchvision_model  # "cpu", "empty-cpu" (uninitialised) or "meta"


def _flop_counter(name: str, size: tuple[int, ...]) -> int:
    """FLOPs by PyTorch's own FlopCounterMode, on a separate meta copy of the model."""
    with torch.device("meta"):
        model = _torchvision(name).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.empty(size, device="meta"))
    return counter.get_total_flops()


def _real_output_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, object]]:
    """(name, output shape) per module call of a real CPU forward, by our own hooks."""
    names = {m: n for n, m in model.named_modules()}
    seen: list[tuple[str, object]] = []

    def hook(module, args, output):
        seen.append((names[module], _shapes(output)))

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shapes(v) for v in value)
    if isinstance(value, dict):
        return {k: _shapes(v) for k, v in value.items()}
    return None


def _traced_output_shapes(result) -> list[tuple[str, object]]:
    # Hooks fire on return, so order the trace's records (call order) by return: children first.
    by_return = sorted(result.records, key=lambda r: _return_order(result.records).index(r))
    return [(r.name, r.output_shapes) for r in by_return]


def _return_order(records):
    """Records in the order their modules returned (post-order of the call tree)."""
    order, stack = [], []
    for record in records:
        while stack and not _is_inside(record, stack[-1]):
            order.append(stack.pop())
        stack.append(record)
    return order + stack[::-1]


def _is_inside(record, caller) -> bool:
    return record.parent == caller.name and record.depth > caller.depth


def _no_hooks_anywhere(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks
        and not m._forward_pre_hooks
        and not m._forward_hooks_with_kwargs
        and not m._forward_pre_hooks_with_kwargs
        for m in model.modules()
    )


# --- tiny models, counted by hand -------------------------------------------------------


def test_tiny_convnet_counts() -> None:
    result = trace(ConvNet(), (1, 3, 10, 10))
    conv, bn, relu, pool = (result.get(n) for n in ("conv", "bn", "relu", "pool"))
    # Conv2d(3, 8, 3) on 1x3x10x10 -> 8x8: 8*8 * 8 * 27 = 13_824 MACs; 8*27 + 8 = 224 params
    assert (conv.macs, conv.flops, conv.params) == (13_824, 27_648, 224)
    assert conv.output_shapes == (1, 8, 8, 8) and conv.input_shapes == (1, 3, 10, 10)
    # BN: 2 per element, 2 * 8*8*8 = 1_024; 16 params, 8 + 8 + 1 buffers
    assert (bn.elementwise_flops, bn.params, bn.buffers_total, bn.macs) == (1_024, 16, 17, 0)
    # ReLU on 1x8x8x8: 512 elementwise FLOPs, no MACs
    assert (relu.elementwise_flops, relu.macs) == (512, 0)
    # MaxPool2d(2): 8*4*4 = 128 outputs * kernel area 4 = 512
    assert (pool.elementwise_flops, pool.output_shapes) == (512, (1, 8, 4, 4))
    # Conv2d(8, 8, 3, padding=1) on 4x4: 4*4 * 8 * 72 = 9_216 MACs; Linear(8, 4): 32
    assert result.get("res").macs == 9_216 and result.get("fc").macs == 32
    # AdaptiveAvgPool2d: 1 per input element, 128; the residual add (the model's own op): 128
    assert result.get("avg").elementwise_flops == 128
    root = result.get("")
    assert (root.elementwise_flops, root.macs) == (128, 0)
    t = result.totals
    assert t.macs == 13_824 + 9_216 + 32 and t.flops == 2 * t.macs
    assert t.elementwise_flops == 1_024 + 512 + 512 + 128 + 128  # never mixed into flops
    assert t.params == 224 + 16 + 576 + 36 == t.trainable
    assert root.macs_total == t.macs and root.flops_total == t.flops
    assert result.uncounted_ops == ()


def test_records_carry_tree_and_dtype() -> None:
    result = trace(ConvNet(), (1, 3, 10, 10))
    assert [r.name for r in result.records] == [
        "",
        "conv",
        "bn",
        "relu",
        "pool",
        "res",
        "avg",
        "fc",
    ]
    assert result.records[0].depth == 0 and result.records[0].parent is None
    assert {r.parent for r in result.records[1:]} == {""}
    assert all(r.depth == 1 and r.is_leaf and r.dtype == "float32" for r in result.records[1:])
    # output bytes: 1x4 float32 logits
    assert result.records[0].output_bytes == 4 * 4
    assert result.output_shapes == (1, 4) and result.input_shapes == (1, 3, 10, 10)


def test_module_called_twice_gets_two_records_and_params_once() -> None:
    result = trace(Twice(), (1, 6))
    first, second = result.get("fc", 0), result.get("fc", 1)
    # Linear(6, 6) on 1x6: 36 MACs per call
    assert (first.macs, second.macs) == (36, 36) and result.totals.macs == 72
    assert (first.params, second.params) == (42, 0) and result.totals.params == 42
    assert first.input_shapes == second.input_shapes == (1, 6)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_tied_weights_counted_once(device: str) -> None:
    model = TiedLM()
    result = trace(model, inputs=torch.tensor([[1, 2, 3]]), device=device)
    # one 10x4 weight shared: 40 params; proj: 3 tokens * 4 * 10 = 120 MACs
    assert result.totals.params == 40 == sum(r.params for r in result.leaves())
    assert result.get("embed").params == 40 and result.get("proj").params == 0
    assert result.totals.macs == 120 and result.output_shapes == (1, 3, 10)
    assert model.proj.weight is model.embed.weight  # still tied afterwards


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_two_inputs_and_dict_output(device: str) -> None:
    inputs = (torch.randn(1, 3, 5, 5), torch.randn(1, 5))
    result = trace(TwoInputs(), inputs=inputs, device=device)
    assert result.input_shapes == ((1, 3, 5, 5), (1, 5))
    assert result.output_shapes == {"logits": (1, 2), "features": (1, 4)}
    # conv 1x1: 5*5 * 4 * 3 = 300 MACs; fc 9 -> 2: 18 MACs; mean over 4*5*5 = 100 elementwise
    assert result.totals.macs == 318 and result.totals.elementwise_flops == 100
    # the same model, inputs passed as keywords
    by_name = trace(TwoInputs(), inputs={"image": inputs[0], "extra": inputs[1]}, device=device)
    assert by_name.totals == result.totals


def test_op_without_formula_is_listed_not_silently_zero() -> None:
    result = trace(Cummax(), (2, 3))
    assert dict(result.uncounted_ops).get("cummax", 0) >= 1
    assert "cummax" in result.summary()


def test_inference_mode_still_counts() -> None:
    with torch.inference_mode():
        on_meta = trace(ConvNet(), (1, 3, 10, 10))
        on_cpu = trace(ConvNet(), inputs=torch.randn(1, 3, 10, 10), device="cpu")
    assert on_meta.totals.macs == on_cpu.totals.macs == 13_824 + 9_216 + 32


def test_train_eval_flags_restored() -> None:
    model = ConvNet().train()
    model.bn.eval()
    trace(model, (1, 3, 10, 10), device="cpu")
    assert model.training and model.conv.training and not model.bn.training


def test_stage_and_block_labels() -> None:
    result = trace(_torchvision("resnet50"), (1, 3, 64, 64))
    labels = {r.name: (r.stage, r.block) for r in result.records}
    assert labels["layer3.2.conv1"] == ("layer3", 2)
    assert labels["layer1.0.downsample.0"] == ("layer1", 0)
    assert labels["conv1"] == ("stem", None) and labels["maxpool"] == ("stem", None)
    assert labels["fc"] == ("head", None) and labels[""] == (None, None)
    assert trace(ConvNet(), (1, 3, 10, 10)).stages() == []  # not ResNet-like


# --- full-size models against independent figures -----------------------------------------


@pytest.mark.parametrize("name", RESNETS)
def test_resnets_match_torchvision_and_flop_counter(name: str) -> None:
    model = _torchvision(name, "meta")
    result = trace(model, (1, 3, 224, 224))
    published = tvm.get_model_weights(name).DEFAULT.meta["_ops"]  # GMACs, 3 decimals
    assert round(result.totals.macs / 1e9, 3) == published
    assert result.totals.flops == _flop_counter(name, (1, 3, 224, 224))
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in result.leaves()) == result.totals.params
    stages = result.stages()
    assert [s.name for s in stages] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    for field in ("params", "macs", "flops", "elementwise_flops"):
        assert sum(getattr(s, field) for s in stages) == getattr(result.totals, field), field
    assert result.uncounted_ops == ()


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("resnet18", (3, 3, 97, 64)),  # batch 3, odd, non-square
        ("resnet50", (2, 3, 199, 233)),
        ("resnext50_32x4d", (1, 3, 225, 161)),
        ("wide_resnet50_2", (4, 3, 64, 65)),
    ],
)
def test_flops_equal_flop_counter_at_other_sizes(name: str, size: tuple[int, ...]) -> None:
    assert trace(_torchvision(name, "meta"), size).totals.flops == _flop_counter(name, size)


@pytest.mark.parametrize("name", RESNETS)
def test_output_shapes_equal_a_real_cpu_forward(name: str) -> None:
    model = _torchvision(name, "empty-cpu")
    x = torch.randn(2, 3, 64, 48)
    result = trace(model, tuple(x.shape))  # on meta
    assert _traced_output_shapes(result) == _real_output_shapes(model, x)


@pytest.mark.parametrize("name", OTHERS)
def test_other_torchvision_models_unchanged(name: str, request: pytest.FixtureRequest) -> None:
    if name == "vit_b_16":  # the suite's one vit_b_16 and its trace (tests/conftest.py)
        model = request.getfixturevalue("vit_b_16")
        result = request.getfixturevalue("vit_b_16_traces")[0]
    else:
        model = _torchvision(name, "empty-cpu")
        result = trace(model, (1, 3, 224, 224))
    published = tvm.get_model_weights(name).DEFAULT.meta["_ops"]  # GMACs, 3 decimals
    assert round(result.totals.macs / 1e9, 3) == published
    assert result.totals.flops == _flop_counter(name, (1, 3, 224, 224)) > 0
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    # convnext's blocks hold a parameter themselves (layer_scale): sum every record's own
    assert sum(r.params for r in result.records) == result.totals.params
    size = (1, 3, 224, 224) if name == "vit_b_16" else (1, 3, 64, 64)  # vit needs 224
    small = trace(model, size) if size != (1, 3, 224, 224) else result
    assert _traced_output_shapes(small) == _real_output_shapes(model, torch.randn(size))


def test_vit_attention_flops_counted_on_meta_and_cpu(vit_b_16_traces) -> None:
    on_meta, on_cpu = vit_b_16_traces
    attention = on_meta.get("encoder.layers.encoder_layer_0.self_attention")
    # in + out projections: 197 tokens * 768 * (3*768 + 768) MACs; attention adds
    # q@k^T and attn@v: 2 * 12 heads * 197 * 197 * 64
    projections = 197 * 768 * 4 * 768
    assert attention.macs_total == projections + 2 * 12 * 197 * 197 * 64
    assert on_cpu.totals.flops == on_meta.totals.flops  # cpu's fused fast path counted too
    assert on_cpu.uncounted_ops == ()


def test_results_identical_on_meta_and_cpu() -> None:
    model = _torchvision("resnet18")
    on_meta, on_cpu = trace(model, (2, 3, 64, 48)), trace(model, (2, 3, 64, 48), device="cpu")
    assert on_meta.records == on_cpu.records and on_meta.totals == on_cpu.totals
    assert (on_meta.device, on_cpu.device) == ("meta", "cpu")


# --- the user's model is left alone ------------------------------------------------------


def _snapshot(model: nn.Module):
    state = {k: (v.clone(), v.device, v.dtype) for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    attrs = [sorted(vars(m)) for m in model.modules()]
    return state, flags, attrs


def _assert_unchanged(model: nn.Module, before) -> None:
    state, flags, attrs = before
    after = model.state_dict()
    assert list(after) == list(state)
    for key, (value, device, dtype) in state.items():
        assert after[key].device == device and after[key].dtype == dtype, key
        assert torch.equal(after[key], value), key
    assert [m.training for m in model.modules()] == flags
    assert [sorted(vars(m)) for m in model.modules()] == attrs
    assert _no_hooks_anywhere(model)


def test_meta_trace_leaves_the_model_unchanged() -> None:
    model = _torchvision("resnet18").train()
    before = _snapshot(model)
    trace(model, (2, 3, 64, 64))
    _assert_unchanged(model, before)


def test_failed_trace_names_the_module_and_leaves_no_hooks() -> None:
    model = _torchvision("resnet18")
    before = _snapshot(model)
    for device in ("meta", "cpu"):
        with pytest.raises(TraceError, match=r"conv1 \(Conv2d\).*\(1, 4, 64, 64\).*3 input"):
            trace(model, (1, 4, 64, 64), device=device)
        _assert_unchanged(model, before)


def test_bad_arguments_are_archviz_errors() -> None:
    with pytest.raises(ArchvizError, match="malformed"):
        trace(ConvNet(), (1, 3, 0, 10))
    with pytest.raises(ArchvizError, match="unknown device"):
        trace(ConvNet(), (1, 3, 10, 10), device="nowhere")


# --- renderers ---------------------------------------------------------------------------


def test_dataframe_json_summary_html() -> None:
    result = trace(_torchvision("resnet18"), (1, 3, 64, 64))
    frame = result.to_dataframe()
    assert len(frame) == len(result.records)
    assert frame.loc[frame.is_leaf, "params"].sum() == result.totals.params
    assert frame.loc[frame.is_leaf, "macs"].sum() == result.totals.macs
    loaded = json.loads(result.to_json())
    assert loaded["totals"] == asdict(result.totals)
    assert len(loaded["records"]) == len(result.records)
    assert loaded["records"][1]["output_shapes"] == list(result.records[1].output_shapes)
    text = result.summary(depth=2)
    footer = text.splitlines()[-4:]
    assert f"Total params: {result.totals.params:,}" in footer[0]
    assert f"Total MACs: {result.totals.macs:,}" in footer[1]
    assert "layer1 (Sequential)" in text and "layer1.0" not in text
    html = result._repr_html_()
    assert html.startswith("<table>") and "resnet" in html.lower()


def test_html_escapes_model_strings() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    Odd.__name__ = "<b>Odd</b>"
    html = trace(Odd(), (1, 2))._repr_html_()
    assert "<b>" not in html.replace("<table>", "") and "&lt;b&gt;" in html


# --- the CLI -----------------------------------------------------------------------------


def _run(*args: str):
    return CliRunner().invoke(cli, ["trace", *args])


def test_cli_trace_table_and_json() -> None:
    result = _run("resnet18", "--input", "1x3x64x64", "--depth", "1")
    assert result.exit_code == 0, result.output
    assert "Total params: 11,689,512" in result.output
    result = _run("tests.fixtures.tiny:convnet", "--input", "1x3x10x10", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["macs"] == 13_824 + 9_216 + 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("resnet18", "--input", "1x3xbadx224"), "malformed input shape"),
        (("resnet18", "--input", "1x4x64x64"), r"conv1 \(Conv2d\).*\(1, 4, 64, 64\)"),
        (("no_such_package.models:build",), "cannot import 'no_such_package.models'"),
        (("resnet18", "--device", "nowhere"), "unknown device"),
    ],
)
def test_cli_errors_are_one_line_exit_2(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archviz: error: ")
    assert pytest.importorskip("re").search(message, lines[0]), lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_without_cuda() -> None:
    result = _run("resnet18", "--device", "cuda")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        result.output.strip()
        == "archviz: error: CUDA was requested but is not available on this machine"
    )


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "convnext_tiny"])
def test_zoo_activations_are_counted_not_listed(name: str) -> None:
    # hardswish_/silu_ carry no pointwise tag and as_strided_ is data movement: none of
    # them may end up in the "no formula" list, and their elementwise work is counted.
    result = trace(tvm.get_model(name, weights=None), (1, 3, 64, 64))
    assert result.uncounted_ops == ()
    assert result.totals.elementwise_flops > 0
