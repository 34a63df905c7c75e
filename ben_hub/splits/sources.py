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


def from_archive(root: Path, lists_dir: Path | None) -> LabelSource:
    """An unpacked archive's labels (43 classes for v1, 19 for v2) and official split, via a build plan."""
    from ..archive import LAYOUTS, locate_archive
    from ..build import BuildConfig, Problems, check_duplicates, index_table, label_matrix, original_assignment

    spec = locate_archive(root, with_s1=False)
    config = BuildConfig(spec=spec, lists_dir=lists_dir or (root / "splits" if (root / "splits").is_dir() else None))
    problems = Problems(skip=False)
    index = index_table(LAYOUTS[spec.layout].scan(spec, problems))
    check_duplicates(index)
    official, index = original_assignment(config, index, problems)
    column, names = ("labels", LABELS_43) if spec.layout == "v1" else ("labels_19", LABELS_19)
    return LabelSource(index.column("patch_id").to_pylist(), label_matrix(index, column, len(names)), names, official)


def load_source(path: Path, lists_dir: Path | None = None) -> LabelSource:
    """A ``.parquet`` file is read as reBEN metadata; a folder as an archive."""
    return from_metadata(path) if path.suffix == ".parquet" else from_archive(path, lists_dir)
