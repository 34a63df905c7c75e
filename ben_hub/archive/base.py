"""What every archive layout shares: the archive description, scan records, and band decoding.

A *scan* reads labels and metadata only (JSON files or ``metadata.parquet``) and returns one
:class:`ScanRecord` per patch; pixels are read later, exactly once, by :func:`read_pixels`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..bands import Band
from ..errors import PatchError, TiffError
from ..tiff import GeoInfo, read_geoinfo, read_tiff

FLAG_COLUMNS = ("seasonal_snow", "cloud_or_shadow", "no_19_class_labels")
"""Boolean columns saying why a patch may be outside the official set."""

OnError = Callable[[PatchError], None]
"""Called with each bad patch; raises to stop (the default) or records it to skip."""


def raise_error(error: PatchError) -> None:
    """The default :data:`OnError`: stop at the first bad patch."""
    raise error


@dataclass(frozen=True)
class ArchiveSpec:
    """Where an archive's parts are.

    Attributes:
        layout: ``v1`` (BigEarthNet v1.0 folders + JSON) or ``v2`` (reBEN + ``metadata.parquet``).
        s2: the Sentinel-2 part (folder, or ``.tar``/``.tar.gz``/``.tar.zst`` file).
        s1: the Sentinel-1 part (folder, or its own tarball, staged before a build reads it), or ``None`` to
            build S2 only.
        metadata: v2 only: ``metadata.parquet``; ``None``: the published one, which the scan downloads once
            (:func:`ben_hub.reben.fetch_metadata`) with its companion.
        metadata_extra: v2 only: ``metadata_for_patches_with_snow_cloud_or_shadow.parquet`` (optional).
        s1_pack: where an S1 tarball was staged (:mod:`ben_hub.archive.pack`); S1 files are read from there.
    """

    layout: str
    s2: Path
    s1: Path | None = None
    metadata: Path | None = None
    metadata_extra: Path | None = None
    s1_pack: Path | None = None

    @property
    def with_s1(self) -> bool:
        return self.s1 is not None


@dataclass
class ScanRecord:
    """Labels and metadata of one patch, read without pixels.

    ``s2_dir``/``s1_dir`` are paths relative to ``ArchiveSpec.s2``/``s1``; ``official`` is the patch's
    split in the layout's own metadata (v2 ``split`` column), ``None`` when lists decide (v1).
    """

    patch_id: str
    labels_19: list[int]
    s2_dir: str
    labels_43: list[int] | None = None
    s1_patch_id: str | None = None
    s1_dir: str | None = None
    acquisition_time: datetime | None = None
    tile_source: str | None = None
    country: str | None = None
    s2v1_name: str | None = None
    flags: dict[str, bool] = field(default_factory=dict)
    official: str | None = None


INDEX_COLUMNS: dict[str, pa.DataType] = {
    "patch_id": pa.string(), "labels": pa.list_(pa.int64()), "labels_19": pa.list_(pa.int64()),
    "s1_patch_id": pa.string(), "s2v1_name": pa.string(), "acquisition_time": pa.timestamp("s"),
    "tile_source": pa.string(), "country": pa.string(), "seasonal_snow": pa.bool_(), "cloud_or_shadow": pa.bool_(),
    "no_19_class_labels": pa.bool_(), "_s2_dir": pa.string(), "_s1_dir": pa.string(), "_official": pa.string(),
}  # fmt: skip
"""The label index a scan produces, one row per patch (``_``-prefixed columns are not stored in the shards)."""


def index_row(r: ScanRecord) -> dict[str, Any]:
    """A scan record as a row of the index (:data:`INDEX_COLUMNS`)."""
    return {
        "patch_id": r.patch_id, "labels": r.labels_43, "labels_19": r.labels_19, "s1_patch_id": r.s1_patch_id,
        "s2v1_name": r.s2v1_name, "acquisition_time": r.acquisition_time, "tile_source": r.tile_source,
        "country": r.country, "seasonal_snow": r.flags.get("seasonal_snow", False),
        "cloud_or_shadow": r.flags.get("cloud_or_shadow", False), "no_19_class_labels": not r.labels_19,
        "_s2_dir": r.s2_dir, "_s1_dir": r.s1_dir, "_official": r.official,
    }  # fmt: skip


def index_table(records: Iterable[ScanRecord], chunk: int = 20_000) -> pa.Table:
    """Scan records as one columnar table (converted in chunks: memory stays near the table's size)."""
    arrow_schema = pa.schema(INDEX_COLUMNS)
    batches, rows = [], []
    for record in records:
        rows.append(index_row(record))
        if len(rows) == chunk:
            batches.append(pa.RecordBatch.from_pylist(rows, schema=arrow_schema))
            rows = []
    batches.append(pa.RecordBatch.from_pylist(rows, schema=arrow_schema))
    return pa.Table.from_batches(batches, schema=arrow_schema)


@dataclass(frozen=True)
class ScanOptions:
    """How a layout may scan: ``workers`` processes (v1 folders of at least ``PARALLEL_FROM`` patches use them;
    the label index is the same either way), and whether to show a progress bar."""

    workers: int = 1
    progress: bool = False


ONE_PROCESS = ScanOptions()
"""The default: one process, no progress bar."""


def index_records(index: pa.Table, chunk: int = 20_000) -> Iterator[ScanRecord]:
    """The rows of an index as scan records again (the inverse of :func:`index_row`), ``chunk`` rows converted at
    a time."""
    for batch in index.to_batches(max_chunksize=chunk):
        for row in batch.to_pylist():
            yield ScanRecord(
                patch_id=row["patch_id"], labels_19=row["labels_19"], s2_dir=row["_s2_dir"], labels_43=row["labels"],
                s1_patch_id=row["s1_patch_id"], s1_dir=row["_s1_dir"], acquisition_time=row["acquisition_time"],
                tile_source=row["tile_source"], country=row["country"], s2v1_name=row["s2v1_name"],
                flags={"seasonal_snow": row["seasonal_snow"], "cloud_or_shadow": row["cloud_or_shadow"]},
                official=row["_official"],
            )  # fmt: skip


def band_file(directory: str, name: str, band: str) -> str:
    """Relative path of a band file: ``<dir>/<name>_<band>.tif``."""
    return f"{directory}/{name}_{band}.tif"


def read_file(root: Path | str, relpath: str, patch_id: str, reason: str) -> bytes:
    """Bytes of ``root/relpath``, or a :class:`PatchError` that names the file (string paths: hot loop)."""
    path = os.path.join(root, relpath)
    try:
        fd = os.open(path, os.O_RDONLY)  # no buffered file object: ~3 µs less per file, 13 files a patch
    except FileNotFoundError:
        raise PatchError(
            patch_id, reason, "file is missing; restore it from the archive or skip the patch (--skip-bad)", path
        ) from None
    try:
        size = os.fstat(fd).st_size
        parts = [os.read(fd, size)]
        while len(parts[-1]):  # until end of file (one more read; a file can grow between fstat and read)
            parts.append(os.read(fd, 1 << 16))
        return parts[0] if len(parts) == 2 else b"".join(parts)
    finally:
        os.close(fd)


def decode_band(patch_id: str, band: Band, data: bytes, origin: str) -> np.ndarray:
    """One band's pixels, checked against the band's shape and dtype."""
    try:
        return read_tiff(data, band.shape, band.dtype)
    except TiffError as err:
        raise PatchError(
            patch_id, "bad_tif", f"{err}; re-extract this file from the archive or skip the patch (--skip-bad)", origin
        ) from None


def decode_geo(patch_id: str, data: bytes, origin: str) -> GeoInfo:
    """Georeferencing of a patch from one of its band files."""
    geo = read_geoinfo(data)
    if geo is None or geo.epsg is None:
        raise PatchError(patch_id, "no_georeference", "the GeoTIFF has no tie point, pixel scale or EPSG code", origin)
    return geo


def iter_dirs(root: Path) -> Iterator[str]:
    """Names of the sub-folders of ``root``, sorted (byte order) for a deterministic scan."""
    with os.scandir(root) as entries:  # d_type: no stat per entry
        return iter(sorted(entry.name for entry in entries if entry.is_dir()))


def find_s1(root: Path, folders: tuple[str, ...], tarballs: tuple[str, ...]) -> Path | None:
    """The S1 part in ``root``: the first of ``folders`` present, else the first of ``tarballs``, else ``None``."""
    found = [root / n for n in folders if (root / n).is_dir()] + [root / n for n in tarballs if (root / n).is_file()]
    return found[0] if found else None
