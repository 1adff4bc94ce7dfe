"""torchinfo parity: the rows a torchinfo user expects, for the models archviz used to miss.

torchinfo's README and its expected outputs say what a summary shows: one row per module
call at its depth in the module tree, with a row (no output shape) for a ModuleList or
ModuleDict the forward iterates without calling; a lazy module's parameters once the
forward has created them; the Sequential, Linear and ReLU rows of a scripted model. The
models below are written here; torchinfo.summary runs in the test as the reference for
rows, depths, output shapes and parameters per row.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchinfo
from click.testing import CliRunner
from torch import nn
from torch.nn.parameter import is_lazy

from archviz import ArchvizError, trace
from archviz.cli.main import cli
from archviz.records import Trace, first_shape


def torchinfo_rows(model: nn.Module, **kwargs) -> list[tuple]:
    """(depth, name, type, output shape or None, subtree params or None) per torchinfo row;
    params are None where torchinfo prints "(recursive)"."""
    stats = torchinfo.summary(model, verbose=0, depth=99, **kwargs)
    return [
        (
            layer.depth,
            layer.var_name,
            layer.class_name,
            tuple(layer.output_size) if layer.executed else None,
            None if layer.is_recursive else layer.num_params,
        )
        for layer in stats.summary_list
    ]


def archviz_rows(result: Trace, recursive: frozenset[int] = frozenset()) -> list[tuple]:
    """The same tuple per archviz record; `recursive`: row indices whose params to blank."""
    return [
        (
            r.depth,
            r.name.rpartition(".")[2] or result.model,
            r.type,
            first_shape(r.output_shapes) if r.called else None,
            None if i in recursive else r.params_total,
        )
        for i, r in enumerate(result.records)
    ]


def same_rows(result: Trace, expected: list[tuple]) -> None:
    """archviz's rows equal torchinfo's, params compared where torchinfo prints a number."""
    blank = frozenset(i for i, row in enumerate(expected) if row[4] is None)
    assert archviz_rows(result, blank) == expected


def check_sums(result: Trace) -> None:
    """The invariants: own parameters over first calls sum to the total; the new container
    rows add no work of their own."""
    assert sum(r.params for r in result.records if r.call == 0) == result.totals.params
    assert sum(r.macs for r in result.records) == result.totals.macs
    assert all(r.macs == r.flops == 0 for r in result.records if not r.called)


# -- 1. lazy modules ---------------------------------------------------------------------


class LazyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.LazyLinear(8)
        self.act = nn.ReLU()
        self.fc2 = nn.LazyLinear(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_lazy_modules_trace_and_stay_lazy(device: str) -> None:
    model = LazyNet()
    result = trace(model, (3, 5), device=device)
    # fc1: 5*8 + 8 = 48; fc2: 8*2 + 2 = 18
    assert [r.params for r in result.records[1:]] == [48, 0, 18]
    assert result.totals.params == result.totals.trainable == 66
    assert model.fc1.has_uninitialized_params() and is_lazy(model.fc2.weight)
    same_rows(result, torchinfo_rows(LazyNet(), input_data=torch.zeros(3, 5)))
    check_sums(result)


def test_lazy_batchnorm_and_conv_on_meta() -> None:
    """Lazy buffers (LazyBatchNorm2d's running stats) used to fail the copy."""
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(2))
    result = trace(model, (1, 3, 6, 6))
    # conv: 4*3*9 + 4 = 112; bn: 4 + 4 = 8; linear: 4*4*4*2 + 2 = 130
    assert [r.params for r in result.records[1:]] == [112, 8, 0, 130]
    assert model[1].has_uninitialized_params()


def test_lazy_module_that_cannot_infer_is_one_line() -> None:
    with pytest.raises(ArchvizError, match=r"lazy module fc1 \(LazyLinear\) from its input 0-d"):
        trace(LazyNet(), inputs=torch.tensor(1.0))


class SpareLazy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 4)
        self.spare = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def test_lazy_parameter_never_initialised_counts_zero() -> None:
    """A lazy module the forward never calls: 0 parameters and a note, not element_size's
    ValueError."""
    result = trace(SpareLazy(), (2, 4))
    assert result.totals.params == 20 and result.totals.param_bytes == 80
    assert any("spare.weight" in note for note in result.extra["notes"])


# -- 2. 0-d and mixed inputs ----------------------------------------------------------


class ScaleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(10, 5)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return self.linear(x) * t


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_scalar_input_size(device: str) -> None:
    result = trace(ScaleNet(), [(1, 10), ()], device=device)
    assert result.input_shapes == ((1, 10), ())
    expected = torchinfo_rows(ScaleNet(), input_data=[torch.zeros(1, 10), torch.tensor(2.0)])
    same_rows(result, expected)
    assert result.totals.params == 55  # 10*5 + 5


def test_scalar_and_number_inputs() -> None:
    x = torch.zeros(1, 10)
    assert trace(ScaleNet(), inputs=(x, torch.tensor(2.0))).input_shapes == ((1, 10), ())
    assert trace(ScaleNet(), inputs=(x, 2.0)).input_shapes == ((1, 10), None)


@pytest.mark.parametrize(
    ("size", "named"),
    [([(1, 10), 2.0], "#2 of 2 is 2.0, not a shape"), ([(1, 10), (0,)], "#2 of 2 (0,)")],
)
def test_bad_sizes_name_the_argument(size: list, named: str) -> None:
    with pytest.raises(ArchvizError, match=named.replace("(", r"\(").replace(")", r"\)")):
        trace(ScaleNet(), size)


# -- 3. TorchScript -------------------------------------------------------------------


class LinearStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class HalfScripted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = _script(nn.Linear(2 * 4 * 4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _script(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():  # torch.jit.script announces its deprecation
        warnings.simplefilter("ignore")
        return torch.jit.script(module)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_scripted_model_is_opened(device: str) -> None:
    """torchinfo's jit case: the scripted model has the Python model's rows (here with
    shapes too: torchinfo prints "--" for a scripted model's shapes)."""
    scripted = _script(LinearStack())
    result = trace(scripted, (4, 16), device=device)
    expected = torchinfo_rows(LinearStack(), input_data=torch.zeros(4, 16))
    same_rows(result, expected)
    # torchinfo on the scripted model itself: the same rows, without shapes (and its root
    # named RecursiveScriptModule)
    reference = torchinfo_rows(scripted, input_data=torch.zeros(4, 16))
    no_shapes = [(d, n, t, p) for d, n, t, _, p in archviz_rows(result)]
    assert no_shapes[1:] == [(d, n, t, p) for d, n, t, _, p in reference][1:]
    assert result.totals.macs == 4 * 16 * 8 + 4 * 8 * 1  # the two Linear layers
    check_sums(result)


def test_scripted_module_list_is_opened() -> None:
    """A scripted model iterating a ModuleList: the unscripted model's torchinfo rows."""
    result = trace(_script(UnitList()), (1, 1, 10))
    same_rows(result, torchinfo_rows(UnitList(), input_size=(1, 1, 10)))


def test_partly_scripted_model_is_opened() -> None:
    """torchinfo's partial_jit case: the scripted Linear is a Linear row. torchinfo lists it
    before the rows the forward ran (it records scripted modules as it registers hooks),
    so the rows are compared as a set; archviz keeps run order."""
    result = trace(HalfScripted(), (1, 1, 6, 6))
    expected = torchinfo_rows(HalfScripted(), input_data=torch.zeros(1, 1, 6, 6))
    mine = [(d, n, t, p) for d, n, t, _, p in archviz_rows(result)]
    assert mine == [
        (0, "HalfScripted", "HalfScripted", 119),
        (1, "conv", "Conv2d", 20),
        (1, "fc", "Linear", 99),
    ]  # conv: 2*9 + 2; fc: 32*3 + 3
    assert sorted(mine) == sorted((d, n, t, p) for d, n, t, _, p in expected)
    assert result.get("fc").output_shapes == (1, 3)


def test_traced_module_is_one_row_that_says_so() -> None:
    """torch.jit.trace keeps no Python class: one row, "scripted: not opened"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(LinearStack(), torch.zeros(4, 16))
    result = trace(traced, (4, 16))
    (row,) = result.records
    assert row.note == "scripted: not opened" and row.params_total == 16 * 8 + 8 + 8 + 1
    assert "LinearStack (LinearStack; scripted: not opened)" in result.summary()
    assert result.totals.macs == 4 * 16 * 8 + 4 * 8  # its ops still count


# -- 4. containers the forward iterates --------------------------------------------------


class Unit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class UnitList(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ml = nn.ModuleList([Unit() for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.ml:
            x = unit(x)
        return x


class UnitDict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(1, 2, 1)
        self.md = nn.ModuleDict({"a": nn.Conv2d(2, 2, 1), "b": nn.BatchNorm2d(2)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.md["b"](self.md["a"](x))


class SharedInNestedLists(nn.Module):
    """One ReLU shared by every block, each block's layers in a ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        act = nn.ReLU()
        self.blocks = nn.ModuleList([_Block(act) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class _Block(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return x


@pytest.mark.parametrize(
    ("model", "size"), [(UnitList, (1, 1, 10)), (UnitDict, (1, 1, 3, 3))], ids=["list", "dict"]
)
def test_uncalled_containers_are_rows_at_tree_depth(model: type[nn.Module], size: tuple) -> None:
    result = trace(model(), size)
    same_rows(result, torchinfo_rows(model(), input_size=size))
    container = next(r for r in result.records if not r.called)
    assert container.depth == 1 and container.container and container.output_shapes is None
    check_sums(result)


def test_uncalled_container_sums_and_table() -> None:
    result = trace(UnitList(), (1, 1, 10))
    ml = result.get("ml")
    # 3 units x Conv1d(1, 1, 1) on 10 positions: 3 * 10 = 30 MACs, 3 * 2 = 6 params
    assert (ml.macs, ml.macs_total, ml.params, ml.params_total) == (0, 30, 0, 6)
    assert result.get("ml.0.conv").depth == 3
    table = result.summary(depth=1).splitlines()
    assert table[3].split() == ["ml", "(ModuleList)", "-", "6", "30", "30"]
    frame = result.to_dataframe()
    assert frame.loc[frame["name"] == "ml", "called"].tolist() == [False]
    # the observed graph is untouched: no node or group for the container
    assert all("ml" not in (n.id, *n.scope) for n in result.nodes)
    assert (
        result.nodes[1].id == "ml.0.conv"
        and result.records[result.nodes[1].record].name == "ml.0.conv"
    )


def test_shared_module_in_nested_lists_follows_torchinfo() -> None:
    """torchinfo's convention: a shared module sits under the module that called it, and a
    container is shown again where its children resume; its params are listed once."""
    result = trace(SharedInNestedLists(), (1, 4))
    # torchinfo's expected output for this case (tests/test_output/
    # shared_module_in_nested_list.out, written after its fix of issue #327; the 1.8.0
    # release itself still puts the shared ReLU under the last block)
    block = [(2, "_Block"), (3, "ModuleList"), (4, "Linear"), (3, "ReLU"), (3, "ModuleList"),
             (4, "Linear"), (3, "ReLU")]  # fmt: skip
    expected = [(0, "SharedInNestedLists"), (1, "ModuleList"), *block, *block]
    assert [(r.depth, r.type) for r in result.records] == expected
    layers = [r for r in result.records if r.name == "blocks.0.layers"]
    assert [(r.call, r.params_total, r.depth) for r in layers] == [(0, 40, 3), (1, 40, 3)]
    # cut at depth 3, the list's parameters are listed once: 2 x Linear(4, 4) = 2 * 20
    shown = [line.split()[3] for line in result.summary(depth=3).splitlines() if "layers" in line]
    assert shown == ["40", "--", "40", "--"]
    check_sums(result)


# -- done as a torchinfo user would: the CLI ------------------------------------------------


FACTORIES = """
import torch
from torch import nn
from tests.test_torchinfo_parity import LazyNet, LinearStack, ScaleNet, UnitList, _script

def lazy():
    return LazyNet()

def scripted():
    return _script(LinearStack())

def listed():
    return UnitList()

def scalar():
    return ScaleNet()
"""


@pytest.mark.parametrize(
    ("factory", "size", "row"),
    [
        ("lazy", "3x5", "fc1 (Linear)"),
        ("scripted", "4x16", "  0 (Linear)"),
        ("listed", "1x1x10", "ml (ModuleList)"),
    ],
)
def test_cli_tables(tmp_path, monkeypatch, factory: str, size: str, row: str) -> None:
    (tmp_path / "parity_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = CliRunner().invoke(cli, ["trace", f"parity_factories:{factory}", "--input", size])
    assert out.exit_code == 0, out.output
    assert any(line.startswith(row) for line in out.output.splitlines())


def test_cli_scalar_model_says_why_in_one_line(tmp_path, monkeypatch) -> None:
    """--input gives one shape; a model that needs a second (0-d) input fails in one line."""
    (tmp_path / "parity_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = CliRunner().invoke(cli, ["trace", "parity_factories:scalar", "--input", "1x10"])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "missing 1 required positional argument: 't'" in out.output
