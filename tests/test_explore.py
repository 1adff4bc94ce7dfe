"""The interactive explorer: its page data, escaping, the CLI, and the page in headless Chromium."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import archviz
from archviz.analysis import graph
from archviz.analysis.fold import fold_ops
from archviz.cli.main import cli
from archviz.records import Trace
from archviz.render.explore import (
    ELK_DIR,
    ELK_ELEMENT_ID,
    ELK_VERSION,
    elk_source,
    explore,
    page_data,
    script_json,
)
from tests.fixtures.chromium import CHROMIUM_ARGS
from tests.fixtures.synthetic import synthetic_trace

ARTIFACTS = Path(__file__).parent / "artifacts"
HOSTILE = "</script><script>alert(1)</script>"


@cache
def traced(name: str) -> Trace:
    return archviz.trace(archviz.get_model(name), (1, 3, 224, 224), name=name)


class Hostile(nn.Module):
    """A module whose name would close the page's <script> and run code if pasted raw."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.add_module(HOSTILE, nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, HOSTILE)(self.conv(x)) + 1


def hostile_trace() -> Trace:
    return archviz.trace(Hostile(), (1, 3, 8, 8), name=HOSTILE)


# ---- page data and escaping ----


def test_script_json_is_inert_inside_a_script_element() -> None:
    data = {"name": HOSTILE, "comment": "<!-- & \u2028\u2029"}
    text = script_json(data)
    for unsafe in ("<", ">", "&", "\u2028", "\u2029"):
        assert unsafe not in text
    assert json.loads(text) == data


def test_hostile_names_never_reach_the_page_as_markup() -> None:
    page = explore(hostile_trace()).html
    assert HOSTILE not in page
    assert page.count("</script>") == 3  # data, ELK, the explorer's own script
    assert "&lt;/script&gt;" in page  # the <title>, escaped by jinja2
    data = page.split('id="archviz-data">', 1)[1].split("</script>", 1)[0]
    assert HOSTILE in {b["id"] for b in json.loads(data)["boxes"]}  # still there, as data


