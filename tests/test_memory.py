"""Memory: optimizer state, activations saved for backward (meta == CPU), the inference
peak, the KV cache, `fits`, and the `memory` command. Arithmetic in the comments."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz.analysis.memory import (
    _largest_batch,
    inference_peak,
    kv_cache_per_token,
    memory_of,
    optimizer_bytes,
)
from archviz.cli.main import cli
from archviz.errors import ArchvizError
from archviz.tracing.saved import saved_tensors
from archviz.tracing.trace import trace


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def small_convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    )  # fmt: skip


def test_optimizer_state() -> None:
    # Linear(4, 3): 4*3 + 3 = 15 parameters, 4 bytes each in float32
    assert optimizer_bytes(15, "adamw", 4) == 2 * 15 * 4 == 120  # exp_avg + exp_avg_sq
    assert optimizer_bytes(15, "sgd", 4) == 15 * 4 == 60  # one momentum buffer
    assert optimizer_bytes(15, "none", 4) == 0
    with pytest.raises(ArchvizError, match="unknown optimizer 'lamb'"):
        optimizer_bytes(15, "lamb", 4)


def test_linear_training_memory() -> None:
    m = memory_of(nn.Linear(4, 3), 2, (2, 4), train=True, optimizer="adamw", hardware_names="h100")
    assert (m.params_bytes, m.grads_bytes, m.optimizer_bytes) == (60, 60, 120)
    # saved for backward: the input 2x4 (for the weight's gradient); the weight is excluded
    assert m.activations_bytes == 2 * 4 * 4
    assert m.total_bytes == 60 + 60 + 120 + 32
    sgd = memory_of(nn.Linear(4, 3), 2, (2, 4), train=True, optimizer="sgd", hardware_names="")
    assert sgd.optimizer_bytes == 60 and sgd.fits == {}


def test_saved_activations_on_meta_equal_a_cpu_run() -> None:
    net = small_convnet()
    meta = saved_tensors(net, (2, 3, 10, 10))
    cpu = saved_tensors(net, (2, 3, 10, 10), device="cpu")
    # input 2*3*10*10 = 600 floats (conv's input), conv out 2*8*8*8 = 1024 (BN's input),
    # BN's save_mean + save_invstd 8 + 8, ReLU's in-place result 1024 (also maxpool's input:
    # one storage), maxpool's int64 indices 2*8*4*4 = 256 x 8 bytes, Linear's input 256
    expected = (600 + 1024 + 8 + 8 + 1024 + 256) * 4 + 256 * 8
    assert meta.bytes == cpu.bytes == expected == 13_728
    assert meta.storages == cpu.storages == 7
    assert all(p.device.type == "cpu" for p in net.parameters())  # the model was not moved


def test_inference_peak_follows_liveness() -> None:
    chain = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    # input 4 floats (16 B); + fc1 out 32 B -> 48, input freed -> 32; + relu out 32 -> 64
    # (peak), fc1 out freed -> 32; + fc2 out 8 -> 40
    assert inference_peak(trace(chain, (1, 4)), 4) == 64


def test_largest_batch() -> None:
    assert _largest_batch(100, 20, 30) == 2  # 20 + 2*30 = 80 <= 100 < 20 + 3*30
    assert _largest_batch(100, 90, 30) == 0  # one sample does not fit


def tiny_gpt2() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=8, vocab_size=10, n_positions=16)
    return transformers.GPT2LMHeadModel(config)


def test_kv_cache_per_token_from_the_config() -> None:
    model = tiny_gpt2()
    # 2 (K, V) x 2 layers x 2 heads x head size 8/2 = 4, float32: 2*2*2*4*4 = 128 bytes
    assert kv_cache_per_token(model, 4) == 128
    assert kv_cache_per_token(small_convnet(), 4) == 0  # no KV cache
    m = memory_of(model, 1, inputs=torch.zeros(1, 5, dtype=torch.long), hardware_names="t4")
    assert m.kv_cache_bytes == 128 * 5 and m.total_bytes >= m.params_bytes + 640
    assert m.fits["t4"] > 0


def test_memory_command_json(tmp_path) -> None:
    code, out, err = run("memory", "resnet18", "--batch", "2", "--input", "1x3x32x32",
                         "--train", "--optimizer", "sgd", "--hardware", "h100,t4",
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    for key in ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes",
                "peak_bytes", "total_bytes", "fits"):  # fmt: skip
        assert key in data
    assert set(data["fits"]) == {"h100", "t4"} and data["fits"]["h100"] > data["fits"]["t4"]
    assert data["optimizer_bytes"] == data["grads_bytes"] == data["params_bytes"]  # SGD: one
    assert data["input_shapes"] == [2, 3, 32, 32]
    code, out, _ = run("memory", "resnet18", "--batch", "2", "--input", "1x3x32x32",
                       "--hardware", "h100")  # fmt: skip
    assert code == 0 and "fits on: h100 (80 GB) up to batch" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", "lamb"], "Invalid value for '--optimizer'"),
        (["--batch", "0"], "Invalid value for '--batch'"),
        (["--hardware", "v100"], "unknown hardware 'v100'"),
    ],
)
def test_memory_bad_input_exits_2(args: list[str], message: str) -> None:
    code, _, err = run("memory", "resnet18", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_attention_saves_on_meta_what_a_cpu_run_saves() -> None:
    # On meta scaled_dot_product_attention would take its math path and save the 2x2x5x5
    # attention matrix; a CPU picks its flash kernel (output + log-sum-exp). Steered alike:
    from torchvision.models.vision_transformer import EncoderBlock

    block = EncoderBlock(num_heads=2, hidden_dim=8, mlp_dim=16, dropout=0.0, attention_dropout=0.0)
    meta = saved_tensors(block, (2, 5, 8))
    cpu = saved_tensors(block, (2, 5, 8), device="cpu")
    assert (meta.bytes, meta.storages) == (cpu.bytes, cpu.storages)


def test_weights_are_counted_at_the_dtype() -> None:
    # Linear(4, 3): 15 parameters at 2 bytes in bfloat16; AdamW keeps two states alike
    m = memory_of(nn.Linear(4, 3), 2, (2, 4), train=True, dtype="bfloat16", hardware_names="")
    assert (m.params_bytes, m.grads_bytes, m.optimizer_bytes) == (30, 30, 60)
