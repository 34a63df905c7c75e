"""The typed configuration of one training run; saved as ``config.json`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ben_hub.bands import RGB

MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "shortcnn": {"lr": 1e-3, "batch_size": 300},  # the paper's choices (Fig. 5a)
    "inception_v3": {"lr": 1e-2, "batch_size": 200},  # (Fig. 5b)
}


@dataclass(frozen=True)
class TrainConfig:
    """One run: data, model, optimisation.  ``None`` learning rate or batch size takes the paper's value.

    Attributes:
        repo: a built repository folder (or a Hub id, downloaded first).
        config: ``original`` or ``resampled``.
        bands: input bands (default RGB: B04, B03, B02).
        labels: ``labels`` (43 classes) or ``labels_19``.
        weights: InceptionV3 ImageNet weights (a local file, or a timm tag fetched from the Hub).
        device_cache: keep the split on the accelerator and batch there.
        cache_dir: decode each split once into memory-mapped ``.npy`` files there (faster epochs on CPU).
        max_batches: stop each epoch's training after this many batches (quick checks only).
        compile: wrap the model in ``torch.compile`` (first steps compile; later ones run faster on a GPU).
    """

    repo: str
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
    threshold: float = 0.5
    max_batches: int | None = None
    compile: bool = False
    out: str = "runs"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else MODEL_DEFAULTS[self.model]["lr"]

    @property
    def batch(self) -> int:
        return self.batch_size if self.batch_size is not None else int(MODEL_DEFAULTS[self.model]["batch_size"])

    @property
    def run_name(self) -> str:
        return f"{self.model}-{self.config}-seed{self.seed}"

    def run_dir(self) -> Path:
        return Path(self.out) / self.run_name

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(bands=list(self.bands), learning_rate=self.learning_rate, batch=self.batch)
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