def test_vendored_engine_is_inlined_and_nothing_is_fetched() -> None:
    page = explore(hostile_trace()).html
    assert page.count(elk_source()) == 1
    # no external scripts, styles, images or fonts: nothing for a browser to fetch
    assert not re.search(r"""<(script|link|img|iframe)[^>]*(src|href)=""", page)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_vendored_engine_is_the_pinned_release() -> None:
    readme = (ELK_DIR.parent / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((ELK_DIR / "elk.bundled.js").read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in readme and f"| {ELK_VERSION} |" in readme
    assert (
        (ELK_DIR / "LICENSE.md")
        .read_text(encoding="utf-8")
        .startswith("# Eclipse Public License - v 2.0")
    )


def test_boxes_follow_the_traced_scopes() -> None:
    t = traced("resnet50")
    data = page_data(t)
    boxes = data["boxes"]
    top = [b["id"] for b in boxes if b["p"] == -1 and b["k"] in ("module", "group")]
    assert sorted(top) == sorted(r.name for r in t.records if r.depth == 1)
    for node in t.nodes:
        box = next(b for b in boxes if b["id"] == node.id)
        parent = boxes[box["p"]]["id"] if box["p"] >= 0 else None
        assert parent == (node.scope[-1] if node.scope else None)
    layer3 = next(i for i, b in enumerate(boxes) if b["id"] == "layer3")
    blocks = [b["id"] for b in boxes if b["p"] == layer3]
    assert blocks == [f"layer3.{i}" for i in range(6)]  # 6 blocks, none folded below FOLD_MIN
    assert len(data["edges"]) == len(t.edges)


def test_group_figures_are_the_records_and_sum_the_leaves() -> None:
    t = traced("resnet50")
    boxes = page_data(t)["boxes"]
    by_id = {b["id"]: b for b in boxes}
    record = t.get("layer2")
    assert by_id["layer2"]["macs"] == record.macs_total
    assert by_id["layer2"]["params"] == record.params_total
    leaves = [n for n in t.nodes if n.kind == "module"]
    # activation bytes of every top-level box add up to the trace's total
    assert sum(b.get("act", 0) for b in boxes if b["p"] == -1) == t.totals.activation_bytes
    assert sum(by_id[n.id]["act"] for n in leaves) == t.totals.activation_bytes


def test_shares_stay_within_the_whole_for_attention() -> None:
    from archviz.models import resolve_model

    t = archviz.trace(resolve_model("torchvision:vit_b_16"), (1, 3, 224, 224), name="vit")
    data = page_data(t)
    top = [b for b in data["boxes"] if b["p"] == -1]
    # nn.MultiheadAttention is a graph node (its out_proj never runs), so its output counts
    assert sum(b.get("act", 0) for b in top) == data["totals"]["act"]
    assert sum(b.get("macs", 0) for b in top) == t.totals.macs == data["totals"]["macs"]
    runs = [b for b in data["boxes"] if b["k"] == "run"]
    assert [r["n"] for r in runs] == [12]  # the 12 identical encoder layers fold as "x 12"


def test_long_runs_of_identical_blocks_fold() -> None:
    t = traced("resnet152")
    boxes = page_data(t)["boxes"]
    runs = [b for b in boxes if b["k"] == "run"]
    # torchvision's resnet152 is [3, 8, 36, 3] Bottlenecks; the first block of a stage
    # differs (projection shortcut), so layer2 folds 7 blocks and layer3 folds 35.
    assert sorted(r["n"] for r in runs) == [7, 35]
    layer3_run = next(r for r in runs if r["n"] == 35)
    assert layer3_run["id"] == "layer3.1..layer3.35"
    members = [f"layer3.{i}" for i in range(1, 36)]
    assert layer3_run["macs"] == sum(t.get(m).macs_total for m in members)
    run_index = boxes.index(layer3_run)
    assert [b["id"] for b in boxes if b["p"] == run_index] == members


def test_trace_without_graph_is_a_clear_error() -> None:
    from dataclasses import replace

    with pytest.raises(archviz.ArchvizError, match="no dataflow graph"):
        explore(replace(hostile_trace(), nodes=(), edges=()))


def test_notebook_repr_is_an_isolated_iframe(tmp_path: Path) -> None:
    explorer = archviz.explore(hostile_trace())
    html = explorer._repr_html_()
    assert html.startswith("<iframe srcdoc=") and "<script" not in html
    saved = explorer.save(tmp_path / "x.html")
    assert saved.read_text(encoding="utf-8") == explorer.html


def test_srcdoc_gives_back_the_page_exactly() -> None:
    """The single-quoted srcdoc: a quote in a model's name cannot end the attribute."""
    from html.parser import HTMLParser

    quoted = "x' onload='alert(1)\" onerror=\"alert(2)"
    explorer = explore(archviz.trace(Hostile(), (1, 3, 8, 8), name=quoted), host_engine=True)
    found: list[list[tuple[str, str | None]]] = []

    class Frames(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "iframe":
                found.append(attrs)

    Frames().feed(explorer.iframe(lazy=True))
    assert len(found) == 1
    attrs = dict(found[0])
    assert sorted(attrs) == ["loading", "srcdoc", "style", "title"]
    assert attrs["srcdoc"] == explorer.html and attrs["title"] == f"{quoted}: architecture explorer"


def test_cli_explore(tmp_path: Path) -> None:
    out = tmp_path / "r18.html"
    result = CliRunner().invoke(cli, ["explore", "resnet18", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "archviz-data" in out.read_text(encoding="utf-8")
    bad = CliRunner().invoke(cli, ["explore", "no_such_model", "-o", str(out)])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    (tmp_path / "file").write_text("not a folder")
    unwritable = CliRunner().invoke(
        cli, ["explore", "resnet18", "-o", str(tmp_path / "file/x.html")]
    )
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output


# ---- the page in a real browser ----


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Page:
    """One explorer page in Chromium, recording console errors, dialogs and requests."""

    def __init__(self, browser: Any, path: Path, width: int = 1280, wait: bool = True) -> None:
        self.url = path.resolve().as_uri()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": 860})
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._request)
        self.page.on("dialog", self._dialog)
        self.page.goto(self.url)
        if wait:
            self.ready()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, request: Any) -> None:
        if request.url != self.url:
            self.requests.append(request.url)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ready(self) -> None:
        self.page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)

    def top(self) -> None:
        """Back to the top level only (the first view opens some levels)."""
        self.page.click("#collapse-all")
        self.page.wait_for_timeout(20)
        self.ready()

    def click(self, box_id: str) -> None:
        self.page.locator(f'g.box[data-id="{box_id}"]').first.click()
        self.page.wait_for_timeout(20)
        self.ready()

    def shown(self, cls: str = "leaf") -> list[str]:
        return self.page.eval_on_selector_all(f"g.box.{cls}", "gs => gs.map(g => g.dataset.id)")

    def edges(self) -> set[tuple[str, str]]:
        pairs = self.page.eval_on_selector_all(
            "path.edge", "ps => ps.map(p => [p.dataset.src, p.dataset.dst])"
        )
        return {(s, d) for s, d in pairs}

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))

    def close(self) -> None:
        self.page.close()
        assert self.errors == [] and self.dialogs == []
        assert self.requests == []


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explore")
    for name in ("resnet50", "resnet152"):
        explore(traced(name)).save(out / f"{name}.html")
    explore(hostile_trace()).save(out / "hostile.html")
    return out


