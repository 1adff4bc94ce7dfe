"""`archviz verify`: verdicts agree with PyTorch's load_state_dict on real checkpoint files."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn
from torchvision import models as tvm

from archviz import ArchvizError, VerifyResult, verify
from archviz.cli.main import cli
from archviz.models import get_model

FAST = {"resnet18", "resnet50"}  # the by-name path; every factory: tests/test_models.py


def _sd(name: str = "resnet18", **kwargs) -> dict[str, torch.Tensor]:
    return dict(get_model(name, **kwargs).state_dict())


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["verify", *args])
    return result.exit_code, result.stdout, result.stderr


def _loads_strictly(state_dict: dict, reference: nn.Module) -> bool:
    try:
        reference.load_state_dict(state_dict, strict=True)
    except RuntimeError:
        return False
    return True


# Every factory is verified against torchvision in tests/test_models.py on the pair it
# already builds; here, the by-name path (registry name vs "torchvision:NAME").
@pytest.mark.parametrize("name", sorted(FAST))
def test_archviz_resnets_are_compatible_with_torchvision(name: str) -> None:
    result = verify(name, f"torchvision:{name}")
    assert result.verdict == "compatible" and result.ok
    assert result.matched == result.reference_keys == result.candidate_keys
    assert not (result.missing or result.unexpected or result.shape_mismatches)
    assert result.forward.status == "match"
    assert result.forward.max_abs_diff is not None and result.forward.max_abs_diff <= 1e-5


def test_data_parallel_checkpoint_needs_the_prefix_stripped(tmp_path: Path) -> None:
    path, out = tmp_path / "dp.pth", tmp_path / "fixed.pt"
    torch.save({f"module.{k}": v for k, v in _sd().items()}, path)
    result = verify(path, "torchvision:resnet18")
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None and result.remapping.strip == "module."
    assert result.matched_as_is == 0 and result.matched == 122
    assert _run(str(path), "--against", "torchvision:resnet18")[0] == 1
    code, stdout, _ = _run(str(path), "--against", "resnet18", "--write-remapped", str(out))
    assert code == 0 and "strip prefix 'module.' (DataParallel" in stdout
    assert _loads_strictly(torch.load(out, weights_only=True), tvm.resnet18())


def test_lightning_checkpoint_unwraps_and_strips_model_prefix(tmp_path: Path) -> None:
    weights = {f"model.{k}": v for k, v in _sd().items()}
    weights["criterion.pos_weight"] = torch.ones(1)  # a loss module's buffer beside the model
    path, out = tmp_path / "epoch=3.ckpt", tmp_path / "fixed.safetensors"
    torch.save({"state_dict": weights, "epoch": 3, "global_step": 1200}, path)
    result = verify(path, "resnet18", forward_check=False)
    assert result.container == "state_dict"
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None and result.remapping.strip == "model."
    assert result.remapping.dropped == ("criterion.pos_weight",)
    code, _, _ = _run(str(path), "--against", "resnet18", "--write-remapped", str(out))
    assert code == 0
    from safetensors.torch import load_file

    assert _loads_strictly(load_file(str(out)), tvm.resnet18())


def test_forensics_model_container_with_one_class(tmp_path: Path, monkeypatch) -> None:
    # Published forensics ResNet-50s: {'model': state_dict} and a single-logit head.
    path = tmp_path / "forensics.pth"
    torch.save({"model": _sd("resnet50", num_classes=1), "epoch": 9}, path)
    factory = tmp_path / "my_models.py"
    factory.write_text(
        "from archviz.models import resnet50\n\n"
        "def detector():\n    return resnet50(num_classes=1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    same = verify(path, "my_models:detector")
    assert same.verdict == "compatible" and same.remapping is None  # unwrapping is no remap
    assert same.container == "model" and same.forward.status == "not compared"
    other = verify(path, "torchvision:resnet50", forward_check=False)
    assert other.verdict == "incompatible"
    shapes = {m.key: (m.candidate, m.reference) for m in other.shape_mismatches}
    assert shapes == {"fc.weight": ((1, 2048), (1000, 2048)), "fc.bias": ((1,), (1000,))}
    assert any("num_classes" in note for note in other.notes)
    assert _run(str(path), "--against", "my_models:detector", "--no-forward")[0] == 0


class ShortcutBlock(nn.Module):
    """A re-implementation's BasicBlock: the projection is `shortcut`, registered first."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.shortcut = block.downsample or nn.Identity()
        self.conv1, self.bn1 = block.conv1, block.bn1
        self.conv2, self.bn2 = block.conv2, block.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _shortcut_resnet18() -> nn.Module:
    model = get_model("resnet18")
    for name in ("layer1", "layer2", "layer3", "layer4"):
        setattr(model, name, nn.Sequential(*map(ShortcutBlock, getattr(model, name))))
    return model


def test_renamed_shortcut_is_matched_by_name(tmp_path: Path) -> None:
    model = _shortcut_resnet18()
    result = verify(model, "torchvision:resnet18")
    assert result.verdict == "compatible after remapping"
    assert result.remapping is not None
    # 3 projection shortcuts (layer2..4) x (a conv + a BatchNorm) = 6 modules, 18 keys
    assert result.remapping.renames == (("shortcut", "downsample", 6),)
    assert len(result.remapping.mapping) == 18
    assert ("layer2.0.shortcut.1.running_var", "layer2.0.downsample.1.running_var") in (
        result.remapping.mapping
    )
    assert result.forward.status == "match" and result.forward.max_abs_diff == 0.0
    path, out = tmp_path / "shortcut.pt", tmp_path / "fixed.pt"
    torch.save(model.state_dict(), path)
    code, stdout, _ = _run(str(path), "--against", "resnet18", "--write-remapped", str(out))
    assert code == 0 and "rename 'shortcut' -> 'downsample' (6 modules)" in stdout
    assert _loads_strictly(torch.load(out, weights_only=True), tvm.resnet18())


