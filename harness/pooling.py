"""Max pooling by ATen's kernels inside compiled graphs (``--aten-max-pool``).

Under ``torch.compile`` inductor generates its own max-pool kernels.  Its backward recomputes each window's
arg-max instead of reading saved indices and fuses that with the gradient sums of the branches around it: in one
H100 profile of InceptionV3 under CUDA graphs (``bench/reference/gpu_tune_h100_inception_2026-11-26.json``) its
three fused max-pool backward kernels took 12% of the GPU time (5.9 + 4.2 + 1.7%), the largest cost besides the
convolutions; the first alone, over 200 x 64 x 147 x 147 bf16 values, took 5.9% of a 50.6 ms step (about 3 ms),
where reading and writing those values once would take about 0.4 ms at the H100's nominal bandwidth (an
estimate, not measured).

:func:`aten_max_pools` routes ``F.max_pool2d`` (which ``nn.MaxPool2d`` and timm's InceptionV3 blocks call) to two
custom operators that inductor cannot see into, so the compiled step calls ATen's forward (saving int64 indices)
and ATen's index-reading backward.  Values and gradients equal the built-in ones (tested on the CPU, eager and
compiled); on the GPU it only changes which kernels run.  Whether it is faster there is measured by
``bench/gpu_tune.py`` and ``bench/gpu_check.py`` (variant ``inception_v3:reduce-overhead+aten-max-pool``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

_builtin_max_pool2d = F.max_pool2d


@torch.library.custom_op("ben_hub::max_pool2d", mutates_args=())
def max_pool2d(
    x: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """ATen's max pool with indices (no dilation, floor mode), as one operator opaque to inductor."""
    out, indices = torch.ops.aten.max_pool2d_with_indices(x, kernel, stride, padding)
    return out, indices


@torch.library.custom_op("ben_hub::max_pool2d_backward", mutates_args=())
def max_pool2d_backward(
    grad: torch.Tensor, x: torch.Tensor, indices: torch.Tensor, kernel: list[int], stride: list[int],
    padding: list[int],
) -> torch.Tensor:  # fmt: skip
    """ATen's max-pool backward: ``grad`` summed into the arg-max positions ``indices`` of each window."""
    return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, kernel, stride, padding, [1, 1], False, indices)


@max_pool2d.register_fake
def _(x: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    out, indices = torch.ops.aten.max_pool2d_with_indices(x, kernel, stride, padding)  # its meta kernel: shapes
    return out, indices


@max_pool2d_backward.register_fake
def _(grad: torch.Tensor, x: torch.Tensor, indices: torch.Tensor, kernel: list[int], stride: list[int],
      padding: list[int]) -> torch.Tensor:  # fmt: skip
    return torch.empty_like(x)


def _save_for_backward(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    ctx.save_for_backward(inputs[0], output[1])
    ctx.window = inputs[1:]


def _backward(ctx: Any, grad: torch.Tensor, _grad_indices: Any) -> tuple[Any, ...]:
    x, indices = ctx.saved_tensors
    return max_pool2d_backward(grad, x, indices, *ctx.window), None, None, None


max_pool2d.register_autograd(_backward, setup_context=_save_for_backward)


def _pair(value: Any) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _routed_max_pool2d(x: torch.Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                       ceil_mode: bool = False, return_indices: bool = False) -> Any:  # fmt: skip
    """``F.max_pool2d``'s signature; the calls the custom operators cover (no dilation, ceil mode or returned
    indices) go to them, any other to the built-in."""
    if _pair(dilation) != [1, 1] or ceil_mode or return_indices:
        return _builtin_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)  # type: ignore[call-overload]
    return max_pool2d(x, _pair(kernel_size), _pair(stride or kernel_size), _pair(padding))[0]


@contextlib.contextmanager
def aten_max_pools(on: bool = True) -> Iterator[None]:
    """While on, every ``F.max_pool2d`` call in this process (``nn.MaxPool2d`` included) runs :func:`max_pool2d`.

    Keep it on for as long as a compiled model runs: compiled graphs trace at their first call (and again for
    new shapes or ``eval()``), and a guard on the function sends the model back to tracing when it changes.
    """
    if not on:
        yield
        return
    F.max_pool2d = _routed_max_pool2d  # type: ignore[assignment]
    try:
        yield
    finally:
        F.max_pool2d = _builtin_max_pool2d
