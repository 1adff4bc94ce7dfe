"""Hugging Face models and LLMs from their configs: published parameter counts, FLOPs
against PyTorch's FlopCounterMode, mixture-of-experts against an analytic count, token
inputs, the repeated blocks explain shows, and compare/report of LLM configs.

Configs are written here with transformers' own config classes: no network, no weights.
Every model is built on the meta device. Golden parameter counts are the model cards'.
"""

from __future__ import annotations

import json
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch.utils.flop_counter import FlopCounterMode

import archviz
from archviz.analysis.llm import llm_facts
from archviz.cli.main import cli
from archviz.errors import ArchvizError
from archviz.models import hf
from archviz.models.inputs import input_form
from archviz.tracing.trace import no_fused_attention

transformers = pytest.importorskip("transformers", reason="the 'layouts' extra is not installed")

# Published parameter counts (the Hugging Face model cards / the papers).
GPT2, BERT_BASE, T5_SMALL, LLAMA2_7B = 124_439_808, 109_482_240, 60_506_624, 6_738_415_616

SMALL_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, vocab_size=100)  # fmt: skip


def _configs() -> dict[str, object]:
    t = transformers
    return {
        "gpt2": t.GPT2Config(architectures=["GPT2LMHeadModel"]),
        "bert": t.BertConfig(architectures=["BertModel"]),
        "t5": t.T5Config.from_dict(  # t5-small's config.json values
            {
                "d_model": 512,
                "d_ff": 2048,
                "d_kv": 64,
                "num_layers": 6,
                "num_heads": 8,
                "vocab_size": 32128,
                "architectures": ["T5ForConditionalGeneration"],
            }
        ),
        "llama2": t.LlamaConfig(  # Llama-2-7B's config.json values
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32000,
            architectures=["LlamaForCausalLM"],
            torch_dtype="float16",
        ),
        "whisper": t.WhisperConfig(architectures=["WhisperForConditionalGeneration"]),
        "mistral": t.MistralConfig(
            **SMALL_LLAMA,
            sliding_window=32,
            architectures=["MistralForCausalLM"],
            torch_dtype="bfloat16",
        ),
        "qwen2": t.Qwen2Config(
            **SMALL_LLAMA,
            tie_word_embeddings=True,
            architectures=["Qwen2ForCausalLM"],
            torch_dtype="bfloat16",
        ),
        "mixtral": t.MixtralConfig(
            **SMALL_LLAMA,
            num_local_experts=4,
            num_experts_per_tok=2,
            architectures=["MixtralForCausalLM"],
        ),
    }


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("configs")
    paths = {}
    for name, config in _configs().items():
        (root / name).mkdir()
        config.to_json_file(str(root / name / "config.json"))  # type: ignore[attr-defined]
        paths[name] = root / name / "config.json"
    return paths


def _torch_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # PyTorch dedupes tied tensors


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("name", "published"),
    [("gpt2", GPT2), ("bert", BERT_BASE), ("t5", T5_SMALL), ("llama2", LLAMA2_7B)],
)
def test_config_json_builds_the_published_parameter_count(configs, name, published) -> None:
    model = archviz.get_model(str(configs[name]))
    assert all(p.is_meta for p in model.parameters())  # no weights anywhere
    assert archviz.trace(model, (1, 16)).totals.params == published  # tied lm_head once


@pytest.mark.parametrize(
    "name", ["gpt2", "bert", "t5", "whisper", "llama2", "mistral", "qwen2", "mixtral"]
)
def test_cli_trace_of_each_config_exits_0_with_exact_parameters(configs, name) -> None:
    code, out = _cli("trace", str(configs[name]), "--input", "1x128", "--format", "json")
    assert code == 0, out
    model = archviz.get_model(str(configs[name]))
    assert json.loads(out)["totals"]["params"] == _torch_params(model)


def test_config_dtype_is_the_trace_dtype_unless_dtype_says(configs) -> None:
    code, out = _cli("trace", str(configs["mistral"]), "--format", "json")
    assert code == 0 and json.loads(out)["dtype"] == "bfloat16"  # the config's
    code, out = _cli("trace", str(configs["mistral"]), "--dtype", "float32", "--format", "json")
    assert code == 0 and json.loads(out)["dtype"] == "float32"