def test_moved_stride_loads_but_outputs_differ() -> None:
    result = verify(get_model("resnet50", stride_in_1x1=True), "torchvision:resnet50")
    assert result.verdict == "compatible" and not result.ok
    assert result.forward.status == "differ"
    assert result.forward.max_abs_diff is not None and result.forward.max_abs_diff > 1e-3
    assert any("outputs differ" in note for note in result.notes)


def test_num_classes_text_fits_one_screen(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save(_sd("resnet50", num_classes=10), "resnet50_10.pt")
    code, stdout, _ = _run("resnet50_10.pt", "--against", "resnet50")
    lines = stdout.splitlines()
    assert code == 1 and lines[0] == "verdict: incompatible"
    assert len(lines) <= 24 and max(map(len, lines)) <= 100
    assert "  fc.weight  candidate (10, 2048), reference (1000, 2048)" in lines
    assert any("fc.bias" in line and "(10,)" in line and "(1000,)" in line for line in lines)


@pytest.mark.parametrize("drop", ["num_batches_tracked", "layer4.1.bn2.weight", "nothing"])
def test_verdict_agrees_with_load_state_dict(drop: str) -> None:
    # A plain dict carries no version metadata, so PyTorch fills absent num_batches_tracked.
    weights = {k: v for k, v in _sd().items() if not k.endswith(drop)}
    result = verify(weights, "torchvision:resnet18", forward_check=False)
    expected = _loads_strictly(weights, tvm.resnet18())
    assert (result.verdict == "compatible") == expected
    assert expected == (drop != "layer4.1.bn2.weight")
    if not expected:
        assert result.missing == ("layer4.1.bn2.weight",)


def test_dtype_differences_are_reported_but_load(tmp_path: Path) -> None:
    path = tmp_path / "half.safetensors"
    save_file({k: v.half() if v.is_floating_point() else v for k, v in _sd().items()}, str(path))
    result = verify(path, "resnet18")
    assert result.verdict == "compatible" and result.forward.status == "not compared"
    assert len(result.dtype_mismatches) == 102  # 20 convs + 20 BNs x 4 float tensors + fc x 2
    assert result.dtype_mismatches[0].candidate == "float16"


def test_missing_stage_is_grouped_and_json_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "short.pt"
    torch.save({k: v for k, v in _sd("resnet50").items() if not k.startswith("layer4.2.")}, path)
    code, stdout, _ = _run(str(path), "--against", "resnet50", "--no-forward")
    # 3 convs + 3 BNs x 5 entries = 18 keys, but a plain dict has no version metadata, so
    # PyTorch fills the 3 absent num_batches_tracked itself: 15 are really missing.
    assert code == 1 and "layer4.2.*: 15 keys missing" in stdout
    code, stdout, _ = _run(str(path), "--against", "resnet50", "--format", "json", "--no-forward")
    data = json.loads(stdout)
    assert data["verdict"] == "incompatible" and data["missing_groups"] == {"layer4.2.*": 15}
    assert len(data["missing"]) == 15 and data["ok"] is False
    code, stdout, _ = _run(str(path), "--against", str(path), "--format", "markdown")
    assert code == 0 and "| verdict | **compatible** |" in stdout
    assert "reference is a state_dict" in stdout


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_code_in_a_pickle_is_refused_without_running(tmp_path: Path, writer: str) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save({"state_dict": _Exploit(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    code, stdout, stderr = _run(str(path), "--against", "resnet18")
    assert code == 2 and not marker.exists()
    assert stderr.startswith("archviz: error:") and len(stderr.strip().splitlines()) == 1
    assert "weights_only" in stderr and "Traceback" not in stdout + stderr


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.pt").write_bytes(b"")
    good = tmp / "good.pt"
    torch.save(_sd(), good)
    (tmp / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp / "random.pth").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy())
    (tmp / "folder.pt").mkdir()
    torch.save([torch.zeros(2), torch.ones(2)], tmp / "list.pt")
    torch.save({"epoch": 3, "lr": 0.1}, tmp / "nostate.pt")
    (tmp / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00notjson!")
    names = ["empty", "truncated", "random", "folder", "list", "nostate", "junk", "missing"]
    files = [*sorted(tmp.iterdir()), tmp / "missing.pt"]
    return {n: next(f for f in files if f.stem == n) for n in names}


def test_bad_files_give_one_line_and_exit_2(tmp_path: Path) -> None:
    for name, path in _bad_inputs(tmp_path).items():
        code, stdout, stderr = _run(str(path), "--against", "resnet18")
        assert code == 2, (name, stdout, stderr)
        assert stderr.startswith("archviz: error:") and len(stderr.strip().splitlines()) == 1
        assert path.name in stderr and "Traceback" not in stdout + stderr, name
        with pytest.raises(ArchvizError):
            verify(path, "resnet18")


def test_bad_names_and_sources_exit_2() -> None:
    assert _run("resnet51", "--against", "resnet18")[0] == 2
    assert _run("resnet18", "--against", "nosuchpackage.mod:factory")[0] == 2
    with pytest.raises(ArchvizError, match="cannot verify a int"):
        verify(3, "resnet18")  # type: ignore[arg-type]


def test_result_is_a_plain_record() -> None:
    a = verify("resnet18", "resnet18", forward_check=False)
    b = verify("resnet18", "resnet18", forward_check=False)
    assert isinstance(a, VerifyResult) and a == b and a.forward.status == "skipped"
    assert json.loads(json.dumps(dataclasses.asdict(a)))["verdict"] == "compatible"
