"""The dataflow graph: exact edge sets on tiny models whose graph can be written down."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archviz import trace
from archviz.analysis.graph import (
    groups,
    longest_weighted_path,
    repeat_runs,
    signatures,
)
from archviz.cli.main import cli
from archviz.models import resnet


def edge_set(t) -> set[tuple[str, str, tuple[int, ...] | None]]:
    return {(e.src, e.dst, e.shape) for e in t.edges}


class Branches(nn.Module):
    """Two convs on the same input, concatenated, then a third conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.c = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.cat([self.a(x), self.b(x)], dim=1))


class Residual(nn.Module):
    """out = relu(conv(x) + x), with the add and the ReLU in place."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        out += x
        return self.relu(out)


class Twice(nn.Module):
    """One Linear called twice, then a flatten between modules."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x)).flatten(1)


class Unrelated(nn.Module):
    """b runs after a but reads the input, not a's output: no edge a -> b."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        z = self.b(x)
        return y * z


def test_two_branches_concatenated() -> None:
    t = trace(Branches(), (1, 3, 5, 5))
    assert edge_set(t) == {
        ("input", "a", (1, 3, 5, 5)),
        ("input", "b", (1, 3, 5, 5)),
        ("a", "cat_0", (1, 4, 5, 5)),
        ("b", "cat_0", (1, 4, 5, 5)),
        ("cat_0", "c", (1, 8, 5, 5)),
        ("c", "output", (1, 2, 5, 5)),
    }
    assert [n.kind for n in t.nodes] == ["input", "module", "module", "op", "module", "output"]


def test_residual_add_in_place() -> None:
    # `out += x` writes into conv's output: the ReLU must read the add, not the conv.
    t = trace(Residual(), (1, 3, 4, 4))
    assert edge_set(t) == {
        ("input", "conv", (1, 3, 4, 4)),
        ("conv", "add_0", (1, 3, 4, 4)),
        ("input", "add_0", (1, 3, 4, 4)),
        ("add_0", "relu", (1, 3, 4, 4)),
        ("relu", "output", (1, 3, 4, 4)),
    }


def test_module_called_twice_is_two_nodes() -> None:
    t = trace(Twice(), (2, 4))
    assert edge_set(t) == {
        ("input", "fc", (2, 4)),
        ("fc", "fc:1", (2, 4)),
        ("fc:1", "flatten_0", (2, 4)),
        ("flatten_0", "output", (2, 4)),
    }
    assert [r.call for r in t.records if r.name == "fc"] == [0, 1]


def test_no_edge_between_modules_with_no_tensor_between_them() -> None:
    t = trace(Unrelated(), (2, 4))
    assert edge_set(t) == {
        ("input", "a", (2, 4)),
        ("input", "b", (2, 4)),
        ("a", "mul_0", (2, 4)),
        ("b", "mul_0", (2, 4)),
        ("mul_0", "output", (2, 4)),
    }


def test_meta_and_cpu_graphs_agree() -> None:
    torch.manual_seed(0)
    model = Residual()
    assert edge_set(trace(model, (1, 3, 4, 4))) == edge_set(
        trace(model, (1, 3, 4, 4), device="cpu")
    )


def test_resnet50_residual_adds_are_observed() -> None:
    with torch.device("meta"):
        model = resnet(50)
    t = trace(model)
    adds = [n.id for n in t.nodes if n.type == "add"]
    assert len(adds) == 16  # 3 + 4 + 6 + 3 blocks, one residual add each
    into = {a: sorted(e.src for e in t.edges if e.dst == a) for a in adds}
    # layer1.0 adds its projection (downsample.1 is its BN) to bn3; layer1.1 adds its input.
    assert into["add_0"] == ["layer1.0.bn3", "layer1.0.downsample.1"]
    # the in-place ReLU after add_0 wrote the tensor last, so layer1.1's add reads it
    assert into["add_1"] == ["layer1.0.relu:2", "layer1.1.bn3"]
    projections = [a for a, srcs in into.items() if any("downsample" in s for s in srcs)]
    assert len(projections) == 4


def test_every_edge_joins_nodes_of_the_graph_in_execution_order() -> None:
    with torch.device("meta"):
        model = resnet(18)
    t = trace(model)
    order = {n.id: i for i, n in enumerate(t.nodes)}
    assert len(order) == len(t.nodes)  # ids are unique
    assert all(order[e.src] < order[e.dst] for e in t.edges)


def test_resnet_main_path_goes_through_the_blocks_not_the_shortcut() -> None:
    with torch.device("meta"):
        model = resnet(50)
    path = longest_weighted_path(trace(model))
    assert "layer1.0.conv3" in path and "layer1.0.downsample.0" not in path
    assert path[0] == "input" and path[-1] == "output"


def test_repeated_blocks_share_a_signature_and_the_projection_block_does_not() -> None:
    with torch.device("meta"):
        model = resnet(50)
    t = trace(model)
    sig = signatures(t)
    tree = groups(t)
    runs = repeat_runs(t, list(tree["layer3"].children), sig)
    assert [len(r) for r in runs] == [1, 5]  # layer3.0 has the projection; .1-.5 are alike


def test_trace_json_carries_edges() -> None:
    result = CliRunner().invoke(cli, ["trace", "resnet18", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"src": "layer1.0.bn2", "dst": "add_0", "shape": [1, 64, 56, 56]} in data["edges"]


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_hooks_and_mode_are_gone_after_a_failing_forward(device: str) -> None:
    model = Branches()
    with pytest.raises(ValueError):
        trace(model, (1, 5, 4, 4), device=device)  # 5 channels where 3 are expected
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert torch.overrides._get_current_function_mode_stack() == []


def test_cached_meta_kernels_give_the_same_trace_as_the_real_ones() -> None:
    # archviz.tracing.metacache hands out batch/layer norm outputs by shape after the first call;
    # the records must be the ones the real meta kernels give.
    from archviz.tracing import metacache

    with torch.device("meta"):
        model = torchvision_vit()
    cached = trace(model, (1, 3, 64, 64))
    original = metacache.CACHED.copy()
    metacache.CACHED.clear()
    try:
        plain = trace(model, (1, 3, 64, 64))
    finally:
        metacache.CACHED.update(original)
    assert cached.records == plain.records and cached.edges == plain.edges


def torchvision_vit() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    # 64x64 images, 16x16 patches, 2 layers: layer norms and a batch-norm-free encoder
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Upsample(size=64),
        nn.Conv2d(8, 3, 1),
        VisionTransformer(64, 16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32),
    )  # fmt: skip


class _Inner(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = act  # the same module object as the outer model's `shared`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.ReLU()
        self.block = _Inner(self.shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.block(x))


def test_a_module_called_from_two_places_gets_its_call_depth() -> None:
    # `shared` is named at the top level, but its first call runs inside `block`.
    t = trace(_Shared(), (2, 4))
    first, second = (r for r in t.records if r.name == "shared")
    assert (first.parent, first.depth) == ("block", 2)
    assert (second.parent, second.depth) == ("", 1)
    assert [n.scope for n in t.nodes if n.id.startswith("shared")] == [("block",), ()]
