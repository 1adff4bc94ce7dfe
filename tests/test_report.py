"""The comparison report: contents, atomic writes, links, escaping, and a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz import ArchvizError, compare
from archviz.cli.main import cli
from archviz.models import BasicBlock, ResNet
from archviz.render import report as report_mod
from archviz.render.report import write_report
from tests.fixtures.chromium import CHROMIUM_ARGS

SMALL = (1, 3, 64, 64)
HOSTILE = '<script>alert("x")</script>'
ARTIFACTS = Path(__file__).parent / "artifacts"


class HostileResNet(ResNet):
    """A ResNet whose extra module's name would run script if pasted unescaped."""

    def __init__(self) -> None:
        super().__init__(BasicBlock, [1, 1, 1, 1], num_classes=10)
        self.add_module(HOSTILE, nn.Identity())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, HOSTILE)(super().forward_features(x))


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(compare(["resnet18", "resnet50"], SMALL), out)
    return out


def test_report_contents(small_report: Path) -> None:
    html = (small_report / "report.html").read_text()
    md = (small_report / "README.md").read_text()
    for text in (html, md):
        assert "1 + 3 x (3 + 4 + 6 + 3) + 1 = 50" in text
        assert "1 + 2 x (2 + 2 + 2 + 2) + 1 = 18" in text
        assert "Table 1" in text and "How work is counted" in text
    assert html.count("<svg") >= 2 * 2 + 2  # stage + block diagram per model, two plots
    assert "<details>" in html and "layer3.0.conv2" in html


def test_html_is_self_contained(small_report: Path) -> None:
    html = (small_report / "report.html").read_text()
    # nothing runs in the page itself (its one script element is the explorers' layout engine,
    # inert text); no external scripts, stylesheets, images or fonts: it works offline
    assert re.findall(r"<script[^>]*>", html) == ['<script type="text/plain" id="archviz-elk">']
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<?xml" not in html


def test_markdown_links_resolve(small_report: Path) -> None:
    md = (small_report / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", md) + re.findall(r'src="([^"]+)"', md)
    assert len(targets) >= 2 * 2 + 2
    for target in targets:
        assert not target.startswith(("http:", "https:", "/"))
        assert (small_report / target).is_file(), target
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
    for link in re.findall(r"\]\(#([^)]+)\)", md):
        heading_ids = {_github_slug(h) for h in re.findall(r"^#+ (.+)$", md, flags=re.M)}
        assert link in anchors | heading_ids, link


def _github_slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_failed_run_leaves_previous_report_intact(
    small_report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports"
    shutil.copytree(small_report, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    class BrokenTemplates:  # diagrams and plots are staged by then; the pages fail
        def get_template(self, name: str):
            raise RuntimeError(f"{name} failed half-way")

    monkeypatch.setattr(report_mod, "environment", BrokenTemplates)
    with pytest.raises(RuntimeError, match="half-way"):
        write_report(compare(["resnet18"], SMALL), out)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # same files, same bytes, no scratch folder left


def test_hostile_module_names_are_escaped(tmp_path: Path) -> None:
    write_report(compare([HostileResNet()], SMALL), tmp_path)
    html = (tmp_path / "report.html").read_text()
    md = (tmp_path / "README.md").read_text()
    assert HOSTILE not in html and HOSTILE not in md
    assert "&lt;script&gt;alert(" in html
    # Markdown gets Markdown escaping: shown literally, and no HTML entity left raw.
    assert "\\<script\\>alert(" in md and "&#39;" not in md and "&lt;" not in md


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchvizError, match="format"):
        write_report(compare(["resnet18"], SMALL), tmp_path, formats=["pdf"])
    result = CliRunner().invoke(
        cli, ["report", "resnet18", "--out", str(tmp_path), "--format", "x"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_cli_report_writes_both_pages(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", "resnet18", "--input", "1x3x64x64", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").is_file() and (tmp_path / "README.md").is_file()


def test_report_in_headless_chromium(small_report: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    url = (small_report / "report.html").resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_request(request: Any) -> None:
        if request.url != url:
            requests.append(request.url)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for label, width in (("desktop", 1280), ("narrow", 390)):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("console", on_console)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", on_request)
                page.goto(url)
                assert page.locator("h1").inner_text().startswith("The ResNet family")
                assert page.locator("svg").count() >= 6
                page.screenshot(path=str(ARTIFACTS / f"report-{label}.png"), full_page=False)
                page.close()
        finally:
            browser.close()
    assert errors == []
    assert [r for r in requests if not r.startswith("data:")] == []


def test_report_with_benchmarks(tmp_path: Path) -> None:
    from archviz import bench

    result = bench(
        "resnet18", devices="cpu,cuda", batch_sizes=(1,), image_size=32, min_run_time=0.01
    )
    write_report(compare(["resnet18"], SMALL), tmp_path, bench=result)
    md = (tmp_path / "README.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "## Benchmarks" in md and 'id="bench"' in html
    assert "(plots/bench.svg)" in md and (tmp_path / "plots" / "bench.svg").is_file()
    assert "whole model" in html  # the per-stage table beside the whole-model time