def test_token_inputs_are_int64_ids_inside_the_vocabulary(configs) -> None:
    model = archviz.get_model(str(configs["bert"]))
    form = input_form(model)
    ints = lambda s, lo, hi: torch.randint(lo, hi, s)  # noqa: E731
    _, kwargs = form.inputs((2, 128), torch.zeros, ints)
    ids = kwargs["input_ids"]
    assert ids.dtype == torch.int64 and ids.shape == (2, 128)
    assert int(ids.max()) < 30522 and int(ids.min()) >= 0  # bert-base's vocabulary
    assert bool((kwargs["attention_mask"] == 1).all())
    _, on_meta = form.inputs((2, 128), torch.zeros, ints, meta=True)
    assert "attention_mask" not in on_meta  # an all-ones mask is what no mask means


def test_each_kind_gets_its_own_default_input(configs) -> None:
    shapes = {
        name: archviz.trace(archviz.get_model(str(configs[name]))).input_shapes
        for name in ("gpt2", "t5", "whisper")
    }
    assert shapes["gpt2"] == ({"input_ids": (1, 128)},)
    assert shapes["t5"] == ({"input_ids": (1, 128), "decoder_input_ids": (1, 128)},)
    # Whisper: 80 mel bins x 3000 frames (30 s), and decoder tokens
    assert shapes["whisper"] == ({"input_features": (1, 80, 3000), "decoder_input_ids": (1, 128)},)


@pytest.mark.parametrize("name", ["gpt2", "mistral"])  # mistral: GQA, 2 KV heads of 4
def test_flops_equal_flop_counter_mode_on_meta(configs, name) -> None:
    transformers.set_seed(0)
    config = _configs()[name]
    config.num_hidden_layers = 2  # type: ignore[attr-defined]
    config.torch_dtype = "float32"  # type: ignore[attr-defined]
    model = hf.build_on_meta(getattr(transformers, config.architectures[0]), config, name)  # type: ignore[attr-defined]
    ids = torch.empty(1, 64, dtype=torch.long, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), no_fused_attention():
        model(input_ids=ids)
    result = archviz.trace(model, (1, 64))
    assert result.totals.flops == counter.get_total_flops() > 0


def test_moe_counts_each_tokens_top_k_experts(configs) -> None:
    """Mixtral on meta: everything but the experts as FlopCounterMode counts it, plus each
    token's top-k experts: T x k x (gate+up: 2 x h x 2I, down: 2 x I x h) per layer."""
    model = archviz.get_model(str(configs["mixtral"]))
    tokens, top_k, hidden, inner, layers = 16, 2, 64, 128, 2
    result = archviz.trace(model, (1, tokens))
    counter = FlopCounterMode(display=False)  # it has no formula for grouped matmuls
    with counter, torch.no_grad(), no_fused_attention():
        model.to(torch.bfloat16)(input_ids=torch.empty(1, tokens, dtype=torch.long, device="meta"))
    experts = layers * tokens * top_k * (2 * hidden * 2 * inner + 2 * inner * hidden)
    assert experts == 2 * 16 * 2 * 49_152  # = 3,145,728: 2 of 4 experts, not all, not none
    assert result.totals.flops == counter.get_total_flops() + experts


def test_explain_shows_the_repeated_block_and_the_published_count(configs) -> None:
    code, out = _cli("explain", str(configs["gpt2"]))
    assert code == 0, out
    assert "12 x GPT2Block" in out and "4 x 12 + 1 = 49" in out  # 12 blocks of 4 on the path
    assert "publishes 12 layers (num_hidden_layers)" in out


def test_explain_llama3_8b_shows_32_blocks(tmp_path: Path) -> None:
    config = transformers.LlamaConfig(  # Llama-3-8B's config.json values
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, architectures=["LlamaForCausalLM"],
    )  # fmt: skip
    config.to_json_file(str(tmp_path / "config.json"))
    e = archviz.explain(str(tmp_path / "config.json"), (1, 8))
    assert e.blocks_formula == "32 x LlamaDecoderLayer" and e.params == 8_030_261_248


def test_explain_encoder_decoder_shows_both_stacks(configs) -> None:
    e = archviz.explain(str(configs["t5"]))
    assert [(s.where, s.count) for s in e.stacks] == [("encoder.block", 6), ("decoder.block", 6)]
    assert e.published_blocks == (("layers", 6), ("decoder_layers", 6))
    whisper = archviz.explain(str(configs["whisper"]))  # whisper-tiny: 4 + 4 layers
    assert whisper.blocks_formula == (
        "4 x WhisperEncoderLayer (model.encoder.layers) + "
        "4 x WhisperDecoderLayer (model.decoder.layers)"
    )


