"""Shared fixtures: synthetic archives from ben_hub's generator, and the real examples in ../shared."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ben_hub import leaderboard
from ben_hub.archive import locate_archive
from ben_hub.archive.synth import synth_archive
from ben_hub.build import BuildConfig, build

from .hub_server import FakeHub

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bigearthnet"
EXAMPLE = SHARED / "example"
SPLITS = SHARED / "splits"
V2_META = SHARED / "v2"


def needs_shared() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/bigearthnet is not beside the repository")


@pytest.fixture(scope="session")
def synth_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 160-patch synthetic v1 archive with S1 twins and its own split lists (read-only by convention)."""
    return synth_archive(tmp_path_factory.mktemp("v1") / "archive", 160, "v1", seed=7)


@pytest.fixture(scope="session")
def synth_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_archive(tmp_path_factory.mktemp("v2") / "archive", 120, "v2", seed=8)


@pytest.fixture()
def v1_copy(synth_v1: Path, tmp_path: Path) -> Path:
    """A private copy of the v1 archive that a test may damage."""
    return Path(shutil.copytree(synth_v1, tmp_path / "archive"))


def v1_config(archive: Path, **kw: object) -> BuildConfig:
    spec = locate_archive(archive, with_s1=bool(kw.pop("with_s1", True)))
    kw.setdefault("shard_size", 40)
    return BuildConfig(spec=spec, lists_dir=archive / "splits", **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def built_v1(synth_v1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic v1 archive built once with default settings (workers=1)."""
    out = tmp_path_factory.mktemp("built") / "balanced-bigearthnet"
    build(v1_config(synth_v1), out, progress=False)
    return out


TOKEN = "hf_test_secret_token_0123456789"
"""The token the fake Hub expects; tests check it never reaches output or files."""


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A local stand-in for the Hub (LFS protocol; Xet is switched off), with ``HF_TOKEN`` set."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with FakeHub() as server:
        yield server


def stored_run(runs: Path, seed: int, score: float, model: str = "shortcnn", config: str = "original",
               epochs: int = 100, **fields: Any) -> Path:  # fmt: skip
    """A finished run's folder as harness/train.py leaves it (``run.json`` with ``score`` for every metric,
    ``config.json``, ``best.pt``: the weights are mocked unless written over); ``fields`` go into ``run.json``."""
    run_dir = runs / f"{model}-{config}-seed{seed}"
    run_dir.mkdir(parents=True)
    settings = {"epochs": epochs, "labels": "labels", "bands": ["B04", "B03", "B02"], "seed": seed}
    run = {"model": model, "dataset_config": config, "seed": seed, "test": dict.fromkeys(leaderboard.METRICS, score),
           "weights_origin": "random", "history": [{"epoch": 0, "train_loss": 0.5, "val_loss": 0.4}],
           "best_epoch": 0, "config": settings, **fields}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(run))
    (run_dir / "config.json").write_text(json.dumps(settings))
    (run_dir / "best.pt").write_bytes(b"mocked weights")
    return run_dir
