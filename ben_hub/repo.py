"""The repository a build produces: layout, configurations, manifest, README.

::

    <repo>/
      README.md                   dataset card: YAML configs + dataset_info, then the body (cards/)
      manifest.json               every shard: path, cell, rows, bytes, sha256; split sizes per config
      skipped.json                every patch left out, with the reason (empty list when none)
      build.json                  the settings of the build
      data/<orig>-<resampled>/part-*.parquet      one folder per (official split, resampled split) cell
      data/excluded/part-*.parquet                patches outside the official set

Each patch is stored once; a configuration's split is a glob over cells: ``original`` train is
``data/train-*/*.parquet``, ``resampled`` train is ``data/*-train/*.parquet``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RepoError

if TYPE_CHECKING:
    import datasets
from .splits import SPLITS

CONFIGS: dict[str, dict[str, str]] = {
    "original": {s: f"data/{s}-*/*.parquet" for s in SPLITS},
    "resampled": {s: f"data/*-{s}/*.parquet" for s in SPLITS},
    "excluded": {"excluded": "data/excluded/*.parquet"},
}
DEFAULT_CONFIG = "resampled"
SHARED_TEST = "test-test"
"""The cell of the patches that both ``original`` and ``resampled`` hold out for test: neither configuration's
model trains or selects its epoch on them, so both are scored on the same patches there (with the paper's published
lists, 24,982 patches of v1: 19.8% of the official test split's 125,866, 24.1% of the resampled one's 103,785;
``bench/spatial.py``)."""
SHARED_VALIDATION = "validation-validation"
"""The cell of the patches in both configurations' validation split: neither trains on them, so the validation
losses of the two configurations' models can be compared on the same patches there."""
REPOSITORY_FILES = ("manifest.json", "skipped.json", "build.json", "stats.json", "label_counts.png", "README.md")
"""What a build writes (``README.md`` last) beside the shards (:func:`ben_hub.build.finalize`)."""
OPTIONAL_FILES = ("examples.png", "leaderboard.json", "losses.png", "per_class_f1.png")
"""Files beside the shards that a repository may also have: the card's example patches (none without B02-B04),
the leaderboard's table, its loss curves and its per-class F1 plot (``ben-hub leaderboard --repo``)."""
OWN_FILES = REPOSITORY_FILES + OPTIONAL_FILES
"""Every file ben-hub writes beside the shards: what ``push`` publishes, with the shards of ``manifest.json``."""

FINISH = "run the same `ben-hub build` command again to finish it (the shards it wrote are kept)"

PRIVATE_DIR = ".ben-hub"
"""Build bookkeeping (shard records, settings): never published."""


def is_repo_id(text: str) -> bool:
    """``OWNER/NAME``: two non-empty parts, the shape of a Hub repository id (``push`` publishes under no other)."""
    return text.count("/") == 1 and all(text.split("/"))


def is_shard_path(path: str) -> bool:
    """A parquet file under ``data/`` (relative path): a shard, which a configuration's glob may read."""
    return path.startswith("data/") and path.endswith(".parquet")


def split_patterns(config: str, splits: tuple[str, ...] | list[str]) -> list[str]:
    """The files a reader of these splits of ``config`` needs from a repository: its JSON files, the card and
    the splits' shards (``resampled`` train alone is 60% of the shards; the ``excluded`` ones are never needed
    for training)."""
    missing = [s for s in splits if s not in CONFIGS.get(config, {})]
    if missing:
        raise RepoError(f"no split {missing[0]!r} in configuration {config!r}; choose from {list(CONFIGS)}")
    return ["*.json", "README.md", *(CONFIGS[config][s] for s in splits)]


def cell_of(relpath: str) -> str:
    """``data/train-test/part-00000-of-00001.parquet`` -> ``train-test``."""
    return relpath.split("/")[1]


def cell_in_split(cell: str, config: str, split: str) -> bool:
    """Whether a cell's shards belong to ``split`` of ``config`` (mirrors the globs of :data:`CONFIGS`)."""
    if config == "excluded":
        return cell == "excluded"
    if cell == "excluded":
        return False
    original, resampled = cell.split("-")
    return (original if config == "original" else resampled) == split


