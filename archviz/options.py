"""The CLI's vocabulary in one place: commands, their examples, formats, shapes, outputs.

The CLI builds its options from here and the README's option table is checked against
`options_markdown()` by a test, so a name is spelled one way everywhere. This module
imports neither torch nor the renderers: `archviz --help` reads it and must start fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archviz.errors import ArchvizError

DEFAULT_INPUT = "1x3x224x224"
# One int64 must hold every element count; a dimension beyond int32 is never an image.
MAX_DIM = 2**31 - 1
MAX_ELEMENTS = 2**62

# --format names, per command; "table" is the terminal text table everywhere.
TABLE, JSON, CSV, MARKDOWN, HTML = "table", "json", "csv", "markdown", "html"
FORMATS: dict[str, tuple[str, ...]] = {
    "trace": (TABLE, JSON, CSV, MARKDOWN),
    "explain": (TABLE, JSON, MARKDOWN),
    "compare": (TABLE, JSON, CSV, MARKDOWN),
    "verify": (TABLE, JSON, MARKDOWN),
    "bench": (TABLE, JSON, CSV, MARKDOWN),
    "report": (HTML, MARKDOWN),
    "roofline": (TABLE, JSON, CSV),
    "memory": (TABLE, JSON),
}
# Old spellings still accepted (hidden from --help): README and reports used them.
FORMAT_ALIASES = {"text": TABLE, "md": MARKDOWN}
# `-o FILE` without --format: the suffix chooses.
SUFFIX_FORMATS = {".json": JSON, ".csv": CSV, ".md": MARKDOWN, ".txt": TABLE}

LEVELS: dict[str, str] = {  # ResNet presets of diagram's --depth
    "stage": "depth 1, stem -> layer1..layer4 -> head",
    "block": "depth 2, one box per residual block",
    "layer": "depth 3, conv/BN/ReLU/add inside each block",
}
DIAGRAM_SUFFIXES = (".svg", ".png", ".pdf", ".dot")
# --hardware: this machine's CPU (measured ceilings) and GPUs from their datasheets
# (archviz.analysis.hardware holds the figures and names each sheet).
HARDWARE = ("cpu", "a100", "h100", "h200", "l4", "t4")
OPTIMIZERS = ("adamw", "sgd", "none")
TRACE_DEVICES = "meta (no memory, no compute), cpu or cuda"
# --dtype names (torch's); without it a model runs in its own dtype (a config's dtype).
DTYPES = ("float32", "float16", "bfloat16", "float64")
HARDWARE_DTYPES = ("float32", "bfloat16", "float16")  # the datasheets give peaks for these
MAX_NODES = 300  # a diagram's node budget: above it, drawn shallower (render/diagram reads it)
TRACING_COMMANDS = ("trace", "diagram", "explore", "explain", "compare", "report")
# --ops: which ops a diagram draws as nodes (archviz.analysis.fold.OP_ROLES says which is glue)
OPS: dict[str, str] = {
    "folded": "data-moving ops (view, permute, getitem, ...) drawn on edges, runs of ops as one",
    "all": "every op that ran is a node",
}
TIMEOUT_HELP = (
    "Stop after SECONDS (the model's factory and forward are your code): exit 2 naming "
    "the module that was running. No limit unless given."
)


@dataclass(frozen=True)
class Command:
    """One command's one-line summary and the two examples its --help shows."""

    summary: str
    examples: tuple[str, str]


