"""Trace torchvision's whole zoo (every name in `torchvision.models.list_models()`) on meta
and on the CPU, and check each figure against an independent source.

For each model, built by name through archviz's registry (offline, random weights), at its
family's default input (`archviz.models.INPUT_FORMS`):

- meta: archviz.trace on the meta device; FLOPs against PyTorch's FlopCounterMode on a
  meta forward of the same model, MACs against torchvision's published `_ops` where the
  input is the size those were measured at (the weights' crop size; video: 16 frames).
- cpu: archviz.trace on a real CPU forward; FLOPs against FlopCounterMode on a second real
  CPU forward of the same model and input (MHA fast path off, attention on the math path,
  whose matmuls every torch's counter knows; archviz counts the fused kernel it really
  runs); FLOPs, elementwise FLOPs, parameters and uncounted ops against the meta trace,
  where that ran (they must agree exactly: the device must not change a count). The
  summary lists every model whose meta and cpu figures differ.

Models that cannot run on meta (data-dependent ops) must fail with a one-line error that
names the op and says to use --device cpu; that is checked too.

    PYTHONPATH=. python benchmarks/zoo_sweep.py [--only NAME ...] [--skip-cpu] [--small]
        [--json OUT]

Exit code 1 if any model fails a check.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import warnings
from functools import partial
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archviz
from archviz.models import input_form
from archviz.tracing.setup import make_inputs
from archviz.tracing.trace import no_fused_attention


def _published(name: str, size: tuple[int, ...]) -> float | None:
    """torchvision's `_ops` (GMACs, 3 decimals) if measured at `size`, else None."""
    from torchvision import models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    crop = getattr(weights.transforms, "keywords", {}).get("crop_size")
    if crop is None:
        return None
    side = crop[0] if isinstance(crop, (tuple, list)) else crop
    return weights.meta.get("_ops") if size[-2:] == (side, side) else None


def _flop_counter(model: torch.nn.Module, args: tuple) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), no_fused_attention(), sdpa_kernel(SDPBackend.MATH), counter:
        model.eval()(*args)
    return counter.get_total_flops()


def _attempt(run) -> tuple[Any, str | None]:
    try:
        return run(), None
    except Exception as exc:  # a sweep reports every failure and goes on
        text = str(exc).strip().splitlines()
        return None, f"{type(exc).__name__}: {text[0] if text else ''}"


def _summary(result) -> dict[str, Any]:
    t = result.totals
    return {
        "flops": t.flops,
        "macs": t.macs,
        "elementwise": t.elementwise_flops,
        "params": t.params,
        "uncounted": dict(result.uncounted_ops),
    }


def sweep_one(name: str, cpu: bool, small: bool) -> dict[str, Any]:
    spec = "torchvision:" + name
    row: dict[str, Any] = {"name": name, "problems": []}
    with torch.device("meta"):
        model = archviz.get_model(spec)
    form = input_form(model)
    row["family"], row["input"] = form.family, list(form.default)
    start = time.perf_counter()
    meta, row["meta_error"] = _attempt(partial(archviz.trace, model, name=spec))
    row["meta_s"] = round(time.perf_counter() - start, 2)
    if meta is not None:
        row["meta"] = _summary(meta)
        args, _ = make_inputs(model, None, None, torch.device("meta"), torch.float32)
        reference = _flop_counter(model.to("meta"), args)  # RegNet is built on cpu
        if meta.totals.flops != reference:
            row["problems"].append(f"meta FLOPs {meta.totals.flops} != FlopCounterMode {reference}")
        published = _published(name, form.default)
        row["published_gmacs"] = published
        if published is not None and round(meta.totals.macs / 1e9, 3) != published:
            row["problems"].append(f"MACs {meta.totals.macs / 1e9:.3f}G != published {published}")
    elif "--device cpu" not in row["meta_error"]:
        row["problems"].append("meta failed without the --device cpu hint")
    del model
    if cpu:
        _sweep_cpu(spec, row, small)
        if small and "cpu" in row and "meta" in row:
            _compare_small_on_meta(spec, row)
    return row


# --small: the CPU phase at a reduced size (the meta phase keeps the defaults). Counts are
# exact at any size, so this checks the same things in a fraction of the time on a CPU.
_SMALL = {
    "image": (1, 3, 64, 64),
    "segmentation": (1, 3, 64, 64),
    "optical flow": (1, 3, 128, 128),
    "video": (1, 3, 8, 64, 64),
    "detection": (1, 3, 128, 128),
}


def _small(name: str, family: str) -> tuple[tuple[int, ...], dict[str, Any]]:
    """A reduced CPU input (no smaller than the weights' `min_size`) and builder kwargs."""
    from torchvision import models as tvm

    size = _SMALL[family]
    low = tvm.get_model_weights(name).DEFAULT.meta.get("min_size", (1, 1))[0]
    if family in ("image", "video") and low > size[-1]:
        size = (*size[:-2], min(low, 224), min(low, 224))
    if family == "video" and low > 1:
        size = (1, 3, 16, *size[-2:])  # MViT and S3D take 16 frames
    kwargs = (
        {"min_size": 128, "max_size": 128} if family == "detection" and "ssd" not in name else {}
    )
    return size, kwargs