def in_config_order(per_config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{config: {split: ...}}`` reordered as :data:`CONFIGS` lists them (JSON files store keys sorted)."""
    return {c: {s: per_config[c][s] for s in splits if s in per_config[c]}
            for c, splits in CONFIGS.items() if c in per_config}  # fmt: skip


def split_sizes(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """Rows and bytes of every (config, split) from the shard records."""
    sizes: dict[str, dict[str, dict[str, int]]] = {}
    for config, split_globs in CONFIGS.items():
        for split in split_globs:
            chosen = [r for r in records if cell_in_split(cell_of(r["path"]), config, split)]
            if chosen:
                sizes.setdefault(config, {})[split] = {
                    "num_examples": sum(r["rows"] for r in chosen),
                    "num_bytes": sum(r["bytes"] for r in chosen),
                }
    return sizes


def yaml_header(feats: datasets.Features, sizes: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any]:
    """The card's YAML: ``configs`` with ``data_files`` globs and ``dataset_info`` with features and sizes."""
    import datasets

    configs, infos = [], []
    feature_yaml = datasets.DatasetInfo(features=feats)._to_yaml_dict()["features"]
    for config, split_sizes_ in in_config_order(sizes).items():
        entry: dict[str, Any] = {"config_name": config}
        if config == DEFAULT_CONFIG:
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": CONFIGS[config][s]} for s in split_sizes_]
        configs.append(entry)
        total = sum(v["num_bytes"] for v in split_sizes_.values())
        infos.append(
            {
                "config_name": config,
                "features": feature_yaml,
                "splits": [{"name": s, **v} for s, v in split_sizes_.items()],
                "download_size": total,
                "dataset_size": total,
            }
        )
    return {"configs": configs, "dataset_info": infos}


def manifest(records: list[dict[str, Any]], sizes: dict, n_index: int) -> dict[str, Any]:
    """``manifest.json``: every shard (path, cell, rows, bytes, sha256), split sizes, counts."""
    shards = [
        {k: r[k] for k in ("path", "rows", "bytes", "sha256")} | {"cell": cell_of(r["path"])}
        for r in sorted(records, key=lambda r: r["path"])
    ]
    return {
        "format": "ben-hub/1",
        "patches_scanned": n_index,
        "rows": sum(r["rows"] for r in records),
        "splits": sizes,
        "shards": shards,
    }


def load_json(root: Path, name: str) -> Any:
    """One of the repository's JSON files, or a :class:`RepoError` saying the build is unfinished."""
    try:
        return json.loads((root / name).read_text())
    except FileNotFoundError:
        raise RepoError(f"{root} has no {name}: it is not a finished ben-hub build; {FINISH}") from None


def require_finished(root: Path) -> None:
    """Raise :class:`RepoError` naming the first of :data:`REPOSITORY_FILES` that ``root`` lacks: a build stopped
    after its shards and before its card (killed, or out of disk) has a manifest and no ``README.md``."""
    missing = [name for name in REPOSITORY_FILES if not (root / name).is_file()]
    if missing:
        raise RepoError(f"{root} has no {missing[0]}: it is not a finished ben-hub build; {FINISH}")


def load_manifest(root: Path) -> dict[str, Any]:
    return dict(load_json(root, "manifest.json"))


def build_files(root: Path, manifest: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """``(published, left out)``: the build's files (the shards of ``manifest.json`` and those of
    :data:`OWN_FILES` it has), sorted; and every other file in the folder (a shard
    the manifest does not list, notes, a download), which ``push`` leaves out.  Hidden folders at the top (the
    private build folder :data:`PRIVATE_DIR`, ``.git``, ``.cache``) are neither.  ``manifest``: ``root``'s, when
    read already."""
    shards = [shard["path"] for shard in (manifest or load_manifest(root))["shards"]]
    for path in shards:
        if not (root / path).is_file():
            raise RepoError(f"{root}: missing shard {path} (listed in manifest.json); {FINISH}")
    own = sorted(shards + [name for name in OWN_FILES if (root / name).is_file()])  # one commit: no order to keep
    present: set[str] = set()
    for folder, subfolders, names in os.walk(root):
        if Path(folder) == root:  # the build's own bookkeeping, git's, huggingface_hub's local-dir cache
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        present |= {str((Path(folder) / name).relative_to(root)) for name in names}
    return own, sorted(present - set(own))
