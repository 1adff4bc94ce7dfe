"""A plain `pip install .` (not editable) still finds the templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_templates_and_finds_them(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("archviz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("archviz/templates/")}
    expected = {p.name for p in (ROOT / "templates").iterdir() if p.is_file()}
    assert expected and shipped == expected
    # the explorer's layout engine, inlined in every page, ships with its licence
    assert {"archviz/vendor/elk/elk.bundled.js", "archviz/vendor/elk/LICENSE.md"} <= set(names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    probe = "from archviz.render.templates import template_dir; print(template_dir())"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # away from the checkout
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert Path(found) == target / "archviz" / "templates"
