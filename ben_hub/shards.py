"""Writing one shard: read its patches' pixels, assemble rows, write zstd parquet atomically.

This module runs inside worker processes, so it imports only numpy, pyarrow and the archive readers.
Parquet settings are fixed (deterministic bytes for the same input and writer):

* zstd; ``BYTE_STREAM_SPLIT`` encoding on pixel columns, which lets zstd see the high and low bytes of
  each uint16 apart (118.2 KB per real S2 patch at the default level -1, against 164 KB of GeoTIFF; ``bench/scale.py``);
* statistics on the small metadata columns;
* row groups of ``row_group_size`` rows (default 32, about 3.8 MB), so one sample costs one small range
  request over HTTP.

Two writers produce the same Arrow table (``WRITERS``): ``ben-hub`` (default, :mod:`ben_hub.parquet`, which
writes the fixed-shape pixel pages directly) and ``pyarrow`` (``pq.ParquetWriter``, the reference it is tested
against; its nested-list encoding costs about 0.8 ms per patch).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import stats
from .archive import ArchiveSpec, read_pixels
from .bands import BANDS
from .errors import PatchError
from .geo import season, utm_to_lonlat
from .parquet import ParquetFile

PATCH_PIXELS = BANDS["B02"].size
"""Pixels per side of the 10 m grid the georeferencing is read from (120: a 1.2 km patch)."""


@dataclass(frozen=True, eq=False)
class ShardTask:
    """Everything a worker needs to write one shard.

    Attributes:
        relpath: the shard's path inside the repository (``data/<cell>/part-00000-of-00003.parquet``).
        rows: the shard's rows in the build index; ``None`` when reading a tarball, where a shard takes the
            next ``size`` patches of its cell as they arrive.
        digest: hash of the shard's plan (settings + patch ids); a finished shard records it.
        size: planned rows.
    """

    relpath: str
    rows: np.ndarray | None
    digest: str
    size: int


@dataclass(frozen=True)
class WriteSettings:
    """Parquet and reading settings shared by all shards of a build."""

    spec: ArchiveSpec
    schema: pa.Schema
    bands: tuple[str, ...]
    row_group_size: int = 32
    compression_level: int = -1
    skip_bad: bool = False
    writer: str = "ben-hub"


def band_array(stack: np.ndarray) -> pa.Array:
    """``(n, h, w)`` pixels as ``list<list<dtype>>`` without copying per row."""
    n, h, w = stack.shape
    inner = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n * h * w + 1, w, dtype=np.int32)), pa.array(stack.reshape(-1))
    )
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * h + 1, h, dtype=np.int32)), inner)


def geo_columns(geo_list: list[Any], times: list[Any]) -> dict[str, list]:
    """``epsg``, UTM bounds, WGS84 centroid and season from each patch's GeoTIFF georeferencing."""
    out: dict[str, list] = {k: [] for k in ("epsg", "ulx", "uly", "lrx", "lry", "lon", "lat", "season")}
    for geo, when in zip(geo_list, times, strict=True):
        lrx, lry = geo.ulx + PATCH_PIXELS * geo.pixel_x, geo.uly - PATCH_PIXELS * geo.pixel_y
        lon, lat = utm_to_lonlat((geo.ulx + lrx) / 2, (geo.uly + lry) / 2, geo.epsg)
        for key, value in zip(out, (geo.epsg, geo.ulx, geo.uly, lrx, lry, lon, lat, season(when, lat)), strict=True):
            out[key].append(value)
    return out


def leaf_path(field: pa.Field) -> str:
    """The parquet column path of a field: ``B02`` -> ``B02.list.element.list.element`` (compliant lists)."""
    path, kind = field.name, field.type
    while pa.types.is_list(kind):
        path, kind = f"{path}.list.element", kind.value_type
    return path


def _writer_options(schema: pa.Schema, compression_level: int) -> dict[str, Any]:
    pixel = [leaf_path(f) for f in schema if f.name in BANDS]
    other = [leaf_path(f) for f in schema if f.name not in BANDS]
    return dict(
        compression="zstd",
        compression_level=compression_level,
        use_dictionary=[n for n in other if pa.types.is_string(schema.field(n.split(".")[0]).type)],
        write_statistics=other,
        use_byte_stream_split=pixel,
    )


class PyarrowShardFile:
    """The reference writer: ``pq.ParquetWriter`` with the settings above (dictionary strings, BSS pixels)."""

    def __init__(self, path: Path, schema: pa.Schema, compression_level: int) -> None:
        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema, **_writer_options(schema, compression_level))

    def write_row_group(self, columns: dict[str, list], grids: dict[str, np.ndarray]) -> None:
        self.writer.write_table(rows_table(self.schema, columns, grids))  # one row group

    def close(self) -> None:
        self.writer.close()

    def discard(self) -> None:
        self.writer.close()


WRITERS: dict[str, Callable[[Path, pa.Schema, int], Any]] = {"ben-hub": ParquetFile, "pyarrow": PyarrowShardFile}
"""Shard file writers by name; each has ``write_row_group(columns, grids)``, ``close()`` and ``discard()`` (after
an error: the file is incomplete and deleted)."""


