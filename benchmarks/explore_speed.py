"""How fast the explorer page opens and expands in headless Chromium, beside its size.

The bars (issue 15), on this 2-core machine: resnet152's first view under 1 s (from
navigation start to the first drawn graph, which includes parsing the inlined ELK engine)
and "expand all" under 3 s; vit_b_16 and densenet121 are reported too. The peer, measured
in the same run, is Graphviz's `dot` drawing archviz's static layer-level diagram of the
same model (`archviz diagram --level layer`): a full layout of every layer, as "expand
all" is. The page must also stay under 3 MB. Exits 1 if a bar fails.

    PYTHONPATH=. .venv/bin/python benchmarks/explore_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import archviz
from archviz.models import resolve_model
from archviz.render.diagram import diagram
from tests.fixtures.chromium import CHROMIUM_ARGS

MODELS = ("resnet152", "torchvision:vit_b_16", "torchvision:densenet121")
BARS = {"resnet152": (1.0, 3.0)}  # first view, expand all (seconds)
MAX_BYTES = 3_000_000
EXPAND_ALL = """async () => {
  const t0 = performance.now();
  window.archviz.expandAll();
  await window.archviz.whenReady();
  return [performance.now() - t0, document.querySelectorAll("g.box.leaf").length];
}"""


def measure(browser, path: Path) -> tuple[float, float, int]:
    """One fresh page: seconds to the first view, seconds to expand all, boxes laid out."""
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    try:
        page.goto(path.resolve().as_uri())
        page.wait_for_function("window.archviz && window.archviz.firstViewMs > 0", timeout=60_000)
        first = page.evaluate("window.archviz.firstViewMs") / 1000
        expand_ms, shown = page.evaluate(EXPAND_ALL)
        return first, expand_ms / 1000, shown
    finally:
        page.close()


def dot_seconds(trace: archviz.Trace) -> float:
    start = time.perf_counter()
    diagram(trace, "layer").svg()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Debian's chromium is not installed (apt-get install chromium)")
        return 2
    from playwright.sync_api import sync_playwright

    ok = True
    header = f"{'model':<26}{'page':>9}{'boxes':>7}{'first view':>12}{'expand all':>12}"
    print(header + f"{'dot (layer)':>13}{'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for name in args.models:
                trace = archviz.trace(resolve_model(name), (1, 3, 224, 224), name=name)
                path = archviz.explore(trace).save(Path(tmp) / "page.html")
                size = path.stat().st_size
                runs = [measure(browser, path) for _ in range(args.repeats)]
                first = statistics.median(r[0] for r in runs)
                expand = statistics.median(r[1] for r in runs)
                peer = statistics.median(dot_seconds(trace) for _ in range(args.repeats))
                bar_first, bar_expand = BARS.get(name, (None, None))
                passed = size < MAX_BYTES and (
                    bar_first is None or (first < bar_first and expand < (bar_expand or 0))
                )
                ok &= passed
                print(
                    f"{name:<26}{size / 1e6:>7.2f}MB{runs[0][2]:>7}{first:>11.2f}s"
                    f"{expand:>11.2f}s{peer:>12.2f}s{expand / peer:>6.1f}x"
                    f"  runs {_fmt(r[0] for r in runs)} / {_fmt(r[1] for r in runs)}"
                    + ("" if passed else "  FAIL")
                )
        finally:
            browser.close()
    print(f"bars: resnet152 first view < 1 s, expand all < 3 s; every page < {MAX_BYTES / 1e6} MB")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average during the run: {load} on {os.cpu_count()} CPUs")
    return 0 if ok else 1


def _fmt(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
