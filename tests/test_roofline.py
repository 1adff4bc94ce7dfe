"""The roofline: FLOPs, bytes and intensity per unit, the bound, the CPU calibration, the
plot and the `roofline` command. Figures are counted by hand in the comments."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archviz.analysis.hardware import DATASHEETS, Hardware, datasheet, parse_hardware
from archviz.analysis.roofline import predict, roofline
from archviz.cli.main import cli
from archviz.errors import ArchvizError
from archviz.tracing.trace import trace
from tests.fixtures.tiny import ConvNet

# A made-up machine: 100 FLOP/s and 10 B/s, so its ridge is at 10 FLOPs per byte.
SLOW = Hardware("slow", "test", "float32", 100.0, 10.0, 10**9, "test")
WIDE = Hardware("wide", "test", "float32", 100.0, 1000.0, 10**9, "test")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def linear_roofline():
    return roofline(trace(nn.Linear(4, 3), (2, 4)), [SLOW, WIDE])


def test_linear_flops_bytes_and_intensity(linear_roofline) -> None:
    (unit,) = linear_roofline.modules
    with FlopCounterMode(display=False) as counter:  # PyTorch's own count, run here
        nn.Linear(4, 3)(torch.randn(2, 4))
    # addmm of (2x4) @ (4x3): 2 * 2*4*3 = 48 FLOPs
    assert unit.flops == counter.get_total_flops() == 48
    # input 2*4 + output 2*3 + weight 4*3 + bias 3 = 29 floats = 116 bytes
    assert unit.bytes == (2 * 4 + 2 * 3 + 4 * 3 + 3) * 4 == 116
    assert unit.intensity == pytest.approx(48 / 116)


def test_bound_is_the_slower_of_compute_and_memory(linear_roofline) -> None:
    (unit,) = linear_roofline.modules
    # slow: compute 48/100 = 0.48 s, memory 116/10 = 11.6 s -> memory-bound
    assert unit.seconds["slow"] == pytest.approx(11.6) and unit.bound["slow"] == "memory"
    # wide: compute 0.48 s, memory 116/1000 = 0.116 s -> compute-bound
    assert unit.seconds["wide"] == pytest.approx(0.48) and unit.bound["wide"] == "compute"
    assert predict(1000, 10, SLOW) == (10.0, "compute")  # 1000/100 = 10 s vs 10/10 = 1 s


def test_bytes_that_fit_the_measured_cache_are_charged_at_its_rate() -> None:
    cpu = Hardware("cpu", "test", "float32", 100.0, 10.0, 10**9, "test", True, 100, 100.0)
    # 150 bytes: 100 fit the cache (100/100 = 1 s), 50 from memory (50/10 = 5 s) -> 6 s
    assert predict(0, 150, cpu) == (6.0, "memory")
    assert predict(0, 150, SLOW) == (15.0, "memory")  # no cache measured: 150/10


def test_bytes_follow_the_dtype() -> None:
    half = roofline(trace(nn.Linear(4, 3), (2, 4)), [datasheet("h100", "bfloat16")], "bfloat16")
    assert half.modules[0].bytes == 29 * 2  # the same 29 elements at 2 bytes


@pytest.fixture(scope="module")
def convnet_roofline():
    return roofline(trace(ConvNet(), (1, 3, 10, 10)), [SLOW, datasheet("h100")])


def test_units_sum_to_stages_blocks_and_total(convnet_roofline) -> None:
    r = convnet_roofline
    t = trace(ConvNet(), (1, 3, 10, 10)).totals
    assert r.total.flops == t.flops + t.elementwise_flops  # every FLOP lands in one unit
    for rollups in (r.parts, r.blocks):
        assert sum(p.flops for p in rollups) == r.total.flops
        assert sum(p.bytes for p in rollups) == r.total.bytes
        assert sum(p.seconds["h100"] for p in rollups) == pytest.approx(r.total.seconds["h100"])
    # the residual add is a unit: reads 2 x 8x4x4, writes 8x4x4 = 384 floats
    add = next(u for u in r.modules if u.type == "add")
    assert add.bytes == 3 * 8 * 4 * 4 * 4 and add.flops == 8 * 4 * 4


def test_view_ops_move_nothing_and_lookups_read_rows_only() -> None:
    emb = nn.Embedding(1000, 8)
    r = roofline(trace(emb, inputs=torch.zeros(1, 5, dtype=torch.long)), [SLOW])
    # a lookup reads its 5 rows of 8, not the 1000 x 8 table: input 5 + output 40 + rows 40
    assert r.modules[0].bytes == (5 + 40 + 40) * 4


def test_json_keys(convnet_roofline) -> None:
    data = json.loads(json.dumps(convnet_roofline.to_dict()))
    for hw in ("slow", "h100"):
        assert set(data["hardware"][hw]) >= {"peak_flops", "bandwidth", "memory_bytes", "source"}
        assert set(data["totals"]["seconds"]) == {"slow", "h100"}
    assert "measured" in data["totals"]
    for module in data["modules"]:
        assert set(module) >= {"name", "flops", "bytes", "intensity", "seconds", "bound"}
        assert set(module["bound"].values()) <= {"compute", "memory"}


def test_datasheets_are_dense_and_named() -> None:
    # NVIDIA prints H100 SXM BF16 as 1,979 TFLOPS with sparsity: dense is half
    assert datasheet("h100", "bfloat16").peak_flops == 1979e12 / 2
    assert datasheet("a100", "float16").peak_flops == 312e12  # 624 with sparsity
    assert datasheet("h200").memory_bytes == 141e9 and datasheet("h200").bandwidth == 4.8e12
    assert all("datasheet" in sheet.source for sheet in DATASHEETS.values())
    with pytest.raises(ArchvizError, match="unknown hardware 'v100'"):
        parse_hardware("h100,v100")


def test_cpu_calibration_is_cached(tmp_path: Path, monkeypatch) -> None:
    from archviz.benchmark import ceilings

    monkeypatch.setenv("ARCHVIZ_CACHE_DIR", str(tmp_path))
    first = ceilings.cpu_ceilings("float32", size=64)  # a 64^3 GEMM and an 8 MiB copy
    assert first.peak_flops > 0 and first.bandwidth > 0
    (cached,) = tmp_path.glob("cpu-ceilings-*.json")
    assert "float32-64" in json.loads(cached.read_text())

    def never(*_: object) -> float:
        raise AssertionError("calibrated again instead of reading the cache")

    monkeypatch.setattr(ceilings, "gemm_rate", never)
    monkeypatch.setattr(ceilings, "copy_rate", never)
    assert ceilings.cpu_ceilings("float32", size=64) == first


def test_plot_is_valid_svg(convnet_roofline, tmp_path: Path) -> None:
    from archviz.render.roofline import save_roofline_plot

    path = save_roofline_plot(convnet_roofline, tmp_path / "r.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    text = path.read_text()
    assert "h100" in text and "conv" in text  # the roof's legend and a labelled unit


def test_roofline_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARCHVIZ_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("ARCHVIZ_CALIBRATION_SIZE", "64")
    plot = tmp_path / "out" / "roofline.svg"
    code, out, err = run("roofline", "resnet18", "--input", "1x3x32x32", "--hardware",
                         "cpu,h100", "--measure", "--format", "json", "-o", str(plot))  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["totals"]["measured"]["cpu"] > 0 and "h100" not in data["totals"]["measured"]
    assert {p["name"] for p in data["parts"]} == {
        "stem",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "head",
    }
    assert plot.is_file() and f"wrote {plot}" in err
    code, out, _ = run("roofline", "resnet18", "--input", "1x3x32x32", "--hardware", "a100",
                       "-o", str(plot), "--format", "table")  # fmt: skip
    assert code == 0 and "NVIDIA A100 SXM 80GB" in out and "layer3" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hardware", "tpu"], "unknown hardware 'tpu'"),
        (["--dtype", "int8"], "Invalid value for '--dtype'"),
        (["--input", "1x3xfoo"], "malformed input shape"),
        (["-o", "plot.json"], "name it .svg, .png or .pdf"),
    ],
)
def test_roofline_bad_input_exits_2(args: list[str], message: str, tmp_path: Path) -> None:
    code, _, err = run("roofline", "resnet18", "--hardware", "h100", "--input", "1x3x32x32",
                       "-o", str(tmp_path / "r.svg"), *args)  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_prediction_is_a_lower_bound_on_cuda() -> None:
    from archviz.analysis.predict import cuda_hardware_name, roofline_of

    name = cuda_hardware_name()
    if name is None:
        pytest.skip(f"no datasheet for {torch.cuda.get_device_name()}")
    r = roofline_of("resnet50", (8, 3, 224, 224), hardware_names=name, measure=True)
    assert r.total.seconds[name] <= r.total.measured[name]
    for part in r.parts:
        assert part.seconds[name] <= part.measured[name] * 1.02, part.name  # 2%: timer jitter
    assert not math.isnan(r.attained(name) or math.nan)


def test_explorer_boxes_carry_predicted_time() -> None:
    from archviz.render.explore import page_data

    traced = trace(ConvNet(), (1, 3, 10, 10))
    total = roofline(traced, [datasheet("h100")]).total.seconds["h100"]
    boxes = page_data(traced)["boxes"]
    # each unit's time sits in its box and in every box around it: the top level sums to all
    assert sum(b["s_h100"] for b in boxes if b["p"] < 0) == pytest.approx(total)
    assert next(b for b in boxes if b["id"] == "conv")["s_h100"] > 0


def test_report_has_a_roofline_and_a_fits_line() -> None:
    from archviz.render.report.hardware import hardware_context

    context = hardware_context(trace(ConvNet(), (1, 3, 10, 10), name="convnet"))
    assert "| total" in context["roofline_md"] and "<table>" in context["roofline_html"]
    assert all(sheet.label in context["fits"] for sheet in DATASHEETS.values())


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


def test_stages_of_any_model_are_its_repeated_blocks_and_are_timed() -> None:
    from archviz.benchmark.segments import time_segments

    model = nn.Sequential(nn.Linear(4, 8), Block(), Block(), Block(), nn.Linear(8, 2)).eval()
    r = roofline(trace(model, (2, 4)), [SLOW])
    assert r.boundaries == ("1", "2", "3")
    assert [p.name for p in r.parts] == ["stem", "1", "2", "3", "head"]
    # each block: two Linear(8, 8) on 2x8 (2 * 2*8*8 = 256 FLOPs each), relu and add (16 each)
    assert [p.flops for p in r.parts[1:4]] == [2 * 256 + 16 + 16] * 3
    times = time_segments(model, (torch.randn(2, 4),), {}, r.boundaries, min_run_time=0.01)
    assert set(times.parts) == {"stem", "1", "2", "3", "head"} and times.total > 0
    assert all(seconds >= 0 for seconds in times.parts.values())
