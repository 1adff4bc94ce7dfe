"""The report for models that are not ResNets: vit_b_16 and densenet121 beside resnet50.

The same promises as tests/test_report.py (offline, escaped, atomic, links resolve, a
real browser), held for a mix of families; ResNet-only sections appear only where they apply.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from archviz import compare
from archviz.render import report as report_mod
from archviz.render.report import write_report
from tests.fixtures.chromium import CHROMIUM_ARGS

MIXED = ["torchvision:vit_b_16", "torchvision:densenet121", "resnet50"]
HOSTILE = '<script>alert("x")</script>'
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mixed")
    comparison = compare(MIXED, (1, 3, 224, 224))
    write_report(comparison, out / "report")
    out.joinpath("formulas.txt").write_text("\n".join(e.formula for e in comparison.explanations))
    return out / "report"


def _small_net() -> nn.Module:
    """Not ResNet-like: two branches concatenated, a hostile module name."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 3, padding=1)
            self.add_module(HOSTILE, nn.ReLU())
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = getattr(self, HOSTILE)(torch.cat([self.a(x), self.b(x)], 1))
            return self.fc(y.mean((2, 3)))

    return Net()


def test_every_model_gets_its_sections(mixed: Path) -> None:
    html = (mixed / "report.html").read_text()
    md = (mixed / "README.md").read_text()
    for formula in (mixed.parent / "formulas.txt").read_text().splitlines():
        assert formula in html and formula in md
    for text in (html, md):
        assert "Architectures side by side" in text
        assert "The paper's multiply-adds vs torchvision's" in text  # resnet50 has one
        assert (
            text.count("Every op that ran has a FLOP formula")
            + text.count("Ran without a FLOP formula")
            == 3
        )  # uncounted ops, once per model
    assert html.count("Convs/block") == 1  # the stage table: resnet50 only
    assert html.count("Layers each") == 2  # the depth terms: the two others
    names = sorted(p.name for p in (mixed / "diagrams").iterdir())
    assert names[:2] == ["resnet50-block.svg", "resnet50-stage.svg"]
    for model in ("torchvision-densenet121", "torchvision-vit-b-16"):
        assert f"{model}-depth1.svg" in names
        assert any(re.fullmatch(rf"{model}-depth[2-9]\.svg", n) for n in names)
    assert "× 12 EncoderBlock" in html and "× 6 _DenseLayer" in html
    assert html.count("<svg") >= 6 + 2  # two diagrams per model, two plots


def test_resnets_alone_keep_their_sections(tmp_path: Path) -> None:
    write_report(compare(["resnet18"], (1, 3, 64, 64)), tmp_path)
    md = (tmp_path / "README.md").read_text()
    assert "## Why is [3, 4, 6, 3] called ResNet-50?" in md
    assert "(diagrams/resnet18-stage.svg)" in md and "(diagrams/resnet18-block.svg)" in md


def test_mixed_html_is_self_contained(mixed: Path) -> None:
    html = (mixed / "report.html").read_text()
    # the only script element is the explorers' layout engine, held once as inert text
    assert re.findall(r"<script[^>]*>", html) == ['<script type="text/plain" id="archviz-elk">']
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<?xml" not in html


def test_mixed_markdown_links_resolve(mixed: Path) -> None:
    md = (mixed / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", md)
    assert len(targets) >= 6 + 2
    for target in targets:
        assert not target.startswith(("http:", "https:", "/"))
        assert (mixed / target).is_file(), target
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
    slugs = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", md, flags=re.M)
    }
    for link in re.findall(r"\]\(#([^)]+)\)", md):
        assert link in anchors | slugs, link


def test_hostile_names_in_a_non_resnet_are_escaped(tmp_path: Path) -> None:
    write_report(compare([_small_net()], (1, 3, 16, 16)), tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert HOSTILE not in html and "&lt;script&gt;alert(" in html
    markdown = (tmp_path / "README.md").read_text()  # escaped as Markdown, not as HTML
    assert HOSTILE not in markdown and "\\<script\\>alert(" in markdown
    for svg in (tmp_path / "diagrams").iterdir():
        assert "<script>" not in svg.read_text()


def test_failed_non_resnet_run_leaves_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports"
    write_report(compare([_small_net()], (1, 3, 16, 16)), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    class BrokenTemplates:
        def get_template(self, name: str):
            raise RuntimeError(f"{name} failed half-way")

    monkeypatch.setattr(report_mod, "environment", BrokenTemplates)
    with pytest.raises(RuntimeError, match="half-way"):
        write_report(compare([nn.Sequential(nn.Conv2d(3, 2, 1))], (1, 3, 16, 16)), out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_mixed_report_in_headless_chromium(mixed: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    url = (mixed / "report.html").resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for label, width in (("desktop", 1280), ("narrow", 390)):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", lambda r: r.url != url and requests.append(r.url))
                page.goto(url)
                assert page.locator("h1").inner_text() == "Architectures side by side"
                # nothing wider than the screen: wide tables and diagrams scroll in their box
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                section = page.locator("#torchvision-densenet121")
                section.screenshot(path=str(ARTIFACTS / f"report-any-{label}.png"))
                page.close()
        finally:
            browser.close()
    assert errors == []
    assert [r for r in requests if not r.startswith("data:")] == []
