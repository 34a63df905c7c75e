"""Label matrices from what a user has: an unpacked archive (labels scan) or reBEN ``metadata.parquet``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..errors import SplitError
from ..labels import LABELS_19, LABELS_43, label_indices
from . import SPLITS


@dataclass(frozen=True)
class LabelSource:
    """Patch ids, their label matrix and class names, and the official split when known (-1 = none)."""

    patch_ids: list[str]
    Y: np.ndarray
    names: tuple[str, ...]
    official: np.ndarray | None


def from_metadata(path: Path) -> LabelSource:
    """reBEN ``metadata.parquet``: 19-class labels and the ``split`` column, sorted by patch id."""
    try:
        table = pq.read_table(path, columns=["patch_id", "labels", "split"]).sort_by("patch_id")
    except (OSError, ValueError, KeyError) as err:
        raise SplitError(f"cannot read patch_id/labels/split from {path} ({err})") from None
    Y = np.zeros((table.num_rows, 19), dtype=bool)
    for row, names in enumerate(table.column("labels").to_pylist()):
        Y[row, label_indices(names, 19)] = True
    splits = {s: i for i, s in enumerate(SPLITS)}
    official = np.array([splits.get(s, -1) for s in table.column("split").to_pylist()], dtype=np.int8)
    return LabelSource(table.column("patch_id").to_pylist(), Y, LABELS_19, official)


def from_archive(root: Path, lists_dir: Path | None, subset: bool = False) -> LabelSource:
    """An unpacked archive's labels (43 classes for v1, 19 for v2) and official split, via a build plan;
    ``subset``: the archive holds part of BigEarthNet (:class:`ben_hub.build.BuildConfig`)."""
    from ..archive import locate_archive
    from ..build import BuildConfig, Problems, label_matrix, scan_official

    spec = locate_archive(root, with_s1=False)
    lists_dir = lists_dir or (root / "splits" if (root / "splits").is_dir() else None)
    config = BuildConfig(spec=spec, lists_dir=lists_dir, subset=subset)
    index, official, _ = scan_official(config, Problems(skip=False))
    column, names = ("labels", LABELS_43) if spec.layout == "v1" else ("labels_19", LABELS_19)
    return LabelSource(index.column("patch_id").to_pylist(), label_matrix(index, column, len(names)), names, official)


def from_repository(root: Path) -> LabelSource:
    """A built repository: labels from its shards (only the label columns are read), official split from cells."""
    import json

    from ..repo import cell_of

    manifest = json.loads((root / "manifest.json").read_text())
    ids: list[str] = []
    rows: list[list[int]] = []
    official: list[int] = []
    column, names = None, LABELS_19
    for shard in manifest["shards"]:
        schema_names = pq.read_schema(root / shard["path"]).names
        column = "labels" if "labels" in schema_names else "labels_19"
        names = LABELS_43 if column == "labels" else LABELS_19
        table = pq.read_table(root / shard["path"], columns=["patch_id", column])
        ids += table.column("patch_id").to_pylist()
        rows += table.column(column).to_pylist()
        cell = cell_of(shard["path"])
        code = -1 if cell == "excluded" else SPLITS.index(cell.split("-")[0])
        official += [code] * table.num_rows
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    Y = np.zeros((len(ids), len(names)), dtype=bool)
    for i, labels in enumerate(rows):
        Y[i, labels] = True
    return LabelSource([ids[i] for i in order], Y[order], names, np.asarray(official, np.int8)[order])


def load_source(path: Path, lists_dir: Path | None = None, subset: bool = False) -> LabelSource:
    """A ``.parquet`` file is read as reBEN metadata, a folder with ``manifest.json`` as a built repository,
    any other folder as an archive (``subset``: one with part of BigEarthNet); the word ``reben`` is reBEN's
    published ``metadata.parquet`` (480,038 patches, downloaded once, :mod:`ben_hub.reben`)."""
    from ..reben import PUBLISHED, fetch_metadata, is_published

    if is_published(path):
        return from_metadata(fetch_metadata()[0])
    if not path.exists():
        raise SplitError(
            f"{path} does not exist; pass an archive folder, a built repository, a reBEN metadata.parquet, or "
            f"{PUBLISHED!r} for reBEN's published metadata"
        )
    if path.suffix == ".parquet":
        return from_metadata(path)
    if (path / "manifest.json").is_file():
        return from_repository(path)
    return from_archive(path, lists_dir, subset)
