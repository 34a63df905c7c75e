"""The typed configuration of one training run; saved as ``config.json`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ben_hub.bands import RGB

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's

MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "shortcnn": {"lr": 1e-3, "batch_size": 300},  # the paper's choices (Fig. 5a)
    "inception_v3": {"lr": 1e-2, "batch_size": 200},  # (Fig. 5b)
}


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
            InceptionV3 at 3,920 images/s against 2,200 eager and about 3,000 with ``default``; ShortCNN runs
            alike in both modes (58,000) (BENCHMARKS.md).  CUDA graphs were measured with one process only.
        aten_max_pool: max pools run ATen's kernels, opaque to ``torch.compile``, instead of inductor's generated
            ones (:mod:`harness.pooling`): the same values and gradients, other kernels.  Inductor's fused max-pool
            backward took 12% of InceptionV3's GPU time on one H100 under CUDA graphs; the ATen route is not yet
            timed on a GPU.  Eager runs use ATen's kernels either way.
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
    aten_max_pool: bool = False
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
