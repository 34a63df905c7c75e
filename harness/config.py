"""The typed configuration of one training run; saved as ``config.json`` in the run folder."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ben_hub.bands import RGB

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import torch
    from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's

MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "shortcnn": {"lr": 1e-3, "batch_size": 300},  # the paper's choices (Fig. 5a)
    "inception_v3": {"lr": 1e-2, "batch_size": 200},  # (Fig. 5b)
}


@dataclass(frozen=True)
class Knob:
    """One kernel knob: the :class:`KernelChoices` field it sets, whether it takes a value (``pad-stem=8``) and
    its ``train.py`` help."""

    field: str
    valued: bool
    help: str


KNOBS: dict[str, Knob] = {
    "aten-max-pool": Knob("aten_max_pool", False, "with --compile: max pools by ATen's kernels, not inductor's "
                          "(same values)"),
    "pad-stem": Knob("pad_stem", True, "zero-pad the stem convolution's input channels to N, e.g. 8 (same values)"),
    "eager-batches": Knob("eager_batches", False, "form batches by eager kernels, not one compiled kernel "
                          "(the CUDA default)"),
    "fused-sgd": Knob("fused_sgd", False, "SGD's fused kernel, one launch for all parameters (same values; "
                      "InceptionV3 ran 26% slower with it on an H200; refused with --momentum under fp16)"),
    "coordinate-descent": Knob("coordinate_descent", False, "with --compile on a GPU: inductor tunes each "
                               "generated kernel's block sizes (longer compilation)"),
}  # fmt: skip
"""Kernel knobs by name (``train.py --NAME``, ``+NAME`` in benchmark variants)."""
KNOB_SYNTAX = ", ".join(f"{name}=N" if knob.valued else name for name, knob in KNOBS.items())
"""The knobs as they are written: ``aten-max-pool, pad-stem=N, ...`` (for help and error texts)."""


@dataclass(frozen=True)
class KernelChoices:
    """Choices that change which kernels a step runs, not what it computes (the same results to float rounding;
    on the CPU in the tests, ATen's max pools and both ways of forming batches bit for bit, the padded stem bit for
    bit in training steps), each at its default unless asked: ``train.py`` options, :class:`TrainConfig` fields,
    and knobs of the GPU benchmarks' variants (``MODEL:MODE+aten-max-pool+pad-stem=8``), named in :data:`KNOBS`.

    Attributes:
        aten_max_pool: max pools by ATen's kernels inside compiled graphs (:mod:`harness.pooling`), opaque to
            ``torch.compile``, instead of inductor's generated ones: the same values and gradients.  Inductor's
            fused max-pool backward took 12% of InceptionV3's GPU time on one H100 under CUDA graphs, yet the
            ATen route was slower there (3,803 images/s against 3,952).  Eager runs use ATen's kernels either way.
        pad_stem: the first convolution's input channels padded with zeros to this many
            (:class:`harness.models.PaddedStemConv`), e.g. 8 for the tensor cores' 16-byte alignment of bf16.
            ShortCNN on one H100 under CUDA graphs: 62,113 images/s with 8 against 61,332 (its 3-channel stem ran
            a cuDNN kernel without tensor cores, 24.6% of the GPU time).  InceptionV3 on one H200, timed only
            with ``fused_sgd``: 3,246 images/s with 8 against 3,286 without (two calls on one machine).
        eager_batches: batches formed on the accelerator by PyTorch's eager kernels, not by the one compiled
            kernel that ``DeviceCache`` and ``DeviceBatches`` use on CUDA (``ben_hub.loader``).
        fused_sgd: SGD's fused kernel (``torch.optim.SGD(fused=True)``: one launch for all parameters; InceptionV3
            has 284 parameter tensors) instead of its default, a few launches over lists of them (``foreach``).
            Outside compiled graphs, so it runs under any compile mode; the same values bit for bit on the CPU.
            Slower on one H200 under CUDA graphs: InceptionV3 3,286 images/s against 4,414 with the default
            (``bench/gpu_check.py``, two calls on one machine; not profiled, so the cause is not known).
        coordinate_descent: inductor tunes the block sizes of each kernel it generates by coordinate descent
            (``torch._inductor.config.coordinate_descent_tuning``) while compiling: longer compilation; on
            GPUs only (Triton kernels); not yet timed on a GPU.
    """

    aten_max_pool: bool = False
    pad_stem: int | None = None
    eager_batches: bool = False
    fused_sgd: bool = False
    coordinate_descent: bool = False

    @classmethod
    def parse(cls, knobs: list[str]) -> KernelChoices:
        """From knob names (:data:`KNOBS`): ``aten-max-pool``, ``pad-stem=N``, ``eager-batches``, ``fused-sgd``,
        ``coordinate-descent``.

        Raises:
            ValueError: naming the knob and the known ones.
        """
        values: dict[str, Any] = {}
        for knob in knobs:
            name, _, value = knob.partition("=")
            known = KNOBS.get(name)
            if known is None or bool(value) != known.valued or (value and not (value.isdigit() and int(value) > 0)):
                raise ValueError(f"unknown kernel knob {knob!r}: expected one of {KNOB_SYNTAX}")
            values[known.field] = int(value) if known.valued else True
        return cls(**values)

    def _chosen(self) -> list[tuple[str, Any, bool]]:
        """(knob name, value, takes a value) of each knob not at its default."""
        return [(name, getattr(self, knob.field), knob.valued) for name, knob in KNOBS.items()
                if getattr(self, knob.field)]  # fmt: skip

    @property
    def names(self) -> list[str]:
        """The knobs that are on, as :meth:`parse` reads them."""
        return [f"{name}={value}" if valued else name for name, value, valued in self._chosen()]

    @property
    def train_args(self) -> list[str]:
        """The ``train.py`` options that choose them."""
        return [arg for name, value, valued in self._chosen() for arg in [f"--{name}", *([str(value)] * valued)]]

    @property
    def batch_fuse(self) -> bool | None:
        """The loaders' ``fuse``: ``False`` for eager batches, else ``None`` (their default: fused on CUDA)."""
        return False if self.eager_batches else None

    def optimizer(self, params: Iterable[nn.Parameter], lr: float, momentum: float = 0.0) -> torch.optim.SGD:
        """The run's SGD over ``params``: fused when asked, else PyTorch's default implementation."""
        import torch

        return torch.optim.SGD(params, lr=lr, momentum=momentum, fused=True if self.fused_sgd else None)

    def check_scaled(self, momentum: float, scaled: bool) -> None:
        """Refuse the fused SGD with momentum where a gradient scaler steps it (fp16 mixed precision on CUDA):
        PyTorch's fused kernel creates the momentum buffers uninitialised (``torch.empty_like``) on the first step,
        and when the scaler skips that step for an overflow, as fp16's first steps often do, the buffers are left
        so and are read as momentum from the next step on (seen here with torch 2.14 on the CPU;
        LibreYOLO/libreyolo#771 reports momentum spoilt by fp16's first overflowing steps on CUDA with torch
        2.11).  PyTorch's default SGD creates its buffers only on a step it takes.

        Raises:
            RunError: naming both options and the ways out.
        """
        from ben_hub.errors import RunError

        if self.fused_sgd and momentum and scaled:
            raise RunError(f"--fused-sgd with --momentum {momentum:g} under fp16 mixed precision: PyTorch's fused "
                           "SGD leaves its momentum buffers uninitialised when the gradient scaler skips an "
                           "overflowing first step, as fp16's first steps often do; drop --fused-sgd (it was also "
                           "the slower one on a GPU) or train in bf16")  # fmt: skip

    def restore(self, optimizer: torch.optim.Optimizer) -> None:
        """After loading a checkpoint into ``optimizer``: its implementation as chosen here again (PyTorch's
        ``load_state_dict`` takes the saved one, ``fused`` included, along with the state)."""
        for group in optimizer.param_groups:
            group["fused"] = True if self.fused_sgd else None

    def apply(self, model: nn.Module) -> nn.Module:
        """``model`` with the model-side choices made (the stem padded); call before compiling it."""
        from harness.models import pad_stem

        return pad_stem(model, self.pad_stem) if self.pad_stem else model

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The process-wide choices (ATen's max pools, inductor's tuning), for as long as compiled models run:
        compiled graphs trace and compile at their first calls."""
        from harness.pooling import aten_max_pools

        with aten_max_pools(self.aten_max_pool), self._inductor_settings():
            yield

    def _inductor_settings(self) -> contextlib.AbstractContextManager[Any]:
        if not self.coordinate_descent:
            return contextlib.nullcontext()
        import torch._inductor.config as inductor

        return inductor.patch(coordinate_descent_tuning=True)


@dataclass(frozen=True)
class TrainConfig:
    """One run: data, model, optimisation.  ``None`` learning rate or batch size takes the paper's value.

    Attributes:
        repo: a built repository folder (or a Hub id, downloaded first).
        revision: with a Hub id, the dataset revision (branch, tag or commit) to train on; the run records the
            commit it resolved to and the digest of the repository's ``manifest.json`` either way.
        config: ``original`` or ``resampled``.
        bands: input bands (default RGB: B04, B03, B02).
        labels: ``labels`` (43 classes) or ``labels_19``.
        weights: InceptionV3 ImageNet weights (a local file, or a timm tag fetched from the Hub).
        device_cache: keep the split on the accelerator and batch there.
        cache_dir: decode each split once into memory-mapped ``.npy`` files there (faster epochs on CPU).
        loader_threads: threads decoding row groups per process (default: the cores over the processes, at
            most 8); any number gives the same batches.
        max_batches: stop each epoch's training after this many batches (quick checks only).
        eval_batch_size: batch size for validation and test (default: the training batch).  It changes no
            result: evaluation is per image.  Inference holds no activations for backward, so larger batches fit.
        compile: ``torch.compile`` mode (one of :data:`COMPILE_MODES`) or ``None`` for eager.  The first
            steps compile; later ones run faster on a GPU.  On one H100 ``reduce-overhead`` (CUDA graphs) trains
            InceptionV3 at 3,952 images/s against 2,200 eager and about 3,000 with ``default``; ShortCNN at
            61,000 (58,000 with ``default`` in an earlier run) (BENCHMARKS.md).  CUDA graphs were measured with
            one process only.
        kernels: choices of the kernels a step runs, not of what it computes (:class:`KernelChoices`; saved
            as ``kernels`` in ``config.json``).
        deterministic: cuDNN's deterministic algorithms instead of the fastest ones it benchmarks per shape
            (``cudnn.benchmark``, the default on CUDA); reruns then match bit for bit on the same GPU.
    """

    repo: str
    revision: str | None = None
    config: str = "resampled"
    model: str = "shortcnn"
    bands: tuple[str, ...] = RGB
    labels: str = "labels"
    epochs: int = 100
    lr: float | None = None
    batch_size: int | None = None
    momentum: float = 0.0
    seed: int = 0
    weights: str | None = None
    device_cache: bool = False
    cache_dir: str | None = None
    loader_threads: int | None = None
    threshold: float = 0.5
    max_batches: int | None = None
    eval_batch_size: int | None = None
    compile: str | None = None
    kernels: KernelChoices = KernelChoices()
    deterministic: bool = False
    out: str = "runs"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else MODEL_DEFAULTS[self.model]["lr"]

    @property
    def batch(self) -> int:
        return self.batch_size if self.batch_size is not None else int(MODEL_DEFAULTS[self.model]["batch_size"])

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size if self.eval_batch_size is not None else self.batch

    @property
    def run_name(self) -> str:
        return f"{self.model}-{self.config}-seed{self.seed}"

    def run_dir(self) -> Path:
        return Path(self.out) / self.run_name

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(
            bands=list(self.bands), learning_rate=self.learning_rate, batch=self.batch, eval_batch=self.eval_batch
        )
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