COMMANDS: dict[str, Command] = {
    "models": Command(
        "List the model names archviz knows.",
        ("archviz models", "archviz models --torchvision"),
    ),
    "trace": Command(
        "Trace a model: every module's shapes, parameters, MACs and FLOPs.",
        (
            "archviz trace resnet50 --depth 2",
            "archviz trace torchvision:vit_b_16 --format json -o vit.json",
        ),
    ),
    "explain": Command(
        "Explain a ResNet's depth: why [3, 4, 6, 3] of Bottlenecks is ResNet-50.",
        ("archviz explain resnet50", "archviz explain resnet18 --format markdown"),
    ),
    "compare": Command(
        "Compare models side by side (default: ResNet-18/34/50/101/152).",
        (
            "archviz compare",
            "archviz compare resnet50 wide_resnet50_2 --format markdown --input 8x3x160x160",
        ),
    ),
    "diagram": Command(
        "Draw a model's traced dataflow as a Graphviz diagram, to any depth.",
        (
            "archviz diagram resnet50 -o docs/resnet50.svg",
            "archviz diagram resnet18 -o blocks.dot --level block",
        ),
    ),
    "explore": Command(
        "Write an interactive explorer of a model: one offline HTML page.",
        (
            "archviz explore resnet50 -o resnet50.html",
            "archviz explore torchvision:vit_b_16 -o vit.html",
        ),
    ),
    "verify": Command(
        "Say whether a checkpoint or model loads into a reference, and exactly why not.",
        (
            "archviz verify checkpoint.pth --against torchvision:resnet50",
            "archviz verify lightning.ckpt --against resnet50 -o fixed.safetensors",
        ),
    ),
    "bench": Command(
        "Time models' forward pass on CPU and GPU: latency, throughput, per stage.",
        (
            "archviz bench resnet50 --device cpu --input 1x3x224x224",
            "archviz bench resnet18 resnet50 --input 1x3x224x224 --input 8x3x224x224 -o b.json",
        ),
    ),
    "roofline": Command(
        "Predict each module's time on CPU and GPUs from the trace: FLOPs, bytes, roofline.",
        (
            "archviz roofline resnet50 --hardware cpu,h100 --measure",
            "archviz roofline torchvision:vit_b_16 --dtype bfloat16 --format json --save v.json",
        ),
    ),
    "memory": Command(
        "Memory at a batch size: weights, gradients, optimizer, activations; what fits where.",
        (
            "archviz memory resnet50 --batch 8 --train --optimizer adamw",
            "archviz memory torchvision:vit_b_16 --batch 64 --format json",
        ),
    ),
    "report": Command(
        "Write the comparison report (HTML and Markdown) into a folder.",
        ("archviz report -o reports", "archviz report resnet18 resnet50 --bench bench.json"),
    ),
}


@dataclass(frozen=True)
class OptionDoc:
    """One option as the README's option table shows it."""

    flag: str
    commands: str
    meaning: str


OPTION_DOCS = (
    OptionDoc(
        "--input SHAPE",
        "trace, explain, compare, diagram, explore, report, bench, roofline, memory",
        f"input shape NxCxHxW, or NxT tokens for a model that takes input_ids (default: "
        f"the model's own input, {DEFAULT_INPUT} for classifiers, 1x128 tokens for "
        "transformers); bench takes it more than once",
    ),
    OptionDoc(
        "-o, --output PATH",
        "all but models",
        "the file or folder written; missing folders are created",
    ),
    OptionDoc(
        "--format NAME",
        "trace, explain, compare, verify, bench, report, roofline, memory",
        "table, json, csv, markdown (report: html, markdown); default table",
    ),
    OptionDoc(
        "--level NAME",
        "diagram",
        "ResNet presets: " + "; ".join(f"{k}: {v}" for k, v in LEVELS.items()),
    ),
    OptionDoc(
        "--device NAME",
        ", ".join(TRACING_COMMANDS) + ", bench, roofline, memory",
        TRACE_DEVICES + " (detectors need cpu); bench: a list, cpu,cuda; roofline, memory: meta "
        "or cpu",
    ),
    OptionDoc(
        "--dtype NAME",
        "trace, explain, compare, diagram, explore, report, roofline, memory, bench",
        ", ".join(DTYPES) + " (default: the model's own, e.g. its config's dtype; roofline, "
        "memory: " + ", ".join(HARDWARE_DTYPES) + ", default float32; bench: a list)",
    ),
    OptionDoc(
        "--hardware NAMES",
        "roofline, memory",
        "comma-separated: " + ", ".join(HARDWARE) + " (cpu: this machine, measured)",
    ),
    OptionDoc("--ops NAME", "diagram, explore", "; ".join(f"{k}: {v}" for k, v in OPS.items())),
    OptionDoc(
        "--max-nodes N",
        "diagram",
        f"node budget (default {MAX_NODES}): a bigger view is drawn shallower, with a note",
    ),
    OptionDoc(
        "--timeout SECONDS",
        "trace, explain, compare, diagram, explore, verify, report, bench, roofline, memory",
        "stop after SECONDS, exit 2 naming the module that was running; no limit unless given",
    ),
)