def rows_table(schema: pa.Schema, meta: dict[str, list], pixels: dict[str, np.ndarray]) -> pa.Table:
    """A table of rows from metadata columns and stacked band arrays, in ``schema`` order."""
    arrays = [band_array(pixels[f.name]) if f.name in pixels else pa.array(meta[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ShardWriter:
    """One shard being written: rows are added one patch at a time and flushed per row group.

    The parquet goes to a temp file beside the target; :meth:`close` fsyncs, renames it into place and then
    saves the shard's record as ``.ben-hub/shards/<relpath>.json``.  A shard counts as done only when both
    exist, so a run killed at any point redoes at most the shards it was writing.
    """

    def __init__(self, task: ShardTask, settings: WriteSettings, root: Path) -> None:
        self.task, self.settings, self.root = task, settings, root
        self.bands = tuple(BANDS[b] for b in settings.bands)
        self.target = root / task.relpath
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.target)
        self.tmp = temp_path(self.target)
        if settings.writer not in WRITERS:
            raise ValueError(f"unknown parquet writer {settings.writer!r}; choose one of {sorted(WRITERS)}")
        self.writer = WRITERS[settings.writer](self.tmp, settings.schema, settings.compression_level)
        self.rows: list[tuple[dict[str, Any], dict[str, np.ndarray], Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.count = 0
        self.stats = stats.empty_stats(settings.schema.names)

    def add(self, meta: dict[str, Any], read: Callable[[], tuple[dict[str, np.ndarray], Any]]) -> None:
        """Read one patch's pixels with ``read`` and buffer the row; a bad patch is skipped or raised."""
        try:
            arrays, geo = read()
        except PatchError as err:
            if not self.settings.skip_bad:
                raise
            self.skipped.append({"patch_id": err.patch_id, "reason": err.reason, "message": str(err)})
            return
        self.rows.append((meta, arrays, geo))
        if len(self.rows) == self.settings.row_group_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        metas = [m for m, _, _ in self.rows]
        columns = {k: [m[k] for m in metas] for k in metas[0]}
        columns.update(geo_columns([g for _, _, g in self.rows], columns["acquisition_time"]))
        stacks = {b.name: np.stack([a[b.name] for _, a, _ in self.rows]) for b in self.bands}
        self.writer.write_row_group(columns, stacks)
        labels = {c: np.fromiter(itertools.chain.from_iterable(columns[c]), np.int64) for c in self.stats["labels"]}
        flags = {f: int(sum(columns[f])) for f in self.stats["flags"]}
        stats.accumulate(self.stats, len(self.rows), labels, flags, stacks)
        self.count += len(self.rows)
        self.rows = []

    def close(self) -> dict[str, Any]:
        """Finish the shard atomically and return its manifest record."""
        try:
            self.flush()
            self.writer.close()
            with self.tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self.tmp, self.target)
        except BaseException:
            self.abort()
            raise
        record = {
            "path": self.task.relpath,
            "rows": self.count,
            "bytes": self.target.stat().st_size,
            "sha256": sha256_file(self.target),
            "plan": self.task.digest,
            "skipped": self.skipped,
            "stats": self.stats,
        }
        write_json_atomic(sidecar_path(self.root, self.task.relpath), record)
        return record

    def abort(self) -> None:
        """After an error: close and delete the temp file (a full disk gets its space back at once)."""
        with contextlib.suppress(OSError):  # the error that brought us here is the one to report
            self.writer.discard()
        self.tmp.unlink(missing_ok=True)


def write_shard(task: ShardTask, meta: dict[str, list], settings: WriteSettings, root: Path) -> dict[str, Any]:
    """Write one shard of an unpacked archive; ``meta`` holds the index columns of its patches."""
    writer = ShardWriter(task, settings, root)
    try:
        for i, patch in enumerate(meta["patch_id"]):
            row = {k: v[i] for k, v in meta.items()}
            writer.add(
                row, functools.partial(read_pixels, settings.spec, patch, row["_s2_dir"], row["_s1_dir"], writer.bands)
            )
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def sidecar_path(root: Path, relpath: str) -> Path:
    return root / ".ben-hub" / "shards" / f"{relpath}.json"


def finished_record(root: Path, task: ShardTask) -> dict[str, Any] | None:
    """The record of a shard finished by an earlier run with the same plan, else ``None``."""
    side, target = sidecar_path(root, task.relpath), root / task.relpath
    if not side.exists() or not target.exists():
        return None
    try:
        record = json.loads(side.read_text())
    except json.JSONDecodeError:
        return None
    ok = record.get("plan") == task.digest and record.get("bytes") == target.stat().st_size
    return record if ok else None


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write sorted, indented JSON via a temp file and rename (no partial file is ever visible)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def temp_path(path: Path) -> Path:
    """This process's temp file for ``path``, beside it: ``.<name>.<pid>.tmp``, renamed into place once complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_stale_temps(path: Path) -> None:
    """Delete every process's temp file for ``path`` (left by a run that was killed, or one stopped)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside ``path`` to write, renamed into place when the block ends; deleted if the block fails
    (a full disk: no partial temp file left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_png(figure: Any, path: Path, dpi: int) -> None:
    """A matplotlib figure as a deterministic PNG (no timestamp or software tag), written atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