def test_first_view_opens_the_stages_offline(browser: Any, pages: Path) -> None:
    t = traced("resnet50")
    for label, width in (("desktop", 1280), ("narrow", 390)):
        page = Page(browser, pages / "resnet50.html", width)
        # the stages open on their blocks, and the first block on its layers: 20 to 80 boxes
        frames = page.shown("frame")
        assert {"layer1", "layer2", "layer3", "layer4"} <= set(frames)
        assert 20 <= len(page.shown()) <= 80
        assert {f"layer3.{i}" for i in range(6)} <= set(page.shown())
        labels = page.page.eval_on_selector_all("text.elabel", "ts => ts.map(t => t.textContent)")
        assert "1x256x56x56" in labels  # layer1's output shape on its edge
        page.shot(f"explore-resnet50-{label}.png")
        page.top()
        shown = page.shown()
        assert set(shown) >= {r.name for r in t.records if r.depth == 1}
        assert not any("." in s for s in shown)  # nothing below the top level
        page.close()


def tiny_llama() -> Trace:
    """Eight identical decoder layers, on meta: what a Llama looks like, in kilobytes."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=64,
    )  # fmt: skip
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    ids = torch.zeros(1, 16, dtype=torch.long, device="meta")
    return archviz.trace(model, inputs={"input_ids": ids}, name="tiny-llama")


def test_first_view_shows_structure_within_20_to_80_boxes(
    browser: Any, pages: Path, tmp_path: Path
) -> None:
    page = Page(browser, pages / "resnet152.html")
    assert 20 <= len(page.shown()) <= 80
    assert {"layer1", "layer2", "layer3", "layer4", "layer1.0"} <= set(page.shown("frame"))
    page.close()
    explore(tiny_llama()).save(tmp_path / "llama.html")
    page = Page(browser, tmp_path / "llama.html")
    shown, frames = page.shown(), page.shown("frame")
    assert 20 <= len(shown) <= 80
    # one decoder layer's insides, marked "x 8"; the rotary embedding's ops are one box
    assert "model.layers.0..model.layers.7" in frames and "model.layers.0" in frames
    assert "model.layers.0.self_attn" in frames and "model.layers.0.mlp" in frames
    assert not any(s.startswith("model.layers.1") for s in shown + frames)
    texts = page.page.eval_on_selector_all("g.box text", "ts => ts.map(t => t.textContent)")
    assert "rotary_emb · 12 ops" in texts and not any(t in texts for t in ("view", "transpose"))
    assert any("LlamaDecoderLayer × 8" in t for t in texts)
    page.shot("explore-tiny-llama.png")
    page.page.check("#all-ops")  # the toggle: every op a box, the rotary run opened
    page.ready()
    texts = page.page.eval_on_selector_all("g.box text", "ts => ts.map(t => t.textContent)")
    assert {"view", "transpose", "neg", "cat"} <= set(texts)
    assert "rotary_emb · 12 ops" not in texts
    page.close()
    assert '"ops":"all"' in explore(tiny_llama(), ops="all").html  # `--ops all` starts so


def test_a_big_graph_draws_what_is_in_view(browser: Any, tmp_path: Path) -> None:
    """4,000 modules in 400 distinct blocks: the first view stays small, and "expand all"
    lays out everything but draws what is in view, more as the page scrolls."""
    t = synthetic_trace(stages=20, blocks=20, leaves=10)
    explore(t).save(tmp_path / "big.html")
    page = Page(browser, tmp_path / "big.html")
    assert 20 <= len(page.shown()) <= 80
    page.page.click("#expand-all")
    page.page.wait_for_timeout(20)
    page.ready()
    drawn = page.shown()
    assert 0 < len(drawn) < len(t.nodes) and "output" not in drawn
    assert page.page.evaluate("window.archviz.unseen()") > 0
    page.page.evaluate("window.archviz.openPath(window.archviz.find('output'))")  # scrolls there
    page.page.wait_for_function("document.querySelector('g.box[data-id=\"output\"]') !== null")
    page.close()


def test_clicking_layer3_shows_its_blocks_and_shortcuts(browser: Any, pages: Path) -> None:
    t = traced("resnet50")
    page = Page(browser, pages / "resnet50.html")
    page.top()
    page.click("layer3")
    blocks = [f"layer3.{i}" for i in range(6)]
    assert [b for b in page.shown() if b.startswith("layer3")] == blocks
    chain = set(itertools.pairwise(blocks))
    assert chain <= page.edges()
    # Open one identity block: every tensor entering it from outside is drawn to the node
    # that consumes it, so the shortcut into the residual add is there, from the graph.
    page.click("layer3.1")
    entering = {
        (e.src, e.dst)
        for e in t.edges
        if "layer3.1" in _scope_of(t, e.dst) and "layer3.1" not in _scope_of(t, e.src)
    }
    assert all("layer3.0" in _scope_of(t, src) for src, _ in entering)
    entering = {("layer3.0", dst) for _, dst in entering}  # layer3.0 is closed: it stands in
    adds = {d for _, d in entering if _node(t, d).kind == "op"}
    assert adds, "the residual add of layer3.1 is in the graph"
    assert entering <= page.edges()
    page.shot("explore-resnet50-layer3.png")
    page.close()


def test_search_opens_the_path_and_shows_the_figures(browser: Any, pages: Path) -> None:
    t = traced("resnet50")
    page = Page(browser, pages / "resnet50.html")
    page.page.fill("#query", "layer4.2.conv2")
    page.page.press("#query", "Enter")
    page.page.wait_for_timeout(20)
    page.ready()
    assert "layer4.2.conv2" in page.shown()
    assert page.page.locator("g.box.selected").get_attribute("data-id") == "layer4.2.conv2"
    macs = page.page.locator('#panel dd[data-key="macs"]').inner_text()
    # 3x3 conv, 512 -> 512 channels on 7x7: 7*7 * 512 * 512*9 = 115_605_504 MACs
    assert macs.startswith(f"{t.get('layer4.2.conv2').macs_total:,} ") and "115,605,504" in macs
    page.page.select_option("#overlay", "macs")
    assert page.page.locator("#legend").is_visible()
    page.shot("explore-resnet50-search.png")
    page.close()


def test_keyboard_moves_and_opens(browser: Any, pages: Path) -> None:
    page = Page(browser, pages / "resnet50.html")
    page.top()
    page.click("layer1")  # opens it and selects it
    page.page.keyboard.press("ArrowDown")
    assert page.page.locator("g.box.selected").get_attribute("data-id") == "layer1.0"
    page.page.keyboard.press("Enter")
    page.ready()
    assert "layer1.0.conv1" in page.shown()
    page.page.keyboard.press("ArrowRight")  # into the open block: the first thing that ran
    first = graph.groups(traced("resnet50"))["layer1.0"].children[0]
    assert page.page.locator("g.box.selected").get_attribute("data-id") == first
    page.page.keyboard.press("ArrowLeft")  # back out to it
    assert page.page.locator("g.box.frame.selected").get_attribute("data-id") == "layer1.0"
    page.close()


def test_expand_all_lays_out_every_module(browser: Any, pages: Path) -> None:
    t = traced("resnet152")
    page = Page(browser, pages / "resnet152.html")
    page.top()
    page.click("layer3")
    folded = ["layer3.0", "layer3.1..layer3.35"]
    assert [b for b in page.shown() if b.startswith("layer3")] == folded
    page.click("layer3.1..layer3.35")  # the folded run, "x 35", opens on its first member
    assert [b for b in page.shown() if b.startswith("layer3.")] == ["layer3.0", "layer3.1"]
    page.page.check("#all-runs")  # every repeat
    page.ready()
    assert {f"layer3.{i}" for i in range(36)} <= set(page.shown())
    page.page.click("#expand-all")
    page.page.wait_for_timeout(20)
    page.ready()
    # glue (the flatten before fc) is carried by its edge, not a box
    assert sorted(page.shown()) == sorted(n.id for n in fold_ops(t).trace.nodes)
    assert ("avgpool", "fc") in page.edges()
    page.page.check("#all-ops")
    page.ready()
    assert sorted(page.shown()) == sorted(n.id for n in t.nodes)
    frames = set(page.shown("frame"))
    assert {r.name for r in t.records if not r.is_leaf and r.depth > 0} <= frames
    page.shot("explore-resnet152-all.png")
    page.page.click("#collapse-all")
    page.ready()
    assert not any("." in s for s in page.shown())
    page.close()


def test_hostile_name_stays_text_in_the_browser(browser: Any, pages: Path) -> None:
    page = Page(browser, pages / "hostile.html")
    page.top()
    assert page.page.locator("#model").inner_text() == HOSTILE
    assert HOSTILE in page.shown("leaf")
    texts = page.page.eval_on_selector_all("g.box text", "ts => ts.map(t => t.textContent)")
    assert HOSTILE in texts
    page.click(HOSTILE)
    assert f"{HOSTILE}.0" in page.shown()
    page.close()  # asserts no dialog (alert) opened and no console error


def _node(t: Trace, node_id: str):
    return next(n for n in t.nodes if n.id == node_id)


def _scope_of(t: Trace, node_id: str) -> tuple[str, ...]:
    return _node(t, node_id).scope


def test_report_carries_the_engine_once_and_its_explorers_work(
    browser: Any, tmp_path: Path
) -> None:
    from archviz import compare
    from archviz.models.registry import STANDARD
    from archviz.render.report import write_report

    write_report(compare(list(STANDARD), (1, 3, 224, 224)), tmp_path, formats=("html",))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    size = len(html.encode("utf-8"))
    print(f"report.html for {', '.join(STANDARD)}: {size:,} bytes ({size / 2**20:.2f} MiB)")
    assert html.count(elk_source()) == 1  # was one copy per explorer: 10 MB for these five
    assert size < 4 * 2**20
    assert html.count("<iframe srcdoc='") == len(STANDARD)
    # the page's one script element is the engine's inert text; the explorers' stay framed
    assert html.count("<script") == 1
    assert f'<script type="text/plain" id="{ELK_ELEMENT_ID}">' in html
    page = Page(browser, tmp_path / "report.html", wait=False)
    frame = page.page.locator("#resnet50 iframe")
    frame.scroll_into_view_if_needed()
    inner = frame.content_frame
    inner.locator("body[data-state=ready]").wait_for(timeout=60_000)
    inner.locator('g.box[data-id="layer3"]').click()
    inner.locator('g.box[data-id="layer3.5"]').wait_for()
    inner.locator("body[data-state=ready]").wait_for(timeout=60_000)
    assert inner.locator("#panel h2").inner_text() == "layer3"
    page.page.locator("#resnet50 figure.card:has(iframe)").scroll_into_view_if_needed()
    page.shot("explore-in-report.png")
    page.close()  # no console error, no request


def test_notebook_iframe_is_self_contained_in_the_browser(browser: Any, tmp_path: Path) -> None:
    """What a notebook shows: the single-quoted srcdoc, with its own engine, and no host."""
    (tmp_path / "cell.html").write_text(
        f"<!DOCTYPE html><title>cell</title>{archviz.explore(hostile_trace())._repr_html_()}",
        encoding="utf-8",
    )
    page = Page(browser, tmp_path / "cell.html", wait=False)
    inner = page.page.frame_locator("iframe")
    inner.locator("body[data-state=ready]").wait_for(timeout=60_000)
    assert inner.locator("#model").inner_text() == HOSTILE
    page.close()


def test_explorer_for_a_host_carries_no_engine_and_says_so_alone(
    browser: Any, tmp_path: Path
) -> None:
    explorer = explore(hostile_trace(), host_engine=True)
    assert elk_source() not in explorer.html and HOSTILE not in explorer.html
    assert explorer.html.count("</script>") == 3  # data, the engine loader, the explorer
    with pytest.raises(archviz.ArchvizError, match="inside its report"):
        explorer.save(tmp_path / "x.html")
    (tmp_path / "alone.html").write_text(explorer.html, encoding="utf-8")
    page = Page(browser, tmp_path / "alone.html", wait=False)
    page.page.wait_for_function("document.body.dataset.state === 'error'")
    assert "layout engine is missing" in page.page.locator("#status").inner_text()
    page.close()  # a clear message, not a console error
