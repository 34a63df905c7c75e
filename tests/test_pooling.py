"""``--aten-max-pool`` (``harness/pooling.py``): max pools by ATen's kernels through two custom operators give the
built-in values and gradients, eager and compiled, reach the compiled graph, and change no training result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

import torch
import torch.nn.functional as F
from torch import nn

from harness import pooling

from .test_harness import learnable  # noqa: F401  (the module's 600-patch repository fixture)


class Pools(nn.Module):
    """InceptionV3's pools (3x3 stride 2, overlapping, as a module and as ``F.max_pool2d``) and ShortCNN's (2x2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv(x)))
        return torch.cat([F.max_pool2d(x, kernel_size=3, stride=2), F.max_pool2d(x, 2, padding=1)[..., :7, :7]], 1)


def values_and_gradients(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Output and the gradients of input and weights for a loss with integer weights, so that sums of
    overlapping windows are exact whatever order they are added in."""
    x = x.detach().clone().requires_grad_()
    out = model(x)
    weights = torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape) % 5 - 2
    grads = torch.autograd.grad((out * weights).sum(), [x, *model.parameters()])
    return (out.detach(), *grads)


def same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.fixture
def model_and_input() -> tuple[Pools, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(3, 3, 35, 35).contiguous(memory_format=torch.channels_last)
    return Pools().to(memory_format=torch.channels_last), x


def test_eager_pools_run_the_custom_operators_with_the_builtin_results(model_and_input: Any) -> None:
    model, x = model_and_input
    expected = values_and_gradients(model, x)
    with pooling.aten_max_pools():
        got = values_and_gradients(model, x)
        out = F.max_pool2d(x.requires_grad_(), 3, 2)
        assert out.grad_fn is not None and "ben_hub_max_pool2d" in out.grad_fn.name()  # the custom operator
        dilated = F.max_pool2d(x, 3, 2, dilation=2)  # not covered: the built-in runs
        assert dilated.grad_fn is not None and "ben_hub" not in dilated.grad_fn.name()
        assert F.max_pool2d(x, 3, 2, ceil_mode=True).shape == torch.Size([3, 3, 17, 17])
    assert same(got, expected)
    assert F.max_pool2d is pooling._builtin_max_pool2d  # restored
    with pooling.aten_max_pools(False):
        assert F.max_pool2d is pooling._builtin_max_pool2d


def test_compiled_pools_reach_the_graphs_as_custom_operators_with_the_builtin_results(model_and_input: Any) -> None:
    """What inductor receives (AOTAutograd's forward and backward graphs) calls the custom operators for all
    three pools, so none is left to inductor's own kernels; inductor's compiled model gives the built-in results."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    model, x = model_and_input
    graphs: list[str] = []

    def capture(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Any:
        graphs.append(str(gm.graph))
        return make_boxed_func(gm.forward)

    expected = values_and_gradients(model, x)
    with pooling.aten_max_pools():
        torch._dynamo.reset()
        values_and_gradients(torch.compile(model, backend=aot_autograd(fw_compiler=capture, bw_compiler=capture)), x)
        forward, backward = graphs
        assert forward.count("ben_hub.max_pool2d.default") == 3 and "max_pool2d_with_indices" not in forward
        assert backward.count("ben_hub.max_pool2d_backward.default") == 3 and "max_pool2d_with_indices" not in backward
        torch._dynamo.reset()
        compiled = values_and_gradients(torch.compile(model), x)  # inductor, its C++ kernels on the CPU
    torch._dynamo.reset()
    assert same(compiled, expected)


def test_a_run_with_aten_max_pool_learns_exactly_as_one_without(
    learnable: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.config import KernelChoices, TrainConfig
    from harness.train import train_seeds

    calls: list[list[int]] = []
    counted = pooling.max_pool2d

    def counting(x: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int]) -> Any:
        calls.append(kernel)
        return counted(x, kernel, stride, padding)

    monkeypatch.setattr(pooling, "max_pool2d", counting)
    runs = {}
    for aten in (False, True):
        config = TrainConfig(repo=str(learnable), epochs=2, lr=0.05, batch_size=32, max_batches=4, loader_threads=1,
                             kernels=KernelChoices(aten_max_pool=aten), out=str(tmp_path / str(aten)))  # fmt: skip
        (runs[aten],) = train_seeds([config])
        assert bool(calls) == aten  # ShortCNN's two 2x2 pools a forward pass, only when asked
    assert calls[0] == [2, 2] and runs[True]["config"]["kernels"]["aten_max_pool"]
    assert runs[True]["history"] == runs[False]["history"] and runs[True]["test"] == runs[False]["test"]
    assert F.max_pool2d is pooling._builtin_max_pool2d
