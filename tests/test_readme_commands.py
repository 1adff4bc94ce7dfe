"""The README's `archviz ...` lines, run as printed, in order.

The commands are read from README.md when the test runs, so a command added to the README
is tested without touching this file. In one temporary folder (a user's project):
- lines needing a GPU alone (`--device cuda`) are skipped;
- `archviz bench` gets `--quick` (documented in the README: rough figures in seconds) and
  64x64 images instead of the README's 224x224 (the command line is under test, not the
  figures; every other command traces on meta, where the input size costs nothing);
- the files the README calls "your own" (checkpoint.pth, lightning.ckpt, my_pkg) get
  stand-ins built here, with random weights.
The first command runs through the installed console script, in its own process; the
others run in this process through the same `archviz` group (`CliRunner`), so torch and
torchvision are imported once, not once per line (that was 30 s a line on a busy machine).
Each command must exit 0 and print no traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archviz.cli.main import cli
from archviz.models import get_model

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"bench": ["--quick"]}  # extra arguments per command, documented in the README
SMALL_IMAGE = "64x64"  # bench's --input images, N kept
STAND_INS = ("checkpoint.pth", "lightning.ckpt", "my_pkg", "gpt2", "llama-2-7b", "qwen2")


def readme_commands(text: str) -> list[str]:
    """Lines starting with `archviz ` inside fenced code blocks, in order, comments cut."""
    commands, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced and line.strip().startswith("archviz "):
            commands.append(" ".join(shlex.split(line, comments=True)))
    return commands


def gpu_only(args: list[str]) -> bool:
    devices = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--device"]
    return any("cpu" not in d.split(",") and "meta" not in d.split(",") for d in devices)


def make_stand_ins(folder: Path) -> None:
    """The user's own files the README's verify lines name, with random weights."""
    weights = get_model("resnet50").state_dict()
    torch.save(weights, folder / "checkpoint.pth")
    lightning = {f"model.{k}": v for k, v in weights.items()}
    torch.save({"state_dict": lightning, "epoch": 3}, folder / "lightning.ckpt")
    package = folder / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "from archviz.models import resnet50\n\n\ndef my_resnet():\n    return resnet50()\n"
    )
    _config_stand_ins(folder)


def _config_stand_ins(folder: Path) -> None:
    """The Hugging Face config.json files the README names, written by transformers."""
    try:
        import transformers as t
    except ImportError:
        return
    configs = {
        "gpt2": t.GPT2Config(architectures=["GPT2LMHeadModel"]),
        "llama-2-7b": t.LlamaConfig(architectures=["LlamaForCausalLM"]),  # its defaults
        "qwen2": t.Qwen2Config(  # Qwen2-0.5B
            hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
            num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
            tie_word_embeddings=True, architectures=["Qwen2ForCausalLM"],
        ),
    }  # fmt: skip
    for name, config in configs.items():
        (folder / name).mkdir()
        config.to_json_file(str(folder / name / "config.json"))


def archviz_executable() -> list[str]:
    """The installed console script beside this Python (as `make` installs it)."""
    found = shutil.which("archviz", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "archviz"]


def small_inputs(args: list[str]) -> list[str]:
    """bench's `--input NxCxHxW` values with H x W shrunk to SMALL_IMAGE; others as given."""
    if args[:1] != ["bench"]:
        return args
    return [
        "x".join([*a.split("x")[:2], SMALL_IMAGE]) if i and args[i - 1] == "--input" else a
        for i, a in enumerate(args)
    ]


def run_installed(args: list[str], folder: Path, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [*archviz_executable(), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def run_here(args: list[str]) -> tuple[int, str]:
    """The same `archviz` group, exit-code contract included, in this process."""
    result = CliRunner().invoke(cli, args)  # its output holds stderr too (click 8.1 and 8.2)
    return result.exit_code, result.output


def test_readme_commands_run_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) >= 10, commands  # the README's examples, found
    make_stand_ins(tmp_path)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # my_pkg, for the in-process commands
    timings, failures = [], []
    for n, command in enumerate(commands):
        args = shlex.split(command)[1:]
        if gpu_only(args):
            continue
        args = small_inputs(args + QUICK.get(args[0], []))
        start = time.perf_counter()
        code, output = run_installed(args, tmp_path, env) if n == 0 else run_here(args)
        timings.append((time.perf_counter() - start, command))
        if code != 0 or "Traceback" in output:
            failures.append(f"{command}\n  exit {code}: {output.strip()[-800:]}")
    for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
        monkeypatch.delitem(sys.modules, name)
    print("\n".join(f"{s:6.1f} s  {c}" for s, c in sorted(timings, reverse=True)))
    assert not failures, "\n".join(failures)


def test_readme_commands_are_found_in_order() -> None:
    text = "x\n```bash\narchviz a --b 1   # note\n```\narchviz outside\n```\narchviz c\n```\n"
    assert readme_commands(text) == ["archviz a --b 1", "archviz c"]
    assert gpu_only(["bench", "m", "--device", "cuda"])
    assert not gpu_only(["bench", "m", "--device", "cpu,cuda"])
    bench = ["bench", "m", "--input", "8x3x224x224", "-o", "b.json"]
    assert small_inputs(bench) == ["bench", "m", "--input", "8x3x64x64", "-o", "b.json"]
    assert small_inputs(["compare", "--input", "8x3x160x160"])[-1] == "8x3x160x160"


@pytest.mark.parametrize("line", [". .venv/bin/activate", "make report"])
def test_readme_states_how_archviz_gets_on_the_path(line: str) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert line in text
    first_use = text.index("\narchviz ")
    assert text.index(". .venv/bin/activate") < first_use
    assert re.search(r"make report.*\n(.*\n)*.*\. \.venv/bin/activate", text)