def _sweep_cpu(spec: str, row: dict[str, Any], small: bool) -> None:
    name = spec.removeprefix("torchvision:")
    kwargs: dict[str, Any] = {}
    size: tuple[int, ...] | None = None
    if small:
        size, kwargs = _small(name, row["family"])
        row["cpu_input"] = list(size)
    torch.manual_seed(0)
    model = archviz.get_model(spec, **kwargs).eval()
    args, _ = make_inputs(model, size, None, torch.device("cpu"), torch.float32)
    start = time.perf_counter()
    on_cpu, row["cpu_error"] = _attempt(partial(archviz.trace, model, inputs=args, device="cpu"))
    row["cpu_s"] = round(time.perf_counter() - start, 2)
    if on_cpu is None:
        row["problems"].append(f"cpu: {row['cpu_error']}")
        return
    row["cpu"] = _summary(on_cpu)
    reference = _flop_counter(model, args)
    row["cpu_flop_counter"] = reference
    if on_cpu.totals.flops != reference:
        row["problems"].append(f"cpu FLOPs {on_cpu.totals.flops} != FlopCounterMode {reference}")
    if "meta" in row and not small:
        _meta_vs_cpu(row, row["meta"])


_AGREE = ("flops", "elementwise", "params", "uncounted")  # the device must not change them


def _meta_vs_cpu(row: dict[str, Any], meta: dict[str, Any]) -> None:
    row["meta_vs_cpu"] = [key for key in _AGREE if meta[key] != row["cpu"][key]]
    for key in row["meta_vs_cpu"]:
        row["problems"].append(f"{key}: meta {meta[key]} != cpu {row['cpu'][key]}")


def _compare_small_on_meta(spec: str, row: dict[str, Any]) -> None:
    """With --small, the meta/cpu agreement is checked at the CPU phase's size."""
    name = spec.removeprefix("torchvision:")
    size, kwargs = _small(name, row["family"])
    with torch.device("meta"):
        model = archviz.get_model(spec, **kwargs)
    on_meta, error = _attempt(partial(archviz.trace, model, size))
    if on_meta is None:
        row["problems"].append(f"meta at the small size: {error}")
        return
    _meta_vs_cpu(row, _summary(on_meta))


def main() -> int:
    from torchvision import models as tvm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="model names (default: the whole zoo)")
    parser.add_argument("--skip-cpu", action="store_true", help="meta traces only")
    parser.add_argument("--json", help="write every row to this file")
    parser.add_argument("--small", action="store_true", help="CPU phase at a reduced size")
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    names = options.only or tvm.list_models()
    rows = []
    for name in names:
        row = sweep_one(name, cpu=not options.skip_cpu, small=options.small)
        rows.append(row)
        gc.collect()
        status = "ok" if not row["problems"] else "; ".join(row["problems"])
        meta = "meta ok" if row.get("meta") else "meta FAIL"
        cpu = "" if options.skip_cpu else ("cpu ok" if row.get("cpu") else "cpu FAIL")
        print(f"{name:40s} {row['family']:13s} {meta:9s} {cpu:8s} {status}", flush=True)
        if options.json:
            with open(options.json, "w") as out:
                json.dump(rows, out, indent=1)
    _report(rows, cpu=not options.skip_cpu)
    return 1 if any(r["problems"] for r in rows) else 0


def _report(rows: list[dict[str, Any]], cpu: bool) -> None:
    on_meta = [r for r in rows if r.get("meta")]
    print(f"\n{len(rows)} models; {len(on_meta)} trace on meta", end="")
    if cpu:
        print(f", {sum(1 for r in rows if r.get('cpu'))} on cpu", end="")
    print(f"; {sum(1 for r in rows if not r['problems'])} pass every check")
    published = [r for r in on_meta if r.get("published_gmacs") is not None]
    print(f"MACs equal torchvision's published figure: {len(published)} compared", end="")
    print(
        f", {sum(1 for r in published if not any('published' in p for p in r['problems']))} equal"
    )
    if cpu:
        compared = [r for r in rows if "meta_vs_cpu" in r]
        differ = [r for r in compared if r["meta_vs_cpu"]]
        print(f"meta vs cpu: {len(compared)} models traced on both, {len(differ)} differ")
        for row in differ:
            print(f"  meta != cpu: {row['name']}: {', '.join(row['meta_vs_cpu'])}")
    for row in rows:
        if row.get("meta_error"):
            print(f"  meta: {row['name']}: {row['meta_error']}")
    uncounted: dict[str, set[str]] = {}
    for row in rows:
        for phase in ("meta", "cpu"):
            for op in row.get(phase, {}).get("uncounted", {}):
                uncounted.setdefault(op, set()).add(row["name"])
    for op, models in sorted(uncounted.items()):
        print(f"  uncounted {op}: {', '.join(sorted(models))}")


if __name__ == "__main__":
    sys.exit(main())
