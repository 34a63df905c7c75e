"""The baseline of ``bench/scale.py``: reBEN's metadata scanned a row at a time, as ben-hub did until cd3230e.

Each of the 549,488 rows became a Python dict, then a :class:`~ben_hub.archive.ScanRecord`, then a row of the
index again (``ben_hub.archive.base.index_table``), after reading every column of both parquet files.
:func:`install` puts this scan in place of the columnar one (:func:`ben_hub.archive.v2.index`) in this process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ben_hub.archive import LAYOUTS, ArchiveSpec, ScanRecord, v2
from ben_hub.archive.base import OnError, index_table
from ben_hub.errors import PatchError
from ben_hub.geo import time_from_product
from ben_hub.labels import label_indices


def read_metadata(path: Any, official: bool) -> pa.Table:
    table = pq.read_table(path).select(list(v2.COLUMNS))  # every column read, then the needed ones kept
    return table.append_column("_official", pa.array([official] * table.num_rows, pa.bool_()))


def record_from_row(row: dict[str, Any], origin: str, with_s1: bool) -> ScanRecord:
    patch = row["patch_id"]
    if not row["labels"]:
        raise PatchError(patch, "empty_labels", "no labels in metadata", origin)
    try:
        labels_19 = label_indices(row["labels"], 19)
    except KeyError as err:
        raise PatchError(patch, "unknown_label", f"unknown label {err}", origin) from None
    if row["split"] not in v2.SPLITS:
        raise PatchError(patch, "bad_split", f"split {row['split']!r}", origin)
    s1 = row["s1_name"]
    return ScanRecord(
        patch_id=patch, labels_19=labels_19, s2_dir=f"{v2.tile_product(patch)}/{patch}", s1_patch_id=s1,
        s1_dir=f"{v2.s1_scene(s1)}/{s1}" if with_s1 and s1 else None, acquisition_time=time_from_product(patch),
        tile_source=v2.tile_product(patch), country=row["country"], s2v1_name=row["s2v1_name"],
        flags={"seasonal_snow": bool(row["contains_seasonal_snow"]),
               "cloud_or_shadow": bool(row["contains_cloud_or_shadow"])},
        official=row["split"] if row["_official"] else None,
    )  # fmt: skip


def scan(spec: ArchiveSpec, on_error: OnError) -> Iterator[ScanRecord]:
    assert spec.metadata is not None
    tables = [read_metadata(spec.metadata, True)]
    if spec.metadata_extra is not None:
        tables.append(read_metadata(spec.metadata_extra, False))
    table = pa.concat_tables(tables)
    order = pc.sort_indices(table, sort_keys=[("patch_id", "ascending")])
    for start in range(0, table.num_rows, 20_000):
        for row in table.take(order[start : start + 20_000]).to_pylist():
            origin = str(spec.metadata if row["_official"] else spec.metadata_extra)
            try:
                yield record_from_row(row, origin, spec.with_s1)
            except PatchError as err:
                on_error(err)


def install() -> None:
    """Scan reBEN's metadata a row at a time in this process (the layout's record scan, gathered into the index)."""
    LAYOUTS["v2"] = dataclasses.replace(
        LAYOUTS["v2"], scan=scan, index=lambda spec, on_error, _: index_table(scan(spec, on_error))
    )
