"""reBEN (BigEarthNet v2.0): ``BigEarthNet-S2/<tile product>/<patch>/<patch>_<band>.tif``.

Labels, split, country and flags come from ``metadata.parquet`` (480,038 patches; the 69,450 with
seasonal snow, cloud or shadow are in ``metadata_for_patches_with_snow_cloud_or_shadow.parquet``).
S1 patches are ``BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_{VV,VH}.tif``, where the scene is the first
five ``_``-separated fields of ``s1_name``.  Acquisition time is read from the product name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ArchiveError, PatchError
from ..geo import time_from_product
from ..labels import label_indices
from .base import ArchiveSpec, OnError, ScanRecord, find_s1

COLUMNS = (
    "patch_id",
    "labels",
    "split",
    "country",
    "s1_name",
    "s2v1_name",
    "contains_seasonal_snow",
    "contains_cloud_or_shadow",
)
EXTRA_NAME = "metadata_for_patches_with_snow_cloud_or_shadow.parquet"
S1_FOLDER = "BigEarthNet-S1"
S1_TARBALLS = ("BigEarthNet-S1.tar.zst", "BigEarthNet-S1.tar")
"""The published S1 download's names, found beside the S2 part when its unpacked folder is not."""


def tile_product(patch_id: str) -> str:
    """``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57`` -> ``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP``."""
    return patch_id.rsplit("_", 2)[0]


def s1_scene(s1_name: str) -> str:
    """``S1B_IW_GRDH_1SDV_20170612T165809_33UUP_26_57`` -> ``S1B_IW_GRDH_1SDV_20170612T165809``."""
    return "_".join(s1_name.split("_")[:5])


def read_metadata(path: Path, official: bool) -> pa.Table:
    """A reBEN metadata parquet, checked for the expected columns, with an ``_official`` flag column."""
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as err:
        raise ArchiveError(f"cannot read {path} as parquet ({err}); download metadata.parquet again") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise ArchiveError(f"{path} lacks columns {missing}; is it reBEN's metadata.parquet?")
    table = table.select(list(COLUMNS))
    return table.append_column("_official", pa.array([official] * table.num_rows, pa.bool_()))


def record_from_row(row: dict, origin: str, with_s1: bool) -> ScanRecord:
    patch = row["patch_id"]
    names = row["labels"]
    if not names:
        raise PatchError(patch, "empty_labels", "no labels in metadata", origin)
    try:
        labels_19 = label_indices(names, 19)
    except KeyError as err:
        raise PatchError(
            patch, "unknown_label", f"unknown label {err}; reBEN labels are the 19-class names", origin
        ) from None
    split = {"train": "train", "validation": "validation", "test": "test"}.get(row["split"])
    if split is None:
        raise PatchError(patch, "bad_split", f"split {row['split']!r} is not train/validation/test", origin)
    s1 = row["s1_name"]
    return ScanRecord(
        patch_id=patch,
        labels_19=labels_19,
        s2_dir=f"{tile_product(patch)}/{patch}",
        s1_patch_id=s1,
        s1_dir=f"{s1_scene(s1)}/{s1}" if with_s1 and s1 else None,
        acquisition_time=time_from_product(patch),
        tile_source=tile_product(patch),
        country=row["country"],
        s2v1_name=row["s2v1_name"],
        flags={
            "seasonal_snow": bool(row["contains_seasonal_snow"]),
            "cloud_or_shadow": bool(row["contains_cloud_or_shadow"]),
        },
        official=split if row["_official"] else None,
    )


def scan(spec: ArchiveSpec, on_error: OnError) -> Iterator[ScanRecord]:
    """Scan records from the metadata files, sorted by patch id (no pixel file is opened)."""
    metadata, extra = spec.metadata, spec.metadata_extra
    if metadata is None:  # none in the folder nor given: the published pair, downloaded once and verified
        from ..reben import fetch_metadata

        metadata, extra = fetch_metadata()
    tables = [read_metadata(metadata, official=True)]
    if extra is not None:
        tables.append(read_metadata(extra, official=False))
    table = pa.concat_tables(tables)
    del tables
    order = pc.sort_indices(table, sort_keys=[("patch_id", "ascending")])  # no sorted copy of the table
    for start in range(0, table.num_rows, 20_000):
        for row in table.take(order[start : start + 20_000]).to_pylist():
            origin = str(metadata if row["_official"] else extra)
            try:
                yield record_from_row(row, origin, spec.with_s1)
            except PatchError as err:
                on_error(err)


def locate(root: Path, with_s1: bool) -> ArchiveSpec | None:
    """A v2 spec when ``root`` holds ``BigEarthNet-S2`` (S1 beside it when asked: its folder, else its tarball); its
    metadata is ``root``'s ``metadata.parquet`` (and the snow/cloud companion when beside it), or ``None`` when
    absent: the scan then fetches the published pair."""
    if not (root / "BigEarthNet-S2").exists():
        return None
    metadata, extra = root / "metadata.parquet", root / EXTRA_NAME
    return ArchiveSpec(
        "v2",
        s2=root / "BigEarthNet-S2",
        s1=find_s1(root, (S1_FOLDER,), S1_TARBALLS) if with_s1 else None,
        metadata=metadata if metadata.is_file() else None,
        metadata_extra=extra if metadata.is_file() and extra.is_file() else None,
    )
