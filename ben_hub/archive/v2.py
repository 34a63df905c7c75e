"""reBEN (BigEarthNet v2.0): ``BigEarthNet-S2/<tile product>/<patch>/<patch>_<band>.tif``.

Labels, split, country and flags come from ``metadata.parquet`` (480,038 patches; the 69,450 with
seasonal snow, cloud or shadow are in ``metadata_for_patches_with_snow_cloud_or_shadow.parquet``).
S1 patches are ``BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_{VV,VH}.tif``, where the scene is the first
five ``_``-separated fields of ``s1_name``.  Acquisition time is read from the product name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ArchiveError, PatchError
from ..geo import time_from_product
from ..labels import LABELS_19
from .base import INDEX_COLUMNS, ONE_PROCESS, ArchiveSpec, OnError, ScanOptions, ScanRecord, find_s1, index_records

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
S2_FOLDER, S1_FOLDER = "BigEarthNet-S2", "BigEarthNet-S1"
S1_TARBALLS = ("BigEarthNet-S1.tar.zst", "BigEarthNet-S1.tar")
"""The published S1 download's names, found beside the S2 part when its unpacked folder is not."""


def tile_product(patch_id: str) -> str:
    """``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57`` -> ``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP``."""
    return patch_id.rsplit("_", 2)[0]


def s1_scene(s1_name: str) -> str:
    """``S1B_IW_GRDH_1SDV_20170612T165809_33UUP_26_57`` -> ``S1B_IW_GRDH_1SDV_20170612T165809``."""
    return "_".join(s1_name.split("_")[:5])


SPLITS = ("train", "validation", "test")
TILE_SUFFIX = r"(_[^_]*){1,2}$"
"""A patch id's last two ``_`` fields (its row and column in the tile): what :func:`tile_product` drops."""
S1_SCENE = r"^(?P<scene>[^_]*(?:_[^_]*){0,4})"
"""An S1 name's first five ``_`` fields: :func:`s1_scene`."""


def read_metadata(path: Path, official: bool) -> pa.Table:
    """A reBEN metadata parquet's :data:`COLUMNS` (only those are read), with an ``_official`` flag column."""
    try:
        missing = [c for c in COLUMNS if c not in pq.read_schema(path).names]
        if not missing:
            table = pq.read_table(path, columns=list(COLUMNS))
    except (OSError, ValueError) as err:
        raise ArchiveError(f"cannot read {path} as parquet ({err}); download metadata.parquet again") from None
    if missing:
        raise ArchiveError(f"{path} lacks columns {missing}; is it reBEN's metadata.parquet?")
    if table.column("patch_id").null_count:
        raise ArchiveError(f"{path}: {table.column('patch_id').null_count:,} rows have no patch_id; is it reBEN's "
                           "metadata.parquet? Correct or drop those rows")  # fmt: skip
    return table.append_column("_official", pa.repeat(pa.scalar(official), table.num_rows))


def metadata_table(spec: ArchiveSpec) -> tuple[pa.Table, tuple[str, str]]:
    """Both metadata files' rows, sorted by patch id, and the two files' names (official rows, then the others)."""
    metadata, extra = spec.metadata, spec.metadata_extra
    if metadata is None:  # none in the folder nor given: the published pair, downloaded once and verified
        from ..reben import fetch_metadata

        metadata, extra = fetch_metadata()
    tables = [read_metadata(metadata, official=True)]
    if extra is not None:
        tables.append(read_metadata(extra, official=False))
    return pa.concat_tables(tables).sort_by("patch_id"), (str(metadata), str(extra))


def label_lists(labels: pa.ChunkedArray) -> tuple[pa.ListArray, np.ndarray]:
    """Each row's label names as sorted, distinct 19-class ids, and per row the position (in the flattened names)
    of its first unknown name, or -1.  Null lists count as empty."""
    lists = labels.combine_chunks()
    flat, rows = pc.list_flatten(lists), pc.list_parent_indices(lists).to_numpy()
    codes = pc.fill_null(pc.index_in(flat, value_set=pa.array(LABELS_19)), -1).to_numpy().astype(np.int64)
    unknown = np.full(len(lists), -1, np.int64)
    where = np.flatnonzero(codes < 0)
    first_rows, first = np.unique(rows[where], return_index=True)
    unknown[first_rows] = where[first]
    order = np.lexsort((codes, rows))  # by row, then by id
    codes, rows = codes[order], rows[order]
    keep = codes >= 0
    keep[1:] &= (rows[1:] != rows[:-1]) | (codes[1:] != codes[:-1])
    offsets = np.zeros(len(lists) + 1, np.int32)
    np.cumsum(np.bincount(rows[keep], minlength=len(lists)), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(codes[keep])), unknown


