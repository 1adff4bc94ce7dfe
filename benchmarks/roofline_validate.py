"""Validate the hardware view on this machine: roofline predictions and activation memory.

Three checks, each printed as a Markdown table (the README's validation section):

1. predicted vs measured per stage on this CPU (resnet50, vit_b_16, a GPT-2-sized
   transformer: transformers' GPT2Config(), 128 tokens). The roofs are this CPU's measured
   ceilings (a GEMM and a copy), so each prediction should be a lower bound: predicted <=
   measured, and "of roof" = predicted / measured <= 100%;
2. activations saved for backward, measured by the same saved_tensors_hooks on meta and
   on a real CPU run: they must be equal;
3. activations vs the growth of the process's peak resident set during one CPU training
   step (forward, then backward + AdamW step), each model in a fresh process.

    PYTHONPATH=. python benchmarks/roofline_validate.py [--models resnet50,vit_b_16,gpt2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

INPUTS = {"resnet50": (8, 3, 224, 224), "vit_b_16": (2, 3, 224, 224), "gpt2": (1, 128)}
ROOF_INPUTS = {"resnet50": (1, 3, 224, 224), "vit_b_16": (1, 3, 224, 224), "gpt2": (1, 128)}


def build(name: str) -> nn.Module:
    if name == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        return GPT2LMHeadModel(GPT2Config())  # 124M parameters, 12 layers, 768 wide
    from archviz.models import resolve_model

    return resolve_model(name if name == "resnet50" else f"torchvision:{name}")


def example(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if name == "gpt2":
        return torch.randint(0, 50257, shape)
    return torch.randn(shape)


def roofline_rows(name: str) -> list[str]:
    from archviz.analysis.predict import roofline_of

    shape = ROOF_INPUTS[name]
    # ceilings measured now, under the load the timing will see (this VM is shared)
    r = roofline_of(build(name), inputs=example(name, shape), hardware_names="cpu",
                    measure=True, min_run_time=3.0, recalibrate=True, name=name)  # fmt: skip
    rows = []
    blocks = [p for p in r.parts if p.name not in ("stem", "head")]
    shown = r.parts if len(blocks) <= 4 else [r.parts[0], *_merge(blocks), r.parts[-1]]
    for part in [*shown, r.total]:
        predicted, measured = part.seconds["cpu"], part.measured["cpu"]
        bound = "yes" if predicted <= measured else "NO"
        rows.append(f"| {name} | {part.name} | {predicted * 1e3:.1f} | {measured * 1e3:.1f} | "
                    f"{predicted / measured:.0%} | {bound} |")  # fmt: skip
    hw = r.hardware[0]
    print(f"{name}: cpu ceilings {hw.peak_flops / 1e9:.1f} GFLOP/s, {hw.bandwidth / 1e9:.2f} GB/s",
          file=sys.stderr)  # fmt: skip
    return rows


def _merge(blocks):
    """The repeated blocks as one row: their sums (the table stays short)."""
    from archviz.analysis.roofline import Rollup

    name = f"{len(blocks)} blocks ({blocks[0].name} ..)"
    seconds = {"cpu": sum(b.seconds["cpu"] for b in blocks)}
    measured = {"cpu": sum(b.measured["cpu"] for b in blocks)}
    flops, nbytes = sum(b.flops for b in blocks), sum(b.bytes for b in blocks)
    return [Rollup(name, flops, nbytes, seconds, measured)]


def saved_rows(name: str) -> list[str]:
    from archviz.tracing.saved import saved_tensors

    model, x = build(name), example(name, INPUTS[name])
    meta = saved_tensors(model, inputs=x)
    cpu = saved_tensors(model, inputs=x, device="cpu")
    same = "yes" if (meta.bytes, meta.storages) == (cpu.bytes, cpu.storages) else "NO"
    return [f"| {name} | {tuple(x.shape)} | {meta.bytes:,} | {cpu.bytes:,} | {meta.storages} | "
            f"{same} |"]  # fmt: skip


def rss_rows(name: str) -> list[str]:
    """Run one training step in a fresh process; compare with the measured activations."""
    from archviz.tracing.saved import saved_tensors

    model, x = build(name), example(name, INPUTS[name])
    saved = saved_tensors(model, inputs=x).bytes
    params = sum(p.numel() for p in model.parameters()) * 4
    out = subprocess.run([sys.executable, __file__, "--step", name], capture_output=True,
                         text=True, check=True)  # fmt: skip
    step = json.loads(out.stdout.strip().splitlines()[-1])
    predicted_step = saved + params * 3  # + gradients + AdamW's two states
    return [f"| {name} | {tuple(x.shape)} | {saved / 2**20:.0f} | {step['forward'] / 2**20:.0f} | "
            f"{step['forward'] / saved - 1:+.0%} | {predicted_step / 2**20:.0f} | "
            f"{step['step'] / 2**20:.0f} | {step['step'] / predicted_step - 1:+.0%} | "
            f"{step['forward2'] / 2**20:.0f} | {step['forward2'] / saved - 1:+.0%} |"]  # fmt: skip


def one_step(name: str) -> dict[str, int]:
    """Peak RSS growth above the ready state: the first step's forward and whole step, then
    a second forward (one-time costs, such as oneDNN's primitive caches, paid already)."""
    from archviz.benchmark.environment import _peak_rss, _reset_peak_rss, release_free_heap

    torch.manual_seed(0)
    model, x = build(name).train(), example(name, INPUTS[name])
    optimizer = torch.optim.AdamW(model.parameters())
    found = {}
    for step in (1, 2):
        optimizer.zero_grad(set_to_none=True)
        release_free_heap()
        _reset_peak_rss()
        base = _peak_rss()
        out = model(x)
        logits = out.logits if hasattr(out, "logits") else out
        found["forward" if step == 1 else "forward2"] = _peak_rss() - base
        logits.float().sum().backward()
        optimizer.step()
        if step == 1:
            found["step"] = _peak_rss() - base
        del out, logits
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet50,vit_b_16,gpt2")
    parser.add_argument("--checks", default="roofline,saved,rss", help="which tables to print")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # internal: one training step
    args = parser.parse_args()
    if args.step:
        print(json.dumps(one_step(args.step)))
        return
    names, checks = args.models.split(","), args.checks.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    if "roofline" in checks:
        _roofline_table(names)
    if "saved" in checks:
        _saved_table(names)
    if "rss" in checks:
        _rss_table(names)


def _roofline_table(names: list[str]) -> None:
    print("| model | stage | predicted ms | measured ms | of roof | lower bound |")
    print("|---|---|---:|---:|---:|---|")
    for name in names:
        print("\n".join(roofline_rows(name)), flush=True)


def _saved_table(names: list[str]) -> None:
    print("\n| model | input | saved on meta (B) | saved on CPU (B) | storages | equal |")
    print("|---|---|---:|---:|---:|---|")
    for name in names:
        print("\n".join(saved_rows(name)), flush=True)


def _rss_table(names: list[str]) -> None:
    print("\n| model | input | activations MiB | forward RSS growth MiB | diff | "
          "+ grads + AdamW MiB | step RSS growth MiB | diff | 2nd forward RSS growth MiB | "
          "diff |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        print("\n".join(rss_rows(name)), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