def options_markdown() -> str:
    """The README's option table, generated from OPTION_DOCS."""
    lines = ["| option | commands | meaning |", "|---|---|---|"]
    lines += [f"| `{o.flag}` | {o.commands} | {o.meaning} |" for o in OPTION_DOCS]
    return "\n".join(lines)


# Sizes separated by one x, comma or run of spaces, optionally in () or []: nothing else.
_SHAPE = re.compile(r"\s*[(\[]?\s*(\d+(?:\s*[xX,]\s*\d+|\s+\d+)*)\s*[)\]]?\s*", re.ASCII)


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' or '1,3,224,224' -> (1, 3, 224, 224), within int64's reach.

    Strict: '1x3x8x8x', 'x1x3', '1xx3' and '' are refused, not read as a shorter shape."""
    match = _SHAPE.fullmatch(text)
    opened, closed = text.strip()[:1], text.strip()[-1:]
    brackets = {"(": ")", "[": "]"}
    paired = brackets.get(opened, "") == closed or (
        opened not in brackets and closed not in brackets.values()
    )
    parts = re.split(r"[xX,\s]+", match.group(1)) if match and paired else []
    if not parts or not all(int(p) > 0 for p in parts):
        raise ArchvizError(
            f"malformed input shape {_short(text)}; write positive integers like 1x3x224x224"
        )
    shape = tuple(int(p) for p in parts)
    if max(shape) > MAX_DIM or math.prod(shape) > MAX_ELEMENTS:
        raise ArchvizError(
            f"input shape {_short(text)} is too large: each size at most {MAX_DIM:,} and "
            f"at most 2^62 elements in all; an image is e.g. 1x3x224x224"
        )
    return shape


def format_for(fmt: str | None, output: Path | None, command: str) -> str:
    """The explicit --format, else the one `-o FILE`'s suffix names, else table."""
    if fmt is not None:
        return fmt
    if output is not None and output.suffix.lower() in SUFFIX_FORMATS:
        chosen = SUFFIX_FORMATS[output.suffix.lower()]
        if chosen in FORMATS[command]:
            return chosen
    return TABLE


def bench_inputs(
    inputs: tuple[str, ...], batches: str | None, image_size: str | None
) -> list[tuple[int, ...]]:
    """--input shapes; the old --batch/--image-size spellings become shapes too."""
    if inputs and (batches or image_size):
        raise ArchvizError("give --input shapes, or the old --batch/--image-size, not both")
    if inputs:
        return [parse_shape(text) for text in inputs]
    sizes = parse_ints(batches or "1,32", "batch sizes")
    hw = parse_ints(image_size or "224", "image size", r"[x,\s]+")
    if len(hw) > 2:
        raise ArchvizError(f"image size is H or HxW, got {image_size!r}")
    return [(n, 3, hw[0], hw[-1]) for n in sizes]


def parse_ints(text: str, what: str, separators: str = r"[,\s]+") -> tuple[int, ...]:
    parts = [p for p in re.split(separators, text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ArchvizError(f"malformed {what} {text!r}; write positive integers like 1,32")
    return tuple(int(p) for p in parts)


def format_list(text: str, allowed: Sequence[str]) -> list[str]:
    chosen = [FORMAT_ALIASES.get(f.strip(), f.strip()) for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in allowed]
    if unknown or not chosen:
        raise ArchvizError(
            f"unknown report format {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(allowed)} (comma-separated)"
        )
    return chosen


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
