"""The package layout's rules (README, "How the code is laid out"), checked on every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "archviz"


def _sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "vendor" not in p.parts]


def test_few_modules_sit_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top


def test_no_file_is_past_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long


def test_no_import_cycle_and_data_flows_one_way() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_cycles.py")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout


def test_the_checker_sees_a_cycle(tmp_path: Path) -> None:
    """The cycle check can fail: a copy of the package with one added back-import fails it."""
    import shutil

    shutil.copytree(PACKAGE, tmp_path / "archviz", ignore=shutil.ignore_patterns("vendor"))
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    graph = tmp_path / "archviz" / "analysis" / "graph.py"
    graph.write_text(
        graph.read_text() + "\n\ndef _back():\n    from archviz.analysis import depth\n"
    )
    run = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "import_cycles.py")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "archviz.analysis.depth -> archviz.analysis.graph" in run.stdout


def test_import_archviz_loads_no_torch() -> None:
    code = "import archviz, sys; print(sorted({'torch', 'pandas', 'jinja2'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.stdout.strip() == "[]", run.stderr
