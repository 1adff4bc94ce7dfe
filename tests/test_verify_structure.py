"""Verify pairs modules by structure: a remapped file computes what the original computed,
or archviz says `ambiguous` and writes nothing.

The fixtures (tests/fixtures/shortcut_first.py) store each block's projection shortcut
before its main path, and in layer1.0 conv3 and the shortcut conv are both 256x64x1x1:
pairing by stored order swaps them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archviz import verify
from archviz.checkpoints.pairing import pair_traces
from archviz.cli.main import cli
from archviz.tracing.trace import trace
from tests.fixtures import shortcut_first as sf

REF = "tests.fixtures.shortcut_first:reference"
NAMED = "tests.fixtures.shortcut_first:named_net"
OPAQUE = "tests.fixtures.shortcut_first:opaque_net"
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["verify", *args])
    return result.exit_code, result.stdout, result.stderr


def _outputs_with(path: Path) -> torch.Tensor:
    """The reference architecture holding the written file's weights, on X."""
    model = sf.reference().eval()
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    with torch.no_grad():
        return model(X)


def _original(factory) -> torch.Tensor:
    with torch.no_grad():
        return factory()(X)


def test_the_trap_is_real() -> None:
    # Equal shapes the stored order would swap: the shortcut conv comes first in the file.
    shapes = {k: tuple(v.shape) for k, v in sf.named_net().state_dict().items()}
    ref = {k: tuple(v.shape) for k, v in sf.reference().state_dict().items()}
    assert shapes["stages.0.blocks.0.shortcut.convolution.weight"] == (256, 64, 1, 1)
    assert ref["layer1.0.conv3.weight"] == ref["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    keys = list(shapes)
    assert keys.index("stages.0.blocks.0.shortcut.convolution.weight") < keys.index(
        "stages.0.blocks.0.convolution3.weight"
    )
    assert list(ref).index("layer1.0.conv3.weight") < list(ref).index(
        "layer1.0.downsample.0.weight"
    )


def test_file_with_names_is_remapped_so_outputs_equal_the_original(tmp_path: Path) -> None:
    path, out = tmp_path / "named.pt", tmp_path / "fixed.pt"
    torch.save(sf.named_net().state_dict(), path)
    result = verify(path, REF)
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None and result.remapping.decided
    mapping = dict(result.remapping.mapping)
    assert mapping["stages.0.blocks.0.shortcut.convolution.weight"] == (
        "layer1.0.downsample.0.weight"
    )
    assert mapping["stages.0.blocks.0.convolution3.weight"] == "layer1.0.conv3.weight"
    assert mapping["stages.1.blocks.0.norm3.running_var"] == "layer2.0.bn3.running_var"
    assert result.forward.status == "not compared"
    assert "the candidate is a file" in result.forward.note
    code, stdout, stderr = _run(str(path), "--against", REF, "--write-remapped", str(out))
    assert code == 0 and "forward: not compared" in stdout and "ran" not in stdout
    assert stderr.startswith(f"wrote {out}")
    diff = float((_outputs_with(out) - _original(sf.named_net)).abs().max())
    assert diff <= 1e-5


def test_file_without_evidence_is_ambiguous_and_never_written(tmp_path: Path) -> None:
    path, out = tmp_path / "opaque.pt", tmp_path / "fixed.pt"
    torch.save(sf.opaque_net().state_dict(), path)
    out.write_bytes(b"the user's earlier file")
    result = verify(path, REF)
    assert result.verdict == "ambiguous" and not result.ok
    assert result.remapping is not None
    swaps = {(a.candidates, a.references) for a in result.remapping.ambiguities}
    assert (
        ("stages.0.blocks.0.aux.0", "stages.0.blocks.0.main.6"),
        ("layer1.0.conv3", "layer1.0.downsample.0"),
    ) in swaps
    assert result.forward.status == "not compared"
    code, stdout, stderr = _run(str(path), "--against", REF, "--write-remapped", str(out))
    assert code == 1 and stdout.startswith("verdict: ambiguous")
    assert "could be layer1.0.conv3, layer1.0.downsample.0" in stdout
    assert "missing evidence:" in stdout
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("archviz: not written:")
    assert "pkg.mod:factory" in stderr
    assert out.read_bytes() == b"the user's earlier file"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("factory", [NAMED, OPAQUE])
def test_module_is_paired_by_its_dataflow_graph(tmp_path: Path, factory: str) -> None:
    out = tmp_path / "fixed.pt"
    result = verify(factory, REF, write_remapped=out)
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None
    assert {p.evidence for p in result.remapping.pairs} == {"graph"}
    assert result.forward.status == "match" and result.forward.max_abs_diff == 0.0
    assert result.write is not None and result.write.written
    build = sf.named_net if factory == NAMED else sf.opaque_net
    assert float((_outputs_with(out) - _original(build)).abs().max()) == 0.0
    code, stdout, _ = _run(factory, "--against", REF)
    assert code == 1 and "forward: match, max abs difference 0 " in stdout


def test_graph_pairs_the_shortcut_by_what_it_consumes() -> None:
    cand = trace(sf.opaque_net(), (1, 3, 64, 64))
    ref = trace(sf.reference(), (1, 3, 64, 64))
    pairs = pair_traces(cand, ref)
    assert pairs["stages.0.blocks.0.aux.0"] == "layer1.0.downsample.0"
    assert pairs["stages.0.blocks.0.main.6"] == "layer1.0.conv3"
    assert pairs["stages.0.blocks.0.main.7"] == "layer1.0.bn3"
    assert len(pairs) == 35  # 17 convs + 17 BatchNorms + the classifier: every weighted layer


def test_without_a_graph_an_order_guess_counts_only_if_outputs_match(monkeypatch) -> None:
    import sys

    verify_module = sys.modules["archviz.checkpoints.verify"]
    monkeypatch.setattr(verify_module.pairing, "by_graph", lambda c, r: ({}, "no graph (test)"))
    wrong = verify(OPAQUE, REF)  # stored order swaps conv3 and the shortcut: outputs differ
    assert wrong.verdict == "ambiguous" and wrong.forward.status == "differ"
    assert "paired by stored order (so not that)" in wrong.forward.note
    assert "no graph (test)" in wrong.notes
    right = verify("tests.fixtures.shortcut_first:main_first_net", REF)
    assert right.verdict == "compatible after remapping" and right.remapping is not None
    assert "order, confirmed by the forward check" in {p.evidence for p in right.remapping.pairs}
    assert right.forward.status == "match" and right.forward.max_abs_diff == 0.0


@pytest.mark.parametrize(
    ("factory", "picked"), [("dataclass_net", "output.logits"), ("dict_net", "output['logits']")]
)
def test_structured_outputs_are_compared(factory: str, picked: str) -> None:
    code, stdout, stderr = _run(f"tests.fixtures.shortcut_first:{factory}", "--against", REF)
    assert "Traceback" not in stdout + stderr
    assert "verdict: compatible after remapping" in stdout
    assert f"forward: match, max abs difference 0 on 1x3x64x64 (candidate {picked} vs" in stdout
    assert code == 1  # compatible only after remapping, and nothing written


def test_write_refuses_its_own_input(tmp_path: Path) -> None:
    path = tmp_path / "named.pt"
    torch.save(sf.named_net().state_dict(), path)
    before = path.read_bytes()
    code, _, stderr = _run(str(path), "--against", REF, "--write-remapped", str(path))
    assert code == 2 and "is an input of this run" in stderr
    assert path.read_bytes() == before


def test_a_failed_recheck_leaves_the_destination_alone(tmp_path: Path, monkeypatch) -> None:
    from archviz.checkpoints import write as verify_write

    path, out = tmp_path / "named.pt", tmp_path / "fixed.pt"
    torch.save(sf.named_net().state_dict(), path)
    out.write_bytes(b"old")
    real = verify_write.save_state_dict

    def corrupt(state_dict, file, **options):  # a disk that drops a tensor
        return real({k: v for k, v in list(state_dict.items())[1:]}, file, **options)

    monkeypatch.setattr(verify_write, "save_state_dict", corrupt)
    result = verify(path, REF, write_remapped=out)
    assert result.write is not None and not result.write.written
    assert "does not load strictly" in result.write.message
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.pt", "named.pt"]


def test_hostile_keys_are_shortened_and_terminal_safe(tmp_path: Path) -> None:
    weights = dict(sf.reference().state_dict())
    weights["a." * 50_000 + "weight"] = torch.zeros(1)  # a 100 kB key
    weights["evil\x1b[2J\x1b[31m.\u202eweight"] = torch.zeros(1)
    path = tmp_path / "hostile.pt"
    torch.save(weights, path)
    code, stdout, _ = _run(str(path), "--against", REF, "--no-forward")
    assert code == 1 and "verdict: incompatible" in stdout
    assert "\x1b" not in stdout and "\u202e" not in stdout and "\\x1b[2J" in stdout
    assert max(map(len, stdout.splitlines())) <= 200 and "(100006 chars)" in stdout
    # Timing (linear in the key length) is measured in benchmarks/bench_verify_keys.py.


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("layer1.0.shortcut.0", "layer1.0.downsample.0"),
        ("stages.0.blocks.0.downsample.0", "layer1.0.downsample.0"),
        ("encoder.stages.3.layers.2.convolution1", "encoder.layer4.2.conv1"),
        ("stem.norm", "bn1"),
        ("classifier", "fc"),
        ("a." * 100 + "b", "a." * 100 + "b"),  # deeper than any model: left alone
    ],
)
def test_name_evidence(name: str, canonical: str) -> None:
    from archviz.checkpoints.layouts import canonical as canon

    assert canon(name) == canonical


def test_equal_shapes_without_evidence_are_never_paired_by_order() -> None:
    from archviz.checkpoints import remap

    conv = (256, 64, 1, 1)
    cand = {"b.side.weight": conv, "b.main.weight": conv}
    ref = {"b.conv3.weight": conv, "b.downsample.0.weight": conv}
    proposal = remap.propose(cand, ref)
    assert proposal is not None and proposal.mapping == () and not proposal.decided
    (only,) = proposal.ambiguities
    assert only.candidates == ("b.side", "b.main")
    assert only.references == ("b.conv3", "b.downsample.0")
    named = remap.propose({"b.shortcut.weight": conv, "b.main.weight": conv}, ref)
    assert named is not None and named.decided
    assert dict(named.mapping) == {
        "b.shortcut.weight": "b.downsample.0.weight",  # by name
        "b.main.weight": "b.conv3.weight",  # the one left: by elimination
    }
