"""ben-hub: BigEarthNet as a balanced, documented Hugging Face parquet dataset.

Public API, importable from ``ben_hub`` directly (each loaded on first use, so ``import ben_hub`` stays cheap
and needs no torch): :class:`BuildConfig` (run by ``ben_hub.build.build``; ``ben_hub.build`` is the module),
:func:`estimate_build` (a build's counts, size and time before it runs), :func:`locate_archive`, :func:`split`,
:func:`synth_archive`, :func:`resolve_repo`, :func:`verify_repo` (a folder, or a Hub id checked on the Hub); for
training, :class:`SplitReader` with :class:`LoaderConfig`, :class:`DeviceCache`, :class:`DeviceBatches` and
:class:`PatchDataset` (torch); :func:`true_colour` to look at a patch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "BuildConfig": "ben_hub.build",
    "estimate_build": "ben_hub.estimate",
    "locate_archive": "ben_hub.archive",
    "split": "ben_hub.splits",
    "synth_archive": "ben_hub.archive.synth",
    "resolve_repo": "ben_hub.hub",
    "verify_repo": "ben_hub.remote",
    "SplitReader": "ben_hub.loader",
    "LoaderConfig": "ben_hub.loader",
    "DeviceCache": "ben_hub.loader",
    "DeviceBatches": "ben_hub.loader",
    "PatchDataset": "ben_hub.dataset",
    "true_colour": "ben_hub.gallery",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'ben_hub' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
