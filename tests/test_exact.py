"""Exact on everything that traces: each defect found by sweeping the zoo, with a model
small enough to count by hand, checked on meta and on a real CPU forward against
PyTorch's FlopCounterMode. Attention has its own file, test_attention.py."""

from __future__ import annotations

import re
from collections import namedtuple

import pytest
import torch
from torch import nn
from torch.nn.modules import module as torch_module
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models as tvm

from archviz import ArchvizError, TraceError, trace
from archviz.tracing.trace import no_fused_attention

DEVICES = ["meta", "cpu"]
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def _flop_counter(model: nn.Module, *args) -> int:
    """FLOPs of a real CPU forward by PyTorch's own counter (MHA fast path off, as archviz)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), no_fused_attention(), counter:
        model.eval()(*args)
    return counter.get_total_flops()


# --- fill_ / zero_, 3-D pools ----------------------------------------------------------


class Fills(nn.Module):
    def forward(self, x):
        scratch = x.new_empty(x.shape).fill_(1.0)
        return x + scratch.zero_()


@pytest.mark.parametrize("device", DEVICES)
def test_fill_and_zero_are_free_not_uncounted(device: str) -> None:
    result = trace(Fills(), inputs=torch.randn(2, 3), device=device)
    assert result.uncounted_ops == ()
    assert result.totals.elementwise_flops == 6  # the add only: 2*3


def test_swin_lists_nothing_uncounted() -> None:
    with torch.device("meta"):
        model = tvm.swin_t()
    assert trace(model).uncounted_ops == ()


class Pools3d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.max = nn.MaxPool3d(2)
        self.avg = nn.AvgPool3d((1, 2, 2))
        self.adaptive_avg = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.adaptive_max = nn.AdaptiveMaxPool3d(1)
        self.max1d = nn.MaxPool1d(2)

    def forward(self, x):
        y = self.avg(self.max(x))
        return self.adaptive_avg(y) + self.adaptive_max(y), self.max1d(x.flatten(2))


@pytest.mark.parametrize("device", DEVICES)
def test_3d_pools_counted_like_2d(device: str) -> None:
    result = trace(Pools3d(), inputs=torch.randn(1, 2, 4, 4, 4), device=device)
    assert result.uncounted_ops == ()
    # MaxPool3d(2) on 1x2x4x4x4 -> 1x2x2x2x2: 16 outputs * kernel 8 = 128
    assert result.get("max").elementwise_flops == 128
    # AvgPool3d((1, 2, 2)) -> 1x2x2x1x1: 4 outputs * kernel 4 = 16
    assert result.get("avg").elementwise_flops == 16
    # adaptive pools: 1 per input element, 4 each
    assert result.get("adaptive_avg").elementwise_flops == 4
    assert result.get("adaptive_max").elementwise_flops == 4
    # MaxPool1d(2) on 1x2x64 -> 1x2x32: 64 outputs * kernel 2 = 128
    assert result.get("max1d").elementwise_flops == 128


# --- lazy modules -----------------------------------------------------------------------


def _lazy() -> nn.Module:
    return nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))


@pytest.mark.parametrize("device", DEVICES)
def test_lazy_modules_trace_and_stay_lazy(device: str) -> None:
    model = _lazy()
    result = trace(model, (2, 3, 5, 5), device=device)
    # LazyConv2d(4, 3) on 2x3x5x5 -> 2x4x3x3: 2*3*3 * 4 * 27 = 1_944 MACs; 4*27 + 4 = 112 params
    # LazyLinear(3) on 2x36: 2 * 36 * 3 = 216 MACs; 36*3 + 3 = 111 params
    assert result.get("0").macs == 1_944 and result.get("3").macs == 216
    assert result.totals.params == 112 + 111 == sum(r.params for r in result.leaves())
    assert result.get("").params_total == 223
    assert result.uncounted_ops == ()  # their random init is not counted as work
    assert result.totals.elementwise_flops == 2 * 4 * 3 * 3  # the ReLU only
    assert isinstance(model[0], nn.LazyConv2d) and model[0].has_uninitialized_params()
    assert "lazy" in " ".join(result.extra["notes"])


# --- TorchScript ------------------------------------------------------------------------


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


class HoldsScript(nn.Module):
    def __init__(self, how: str = "script") -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.sub = _compiled(how)
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        return self.b(self.sub(self.a(x)))


def _compiled(how: str) -> nn.Module:
    if how == "script":
        return torch.jit.script(Inner())
    return torch.jit.trace(Inner(), torch.randn(2, 4))


def _no_global_hooks() -> bool:
    return not torch_module._global_forward_pre_hooks and not torch_module._global_forward_hooks


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("how", ["script", "trace"])
def test_script_submodule(device: str, how: str) -> None:
    """A scripted submodule is opened (its Python class rebuilt around its weights); a
    traced one keeps no Python class and is one node that says so."""
    model = HoldsScript(how)
    result = trace(model, (2, 4), device=device)
    opened = how == "script"
    inside = ["sub.fc"] if opened else []
    assert [r.name for r in result.records] == ["", "a", "sub", *inside, "b"]
    sub = result.get("sub")
    # a, sub.fc: 2*4*4 = 32 MACs each; b: 2*4*2 = 16; the script's ops are counted inside
    assert (sub.macs_total, result.totals.macs) == (32, 80)
    assert sub.params_total == 20 and result.totals.params == 20 + 20 + 10
    assert (sub.type, sub.note) == (("Inner", "") if opened else ("Inner", "scripted: not opened"))
    said = "TorchScript modules were opened" if opened else "sub is TorchScript"
    assert any(said in note for note in result.extra["notes"])
    assert _no_global_hooks()
    assert model.a.weight.device.type == "cpu"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("how", ["script", "trace"])
def test_whole_torchscript_model(device: str, how: str) -> None:
    compiled = _compiled(how)
    result = trace(compiled, (2, 4), device=device)
    assert result.totals.macs == 32 and result.totals.params == 20
    assert [r.name for r in result.records] == (["", "fc"] if how == "script" else [""])
    assert compiled.fc.weight.device.type == "cpu"  # a copy went to meta, not the model
    assert _no_global_hooks()


def test_hooks_removed_when_a_script_model_fails() -> None:
    with pytest.raises(TraceError):
        trace(HoldsScript(), (2, 5))
    assert _no_global_hooks()


def test_data_parallel_traces_its_module() -> None:
    wrapped = nn.DataParallel(Inner())
    result = trace(wrapped, (2, 4))
    assert [r.name for r in result.records] == ["", "fc"] and result.totals.macs == 32
    assert "DataParallel" in result.extra["notes"][0]


# --- namedtuple and PackedSequence inputs -----------------------------------------------

Pair = namedtuple("Pair", "image extra")


class TakesPair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, pair: Pair):
        return self.fc(pair.image) + pair.extra


@pytest.mark.parametrize("device", DEVICES)
def test_namedtuple_input(device: str) -> None:
    pair = Pair(torch.randn(3, 4), torch.randn(3, 2))
    result = trace(TakesPair(), inputs=pair, device=device)  # one namedtuple: one input
    assert result.totals.macs == 3 * 4 * 2  # 24
    assert result.input_shapes == ((3, 4), (3, 2))  # one input: its own shape tree
    assert trace(TakesPair(), inputs=(pair,), device=device).totals == result.totals


@pytest.mark.parametrize("device", DEVICES)
def test_packed_sequence_input(device: str) -> None:
    lstm = nn.LSTM(4, 5)
    packed = pack_padded_sequence(torch.randn(3, 2, 4), [3, 2])
    result = trace(lstm, inputs=(packed,), device=device)
    # 4 gates * 5 hidden * (4 inputs + 5 hidden) = 180 MACs a step; 3 + 2 = 5 steps
    assert result.totals.macs == 900
    assert result.totals.flops == _flop_counter(lstm, packed)
    assert result.uncounted_ops == ()


# --- devices and meta's limits ----------------------------------------------------------


class DataDependent(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.fc, self.how = nn.Linear(4, 4), how

    def forward(self, x):
        y = self.fc(x)
        if self.how == "nonzero":
            return torch.nonzero(y)
        if self.how == "item":
            return y * 2 if y.sum() > 0 else y
        return y[y > 0]


@pytest.mark.parametrize(
    ("how", "op"),
    [("nonzero", "aten::nonzero"), ("item", r"Tensor\.item\(\)"), ("mask", "boolean mask")],
)
def test_meta_names_the_data_dependent_op(how: str, op: str) -> None:
    with pytest.raises(TraceError) as caught:
        trace(DataDependent(how), (2, 4))
    message = str(caught.value)
    assert re.search(op, message) and "--device cpu" in message and "\n" not in message
    assert trace(DataDependent(how), (2, 4), device="cpu").totals.macs == 2 * 4 * 4


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("xla", "device 'xla' is not supported; use meta, cpu, cuda"),
        ("nowhere", "unknown device 'nowhere'"),
    ],
)
def test_unsupported_devices_are_one_line(device: str, message: str) -> None:
    with pytest.raises(ArchvizError, match=re.escape(message)):
        trace(Inner(), (2, 4), device=device)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps() -> None:
    with pytest.raises(ArchvizError, match="MPS was requested but is not available"):
        trace(Inner(), (2, 4), device="mps")


def test_meta_model_on_cpu_says_how() -> None:
    with torch.device("meta"):
        model = Inner()
    with pytest.raises(ArchvizError, match=r"weights are on the meta device.*--device meta"):
        trace(model, (2, 4), device="cpu")
    assert trace(model, (2, 4)).totals.macs == 32  # and on meta it simply works


def test_tensors_given_as_a_size_point_to_inputs() -> None:
    with pytest.raises(ArchvizError, match="inputs="):
        trace(Inner(), torch.randn(2, 4))


def test_the_summary_says_what_archviz_did_to_trace_the_model() -> None:
    # DataParallel is unwrapped (archviz.tracing.setup); the note must reach the text table.
    t = trace(nn.DataParallel(nn.Linear(4, 4)), (2, 4))
    assert t.extra["notes"] and all(f"Note: {n}" in t.summary() for n in t.extra["notes"])
