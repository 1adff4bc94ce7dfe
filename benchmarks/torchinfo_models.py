"""Small models standing for the cases of torchinfo's own test suite (tests/torchinfo_test.py,
tests/fixtures/models.py in github.com/TylerYep/torchinfo), written here from the case
descriptions: each exercises the same summary behaviour (a reused layer, an iterated
ModuleList, a scripted model...), not the same code. Used by torchinfo_cases.py.
"""

from __future__ import annotations

import warnings
from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn


def script(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script announces its deprecation
        return torch.jit.script(module)


class MnistNet(nn.Module):
    """single_input: two convs, dropout, two linears, functional pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.drop = nn.Dropout2d(0.3)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.drop(self.conv2(x)), 2))
        return F.log_softmax(self.fc2(F.relu(self.fc1(x.flatten(1)))), dim=1)


class TwoBranches(nn.Module):
    """multiple_input_tensor_args / _dict: two inputs, each through its own linears."""

    def __init__(self) -> None:
        super().__init__()
        self.a1, self.a2 = nn.Linear(30, 12), nn.Linear(12, 4)
        self.b1, self.b2 = nn.Linear(30, 12), nn.Linear(12, 4)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.a2(F.relu(self.a1(x1))) + self.b2(F.relu(self.b1(x2)))


class TokenLSTM(nn.Module):
    """lstm: embedding, a two-layer LSTM, a linear head on every step."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 16)
        self.encoder = nn.LSTM(16, 24, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(24, 100)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(self.embedding(tokens))
        return self.decoder(out)


class SameConvSixTimes(nn.Module):
    """recursive: one conv called six times."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(6):
            x = self.conv(x)
        return x


class Siamese(nn.Module):
    """siamese_net: one branch applied to two inputs, then a distance head."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8)
        )
        self.head = nn.Linear(8, 1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(torch.abs(self.branch(x1) - self.branch(x2))))


class Nested(nn.Module):
    """container: Sequentials inside a child module inside a Sequential."""

    def __init__(self) -> None:
        super().__init__()
        inner = nn.Sequential(nn.Linear(5, 5), nn.ReLU())
        self.body = nn.Sequential(nn.Linear(5, 5), _Wrap(inner), nn.Linear(5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Wrap(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.extra = nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extra(self.inner(x))


class Choices(nn.Module):
    """module_dict: layers picked from ModuleDicts by keyword arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.choices = nn.ModuleDict({"conv": nn.Conv2d(3, 6, 3), "pool": nn.MaxPool2d(2)})
        self.acts = nn.ModuleDict({"lrelu": nn.LeakyReLU(), "prelu": nn.PReLU()})

    def forward(self, x: torch.Tensor, layer: str = "conv", act: str = "prelu") -> torch.Tensor:
        return self.acts[act](self.choices[layer](x))


class ConvUnit(nn.Module):
    def __init__(self, relu_first: bool) -> None:
        super().__init__()
        if relu_first:  # cnn_module_list B: registration order differs from call order
            self.relu = nn.ReLU()
        self.conv = nn.Conv1d(1, 1, 1)
        if not relu_first:
            self.relu = nn.ReLU()
        self.pool = nn.MaxPool1d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.conv(x)))


class UnitList(nn.Module):
    """cnn_module_list: a ModuleList iterated, never called."""

    def __init__(self, relu_first: bool = False) -> None:
        super().__init__()
        self.ml = nn.ModuleList([ConvUnit(relu_first) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.ml:
            x = unit(x)
        return x


class SharedReLUBlocks(nn.Module):
    """shared_module_in_nested_list: one ReLU shared by blocks holding ModuleLists."""

    def __init__(self) -> None:
        super().__init__()
        act = nn.ReLU()
        self.blocks = nn.ModuleList([_Block(act) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class _Block(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return x


class DictBlocks(nn.Module):
    """recursive_with_missing_layers: ModuleDicts read by key, with plain layers around."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.block = nn.ModuleDict()
        for i in range(2):
            self.block[f"conv{i}"] = nn.Conv2d(4, 4, 3, padding=1)
            self.block[f"bn{i}"] = nn.BatchNorm2d(4)
        self.last = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        for i in range(2):
            x = torch.relu(self.block[f"bn{i}"](self.block[f"conv{i}"](x)))
        return self.last(x)


class LinearStack(nn.Module):
    """jit: a Sequential of linears and ReLUs (scripted by the case)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class HalfScripted(MnistNet):
    """partial_jit: the MNIST net with scripted linears."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = script(nn.Linear(320, 50))
        self.fc2 = script(nn.Linear(50, 10))


class MakesItsParameter(nn.Module):
    """uninitialized_tensor: an UninitializedParameter the forward replaces."""

    def __init__(self) -> None:
        super().__init__()
        self.param = nn.UninitializedParameter()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.param = nn.Parameter(torch.zeros(64))
        return x


class LazyNet(nn.Module):
    """LazyLinear and LazyConv: shapes from the first input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.LazyConv2d(4, 3)
        self.fc = nn.LazyLinear(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class TimesScalar(nn.Module):
    """scalar_tensor_input_size: a tensor and a 0-d tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(10, 5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * t


class ReturnsDict(nn.Module):
    """return_dict: the output is a dict of tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.relu(self.conv(x))
        return {"features": features, "logits": self.fc(features.flatten(1))}


Pair = namedtuple("Pair", ["left", "right"])


class TakesNamedTuple(nn.Module):
    """namedtuple: the input is a namedtuple of tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, pair: Pair) -> torch.Tensor:
        return self.fc(pair.left + pair.right)


class Empty(nn.Module):
    """empty_module: no layers, returns its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ParamList(nn.Module):
    """parameter_list: parameters in a ParameterList, used by matmul, beside a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(8, 8)) for _ in range(2)])
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = x @ w
        return self.fc(x)


class ReusedReLU(nn.Module):
    """reusing_activation_layers: one ReLU module called between every layer."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class Tied(nn.Module):
    """tied weights: the embedding's weight is the output layer's."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 50, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(tokens))


class MixedTrainable(nn.Module):
    """mixed_trainable_parameters: one trainable and one frozen parameter in one module."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(10))
        self.b = nn.Parameter(torch.zeros(10), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w + self.b


class OwnParameters(nn.Module):
    """nested_leftover_params / custom_parameter: parameters held by non-leaf modules."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(2))
        self.inner = _Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.scale


class _Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(2))
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.shift


class AutoEncoder(nn.Module):
    """autoencoder: conv encoder, transposed-conv decoder, in Sequentials."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.decode = nn.Sequential(nn.ConvTranspose2d(4, 1, 2, stride=2), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class Grouped(nn.Module):
    """groups: a grouped convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class RegisteredParameter(nn.Sequential):
    """register_parameter: a Sequential subclass with a parameter of its own."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(2, 2), nn.Linear(2, 2))
        self.register_parameter("gain", nn.Parameter(torch.ones(2)))