def test_inputs_pass_through_explain_and_compare(configs) -> None:
    ids = {"input_ids": torch.zeros(2, 8, dtype=torch.long)}
    e = archviz.explain(str(configs["gpt2"]), inputs=ids)
    assert e.input_size == (2, 8)
    comparison = archviz.compare([str(configs["qwen2"])], inputs=ids, paper=False)
    row = comparison.rows[0]
    assert row.llm is not None and row.llm.tokens == 2 * 8
    frame = comparison.to_dataframe()  # the CSV's columns: no clash with a ResNet's layers
    assert frame["layers"][0] == "[]" and frame["num_hidden_layers"][0] == 2
    assert frame["kv_heads"][0] == 2 and frame["blocks"][0] == "2 x Qwen2DecoderLayer"


def test_llm_facts_split_parameters_and_count_the_kv_cache(configs) -> None:
    result = archviz.trace(archviz.get_model(str(configs["mistral"])), (1, 32))
    facts = llm_facts(result)
    assert facts is not None
    # embeddings: 100 x 64 tokens, untied lm_head 64 x 100 is not one
    assert facts.embedding_params == 6_400
    assert facts.embedding_params + facts.non_embedding_params == result.totals.params
    assert facts.kv_cache_bytes_per_token == 2 * 2 * 2 * 16 * 2  # K,V x layers x KV x dim x bf16
    assert facts.attention == "GQA (2 KV heads), sliding window 32"
    assert facts.flops_per_token == result.totals.flops // 32


def test_compare_and_report_two_llm_configs(configs, tmp_path: Path) -> None:
    code, out = _cli("compare", str(configs["qwen2"]), str(configs["mixtral"]), "--format", "json")
    assert code == 0, out
    rows = json.loads(out)["rows"]
    assert [r["llm"]["experts"] for r in rows] == [None, 4] and rows[1]["llm"]["top_k"] == 2
    code, out = _cli("report", str(configs["gpt2"]), str(configs["qwen2"]), "-o",
                     str(tmp_path / "r"), "--format", "markdown")  # fmt: skip
    assert code == 0, out
    text = (tmp_path / "r" / "README.md").read_text(encoding="utf-8")
    assert "KV cache per token" in text and "12 x GPT2Block" in text


def test_hf_spec_fetches_only_the_config_once(monkeypatch, tmp_path: Path) -> None:
    fetched: list[str] = []
    body = transformers.GPT2Config(n_layer=2, architectures=["GPT2LMHeadModel"]).to_json_string()

    def download(url: str) -> bytes:
        fetched.append(url)
        return body.encode()

    monkeypatch.setenv("ARCHVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(hf, "hub_cached", lambda repo: None)
    monkeypatch.setattr(hf, "download", download)
    for _ in range(2):
        model = archviz.get_model("hf:openai-community/gpt2")
    assert fetched == ["https://huggingface.co/openai-community/gpt2/resolve/main/config.json"]
    assert _torch_params(model) == GPT2 - 10 * 7_087_872  # 10 fewer GPT2Blocks of 7,087,872


def test_hf_spec_reads_hugging_faces_own_cache_first(monkeypatch, configs, tmp_path) -> None:
    def no_network(url: str) -> bytes:
        raise AssertionError("fetched although Hugging Face's cache has it")

    monkeypatch.setenv("ARCHVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(hf, "hub_cached", lambda repo: configs["bert"])
    monkeypatch.setattr(hf, "download", no_network)
    assert _torch_params(archviz.get_model("hf:google-bert/bert-base-uncased")) == BERT_BASE


def test_hf_spec_offline_says_which_file_to_pass(monkeypatch, tmp_path: Path) -> None:
    def offline(url: str) -> bytes:
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("ARCHVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(hf, "hub_cached", lambda repo: None)
    monkeypatch.setattr(hf, "download", offline)
    code, out = _cli("trace", "hf:meta-llama/Llama-3-8B")
    assert code == 2 and "Llama-3-8B/resolve/main/config.json" in out
    assert "path/to/config.json" in out and "Traceback" not in out


def test_transformers_and_timm_specs() -> None:
    assert _torch_params(archviz.get_model("transformers:BertModel")) == BERT_BASE
    pytest.importorskip("timm")
    assert _torch_params(archviz.get_model("timm:resnet18")) == 11_689_512  # the paper's


def test_missing_extra_is_one_line_naming_it(monkeypatch, configs) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    with pytest.raises(ArchvizError, match=r"archviz\[layouts\]"):
        archviz.get_model(str(configs["gpt2"]))
