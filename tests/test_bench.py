"""bench(): structure, units and consistency of the figures; never their speed.

Tiny inputs (32x32 images, a few milliseconds of timing) keep this fast on a CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz import ArchvizError, BenchResult, bench
from archviz.benchmark.environment import peak_memory, release_free_heap
from archviz.benchmark.records import BenchRow
from archviz.cli.main import cli
from archviz.models import BasicBlock, ResNet

FAST = {"image_size": 32, "min_run_time": 0.01, "threads": 1}
PARTS = ["stem", "layer1", "layer2", "layer3", "layer4", "head"]


@pytest.fixture(scope="module")
def result() -> BenchResult:
    tiny = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    return bench([tiny], devices="cpu,cuda", batch_sizes=(1, 2), **FAST)


def _cpu(result: BenchResult) -> list[BenchRow]:
    return [r for r in result.rows if r.device == "cpu"]


def test_one_row_per_model_device_batch_dtype(result: BenchResult) -> None:
    keys = [(r.model, r.device, r.batch, r.dtype) for r in result.rows]
    assert keys == [
        ("ResNet", "cpu", 1, "float32"),
        ("ResNet", "cpu", 2, "float32"),
        ("ResNet", "cuda", 1, "float32"),
        ("ResNet", "cuda", 2, "float32"),
    ]


def test_figures_are_positive_and_consistent(result: BenchResult) -> None:
    for row in _cpu(result):
        assert row.ok and row.threads == 1
        assert row.median_s is not None and row.median_s > 0
        assert row.iqr_s is not None and row.iqr_s >= 0
        assert row.runs >= row.blocks >= 1
        assert row.throughput == pytest.approx(row.batch / row.median_s)
        assert row.flops is not None and row.gflops_per_s is not None
        assert row.gflops_per_s == pytest.approx(row.flops / row.median_s / 1e9)
        assert row.peak_memory_bytes is not None and row.peak_memory_bytes >= 0


@pytest.mark.skipif(not release_free_heap(), reason="needs glibc's malloc_trim")
def test_cpu_peak_memory_counts_memory_that_earlier_work_freed() -> None:
    # Leave a freed, still-resident block in the middle of the heap (a small tensor pins
    # the top), as a model's earlier forwards do: the conv's 12.6 MB output fits in it,
    # so the resident set would not grow at all unless that block is handed back first.
    conv, x = nn.Conv2d(3, 64, 3), torch.randn(1, 3, 224, 224)
    out_bytes = 64 * 222 * 222 * 4
    with torch.inference_mode():
        for _ in range(3):
            torch.ones(2 * out_bytes, dtype=torch.uint8)  # freed at once: glibc's mmap
            held = torch.ones(2 * out_bytes, dtype=torch.uint8)  # threshold rises, so
            pin = torch.ones(16)  # this block comes from the heap, below `pin`
            del held
            grown = peak_memory(conv, x)
            del pin
            assert grown >= 0.9 * out_bytes


def test_flops_come_from_the_shapes() -> None:
    # conv1 on 1x3x32x32 -> 64x16x16: 16*16 * 64 * (3*7*7) MACs, x2 for FLOPs
    model = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False))
    from archviz.benchmark.timing import _forward_flops

    assert _forward_flops(model, (1, 3, 32, 32)) == 2 * 16 * 16 * 64 * 3 * 7 * 7
    assert _forward_flops(model, (4, 3, 32, 32)) == 4 * 2 * 16 * 16 * 64 * 3 * 7 * 7


def test_stage_breakdown_walks_the_real_intermediate_shapes(result: BenchResult) -> None:
    row = _cpu(result)[1]  # batch 2
    assert [s.part for s in row.stages] == PARTS
    # 32px: stem /4 -> 8px; layer2..4 halve it; head sees 512 x 1 x 1
    assert [s.input_shape for s in row.stages] == [
        (2, 3, 32, 32),
        (2, 64, 8, 8),
        (2, 64, 8, 8),
        (2, 128, 4, 4),
        (2, 256, 2, 2),
        (2, 512, 1, 1),
    ]
    assert all(s.median_s > 0 and s.runs >= 1 for s in row.stages)
    assert row.stages_sum_s == pytest.approx(sum(s.median_s for s in row.stages))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_missing_cuda_gives_labelled_rows(result: BenchResult) -> None:
    cuda = [r for r in result.rows if r.device == "cuda"]
    assert cuda and all(r.status == "not available" and r.note for r in cuda)
    assert all(r.median_s is None and r.stages == () for r in cuda)
    assert result.machine.gpu_name is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_cuda_alone_is_an_error() -> None:
    with pytest.raises(ArchvizError, match="CUDA was requested but is not available"):
        bench("resnet18", devices="cuda", **FAST)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"devices": "tpu"}, "unknown device 'tpu'; choose from cpu, cuda"),
        ({"dtypes": "int8"}, "unknown dtype 'int8'; choose from float32, bfloat16, float16"),
        ({"batch_sizes": (0,)}, "batch sizes must be positive"),
        ({"threads": 0}, "threads must be at least 1"),
        ({"min_run_time": 0}, "min-run-time is seconds of timing per measurement"),
        ({"min_run_time": float("inf")}, "min-run-time must be a finite number"),
        ({"min_run_time": float("nan")}, "min-run-time must be a finite number"),
        ({"min_run_time": 1e6}, "at most 600"),
    ],
)
def test_bad_settings_are_archviz_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ArchvizError, match=message):
        bench("resnet18", **{**FAST, **kwargs})


def test_json_round_trip(result: BenchResult, tmp_path) -> None:
    path = tmp_path / "bench.json"
    result.save(path)
    assert BenchResult.load(path) == result


def test_load_or_run_reads_a_file_or_runs_devices(result: BenchResult, tmp_path) -> None:
    from archviz.benchmark.timing import load_or_run

    path = tmp_path / "saved.json"
    result.save(path)
    assert load_or_run(str(path), []) == result
    (row,) = load_or_run("cpu", "resnet18", batch_sizes=(1,), stages=False, **FAST).rows
    assert row.ok and row.model == "resnet18"


def test_load_refuses_other_files(tmp_path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"kind": "something-else"}')
    with pytest.raises(ArchvizError, match="not an archviz-bench file"):
        BenchResult.load(path)
    with pytest.raises(ArchvizError, match="cannot read"):
        BenchResult.load(tmp_path / "missing.json")


def test_dataframe_has_one_row_per_result_row_and_stage_columns(result: BenchResult) -> None:
    frame = result.to_dataframe()
    assert len(frame) == len(result.rows)
    assert [f"{p}_s" for p in PARTS] == [c for c in frame.columns if c.endswith("_s")][-6:]
    cpu = frame[frame.device == "cpu"]
    stage_sum = cpu[[f"{p}_s" for p in PARTS]].sum(axis=1)
    assert list(stage_sum) == pytest.approx(list(cpu.stages_sum_s))


def test_non_resnet_model_is_timed_whole_without_stages() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 32, 32))  # materialise the lazy layer
    (row,) = bench(model, devices="cpu", batch_sizes=(1,), **FAST).rows
    assert row.ok and row.stages == () and "not ResNet-like" in row.stages_note


def test_bfloat16_on_cpu_is_measured_and_labelled_when_emulated() -> None:
    from archviz.benchmark.environment import cpu_bf16_native

    tiny = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    (row,) = bench(tiny, devices="cpu", batch_sizes=(1,), dtypes="bfloat16", **FAST).rows
    assert row.ok and row.median_s is not None and row.median_s > 0
    assert ("emulated" in row.note) == (not cpu_bf16_native())


def test_the_callers_model_is_left_as_it_was() -> None:
    tiny = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10).train()
    bench(tiny, devices="cpu", batch_sizes=(1,), dtypes="bfloat16", stages=False, **FAST)
    assert tiny.training and next(tiny.parameters()).dtype == torch.float32


def test_machine_is_recorded(result: BenchResult) -> None:
    machine = result.machine
    assert machine.cpu_cores >= 1 and machine.torch_threads >= 1
    assert machine.torch_version == torch.__version__ and machine.cpu_model
    assert not math.isnan(result.min_run_time)


def test_formats_render_every_row(result: BenchResult) -> None:
    from archviz.render.bench_table import FORMATS, format_bench

    assert FORMATS == ("table", "json", "csv", "markdown")
    assert BenchResult.from_json(format_bench(result, "json")) == result
    assert format_bench(result, "csv").count("\n") == 1 + len(result.rows)
    markdown = format_bench(result, "markdown")
    assert "| model" in markdown and "sum of stages" in markdown
    assert markdown.count("not available") == sum(not r.ok for r in result.rows)


def test_chart_is_deterministic_svg(result: BenchResult) -> None:
    from archviz.render.bench_chart import bench_chart

    svg = bench_chart(result)
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert "Where the time goes" in svg and "layer3" in svg
    assert svg == bench_chart(result)


def test_progress_callback_counts_up_to_the_total() -> None:
    calls: list[tuple[int, int, str]] = []
    tiny = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    bench(
        tiny,
        devices="cpu",
        batch_sizes=(1, 2),
        stages=False,
        progress=lambda done, total, label: calls.append((done, total, label)),
        **FAST,
    )
    # Told what runs before each measurement, and how many are done after it.
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert (0, 2, "ResNet cpu float32 batch 1") in calls
    assert (1, 2, "ResNet cpu float32 batch 2") in calls
    assert calls[-1] == (2, 2, "")


CLI_FAST = ["--image-size", "32", "--min-run-time", "0.01", "--threads", "1", "--batch", "1"]


def test_cli_bench_json_and_save(tmp_path) -> None:
    saved = tmp_path / "bench.json"
    args = ["bench", "resnet18", "--device", "cpu,cuda", *CLI_FAST, "--format", "json"]
    result = CliRunner().invoke(cli, [*args, "--save", str(saved)])
    assert result.exit_code == 0, result.output
    printed = BenchResult.from_json(result.stdout)
    assert printed == BenchResult.load(saved)
    assert [(r.device, r.batch) for r in printed.rows] == [("cpu", 1), ("cuda", 1)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_cli_cuda_alone_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(cli, ["bench", "resnet18", "--device", "cuda", *CLI_FAST])
    assert result.exit_code == 2
    assert result.stderr.startswith("archviz: error: CUDA was requested but is not available")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "1,x"], "malformed batch sizes '1,x'"),
        (["--dtype", "int8"], "unknown dtype 'int8'"),
        (["--image-size", "1x2x3"], "image size is H or HxW"),
    ],
)
def test_cli_bad_options_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["bench", "resnet18", *CLI_FAST, *args])
    assert result.exit_code == 2 and message in result.stderr


def test_quick_figures_say_so_in_text_json_chart_and_report(tmp_path) -> None:
    from archviz import compare
    from archviz.render.bench_chart import bench_chart
    from archviz.render.bench_table import format_bench
    from archviz.render.report import write_report

    tiny = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    quick = bench(tiny, devices="cpu", batch_sizes=(1,), quick=True, image_size=32, threads=1)
    label = "quick: rough figures"
    assert quick.quick and quick.label.startswith(label)
    assert [(r.runs >= 3, r.stages) for r in quick.rows] == [(True, ())]  # median of 3+
    for fmt in ("table", "markdown"):
        assert format_bench(quick, fmt).startswith(label), fmt
    assert f'"label": "{quick.label}"' in format_bench(quick, "json")
    assert BenchResult.from_json(quick.to_json()) == quick
    assert label in bench_chart(quick)
    pages = write_report(compare(["resnet18"], (1, 3, 32, 32)), tmp_path, bench=quick)
    assert all(label in page.read_text() for page in pages)


def test_full_figures_carry_no_quick_label(result: BenchResult) -> None:
    from archviz.render.bench_table import format_bench

    assert not result.quick and "quick" not in format_bench(result, "table")
    assert '"label"' not in result.to_json()