def sensing_times(tiles: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Each row's sensing time, read once per tile product (:func:`~ben_hub.geo.time_from_product`; 115 in the
    published metadata), and a mask of the rows whose product name holds none."""
    encoded = pc.dictionary_encode(tiles)
    times: list[datetime | None] = []
    for name in encoded.dictionary.to_pylist():
        try:
            times.append(time_from_product(name))
        except ValueError:
            times.append(None)
    per_product = pa.array(times, pa.timestamp("s"))
    return per_product.take(encoded.indices), np.asarray(pc.is_null(per_product).take(encoded.indices))


def s1_dirs(names: pa.Array) -> pa.Array:
    """``<scene>/<s1_name>`` for each S1 name (null where none is named)."""
    scene = pc.struct_field(pc.extract_regex(names, S1_SCENE), [0])
    dirs = pc.binary_join_element_wise(scene, names, "/")
    return pc.if_else(pc.equal(names, ""), pa.scalar(None, pa.string()), dirs)


def problem(row: dict[str, Any], unknown: str | None, no_time: bool, origin: str) -> PatchError | None:
    """What is wrong with one metadata row, if anything (the first of: labels, split, sensing time)."""
    patch = row["patch_id"]
    if not row["labels"]:
        return PatchError(patch, "empty_labels", "no labels in metadata", origin)
    if unknown is not None:
        return PatchError(patch, "unknown_label", f"unknown label {unknown!r}; reBEN labels are the 19-class names",
                          origin)  # fmt: skip
    if row["split"] not in SPLITS:
        return PatchError(patch, "bad_split", f"split {row['split']!r} is not train/validation/test", origin)
    if no_time:
        return PatchError(patch, "bad_patch_id", "no sensing time (_YYYYMMDDTHHMMSS_) in its tile product's name; "
                          "is this reBEN's metadata?", origin)  # fmt: skip
    return None


def report(table: pa.Table, bad: np.ndarray, unknown: np.ndarray, no_time: np.ndarray, origins: tuple[str, str],
           on_error: OnError) -> None:  # fmt: skip
    """Pass each bad row's :class:`PatchError` to ``on_error``, in patch order."""
    if not bad.any():
        return
    flat = pc.list_flatten(table.column("labels").combine_chunks())
    for i in np.flatnonzero(bad):
        row = table.slice(int(i), 1).to_pylist()[0]
        name = flat[int(unknown[i])].as_py() if unknown[i] >= 0 else None
        error = problem(row, name, bool(no_time[i]), origins[0] if row["_official"] else origins[1])
        if error is not None:
            on_error(error)


def index(spec: ArchiveSpec, on_error: OnError, options: ScanOptions = ONE_PROCESS) -> pa.Table:
    """The label index (:data:`~ben_hub.archive.base.INDEX_COLUMNS`) of the metadata, sorted by patch id, computed
    a column at a time: no Python object per patch (planning a build of the published 549,488 rows takes 1.7 s
    with it and 11.2 s with a scan a row at a time, ``bench/scale.py``).  Rows with no labels, an unknown label,
    a split other than train/validation/test or no sensing time go to ``on_error`` in patch order, and are left
    out.  No pixel file is opened; ``options`` change nothing (one process reads it in about a second)."""
    table, origins = metadata_table(spec)
    patch, split = table.column("patch_id"), table.column("split")
    labels_19, unknown = label_lists(table.column("labels"))
    tiles = pc.replace_substring_regex(patch, pattern=TILE_SUFFIX, replacement="").combine_chunks()
    times, no_time = sensing_times(tiles)
    bad = (np.asarray(pc.list_value_length(labels_19)) == 0) | (unknown >= 0) | no_time
    bad |= ~np.asarray(pc.fill_null(pc.is_in(split, value_set=pa.array(SPLITS)), False))
    report(table, bad, unknown, no_time, origins, on_error)
    s1 = table.column("s1_name")
    columns = {
        "patch_id": patch, "labels": pa.nulls(table.num_rows, INDEX_COLUMNS["labels"]), "labels_19": labels_19,
        "s1_patch_id": s1, "s2v1_name": table.column("s2v1_name"), "acquisition_time": times, "tile_source": tiles,
        "country": table.column("country"),
        "seasonal_snow": pc.fill_null(table.column("contains_seasonal_snow"), False),
        "cloud_or_shadow": pc.fill_null(table.column("contains_cloud_or_shadow"), False),
        "no_19_class_labels": pc.equal(pc.list_value_length(labels_19), 0),
        "_s2_dir": pc.binary_join_element_wise(tiles, patch, "/"),
        "_s1_dir": s1_dirs(s1) if spec.with_s1 else pa.nulls(table.num_rows, pa.string()),
        "_official": pc.if_else(table.column("_official"), split, pa.scalar(None, pa.string())),
    }  # fmt: skip
    index = pa.table(columns, schema=pa.schema(INDEX_COLUMNS))
    return index.filter(pa.array(~bad)) if bad.any() else index


def scan(spec: ArchiveSpec, on_error: OnError) -> Iterator[ScanRecord]:
    """Scan records of :func:`index`'s rows, sorted by patch id."""
    yield from index_records(index(spec, on_error))


def locate(root: Path, with_s1: bool) -> ArchiveSpec | None:
    """A v2 spec when ``root`` holds ``BigEarthNet-S2`` (S1 beside it when asked: its folder, else its tarball); its
    metadata is ``root``'s ``metadata.parquet`` (and the snow/cloud companion when beside it), or ``None`` when
    absent: the scan then fetches the published pair."""
    if not (root / S2_FOLDER).exists():
        return None
    metadata, extra = root / "metadata.parquet", root / EXTRA_NAME
    return ArchiveSpec(
        "v2",
        s2=root / S2_FOLDER,
        s1=find_s1(root, (S1_FOLDER,), S1_TARBALLS) if with_s1 else None,
        metadata=metadata if metadata.is_file() else None,
        metadata_extra=extra if metadata.is_file() and extra.is_file() else None,
    )
