"""``verify --archive``: compare a built repository with the archive it came from, pixel for pixel.

For each compared patch (every stored one, or a seeded sample) the archive's files are read again, and:

* every stored band must equal the archive's GeoTIFF bit for bit (uint16 S2; float32 S1 compared as raw
  bits, so a NaN equals only the same NaN);
* ``labels``, ``labels_19``, ``tile_source`` and ``acquisition_time`` must equal the archive's S2 JSON (v1)
  or its ``metadata.parquet`` row (v2), where the repository stores them;
* ``epsg``, ``ulx`` and ``uly`` must equal B02's georeferencing;
* ``s1_patch_id`` must be the twin the archive names: the S1 JSON's ``corresponding_s2_patch`` (v1), the
  metadata's ``s1_name`` (v2).

Comparing every patch also checks that each patch folder of the archive's S2 part is stored or listed in
``skipped.json``: nothing was lost silently.  Unpacked folders are compared in chunks of one shard's patches,
in worker processes when asked.  Tarballs are streamed once per part (S2, then S1) in archive order, in this
process; a v1 S2 tarball's labels are read from its JSON files as they stream by, not in a pass of their own
(a build reads it twice: it must split before it writes).  Stored rows are read a row group at a time (32 rows
by default, about 3.8 MB), only the columns compared, their bands by ben-hub's page reader
(:mod:`ben_hub.pages`).  A tarball's member order is its packer's: when its first patches arrive scattered over
the stored row groups, the stored values are digested shard by shard instead (:class:`ArrivingRows`, in worker
processes when asked), so each row group is decoded once; a streamed patch whose values all have the stored
digests is identical, and any other is compared with its stored row value by value.
Pixels are decoded by ben-hub's GeoTIFF reader, which the tests hold to ``tifffile`` on every real band.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .archive import LAYOUTS, ArchiveSpec, ScanRecord, v1
from .archive.base import OnError
from .archive.tar import is_tar, iter_folders
from .archive.v2 import tile_product
from .bands import BANDS, Band
from .errors import ArchiveError, PatchError, TiffError
from .pages import band_grid, leaf_columns
from .repo import load_json, load_manifest
from .shards import atomic_path
from .space import reported_full_disk
from .tiff import read_geoinfo, read_tiff
from .workers import process_pool

ARCHIVE_COLUMNS = ("labels", "labels_19", "tile_source", "acquisition_time")
"""Stored columns that the archive's labels (S2 JSON or metadata row) state directly."""

GEO_COLUMNS = ("epsg", "ulx", "uly")
"""Stored columns read from B02's georeferencing."""

KEPT = 50
"""Differences kept for the report (all are counted)."""

CACHED_ROW_GROUPS = 32
"""Row groups kept decoded: a tarball fills up to 10 cells' shards at once, so its rows arrive from ~10 places."""

OPEN_SHARDS = 4
"""Shards whose parquet reader (footer, schema) a :class:`StoredRows` keeps."""

METADATA_JSON = "_labels_metadata.json"
"""Each v1 patch folder's JSON: an S2 patch's labels, an S1 patch's ``corresponding_s2_patch``."""

CHUNK = 256
"""Patches of one shard a worker compares at a time (8 row groups of 32): small enough to share the work evenly
among processes (shards differ in size by 10x), large enough that handing a chunk to a worker costs little."""


@dataclass(frozen=True)
class Difference:
    """One way a stored patch differs from the archive."""

    patch_id: str
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.patch_id} {self.what}: {self.detail}"


@dataclass
class AuditReport:
    """What :func:`audit` compared and found.

    Attributes:
        stored: patches in the repository.
        compared: patches whose stored row was compared with the archive.
        bands: the stored bands compared.
        differing: patches with at least one difference: compared ones, and the ``unstored`` ones.
        unstored: patches of the archive's S2 part neither stored nor in ``skipped.json`` (every patch only).
        differences: the first ``keep`` differences, in the order found.
        keep: how many differences to hold (:data:`KEPT` by default); all are counted.
        sink: called with every difference as it is recorded (``verify --report`` writes them all to a file).
        every: every stored patch was compared and the archive checked for unstored ones (no sample, or a sample
            as large as the repository).
    """

    stored: int
    compared: int
    bands: tuple[str, ...]
    every: bool = False
    differing: int = 0
    unstored: int = 0
    differences: list[Difference] = field(default_factory=list)
    keep: int = field(default_factory=lambda: KEPT)
    sink: Callable[[Difference], Any] | None = field(default=None, repr=False, compare=False)
    _patches: set[str] = field(default_factory=set, repr=False)
    _found: int = field(default=0, repr=False)

    def add(self, patch_id: str, what: str, detail: str) -> None:
        if patch_id not in self._patches:
            self._patches.add(patch_id)
            self.differing += 1
        self._record(Difference(patch_id, what, detail))

    def _record(self, difference: Difference) -> None:
        self._found += 1
        if self.sink is not None:
            self.sink(difference)
        if len(self.differences) < self.keep:
            self.differences.append(difference)

    def merge(self, other: AuditReport) -> None:
        """Add the differences another report found among other patches (all of them, if it kept all)."""
        self.differing += other.differing
        self._patches |= other._patches
        for difference in other.differences:
            self._record(difference)

    @property
    def ok(self) -> bool:
        return not self.differing

    def verdict(self) -> str:
        """One line for a report with differences: how many, and what to do."""
        differ = self.differing - self.unstored
        parts = [f"{differ:,} of {self.compared:,} compared patches differ from the archive"] if differ else []
        if self.unstored:
            parts.append(f"archive patches neither stored nor in skipped.json: {self.unstored:,}")
        listed = f" (the first {len(self.differences)} listed above)" if len(self.differences) < self.found else ""
        return (
            f"{'; '.join(parts)}{listed}: check that this is the archive the repository was built from, then "
            "rebuild from it (a changed or damaged archive file is named above)"
        )

    @property
    def found(self) -> int:
        """Differences found, counting each one, not each patch."""
        return self._found


class StoredRows:
    """A repository's rows by patch id, read a row group at a time (bands as ``(rows, h, w)`` arrays).

    ``where`` (patch id -> shard number, row) and ``twins`` (patch id -> stored ``s1_patch_id``) are read from the
    shards unless given (:meth:`part` gives them to a worker)."""

    def __init__(
        self,
        paths: list[Path],
        where: dict[str, tuple[int, int]] | None = None,
        twins: dict[str, str | None] | None = None,
    ) -> None:
        self.paths = paths
        if where is None:
            where, twins = stored_positions(paths)
        self.where, self.twins = where, twins or {}
        self.starts: dict[int, np.ndarray] = {}
        """Shard number -> the first row of each of its row groups (and the row count), read when first needed."""
        self.schema = pq.read_schema(self.paths[0]) if self.paths else pa.schema([])
        self.names = frozenset(self.schema.names)
        self.bands = tuple(name for name in self.schema.names if name in BANDS)
        self.cache: OrderedDict[tuple[int, int, tuple[str, ...]], dict[str, Any]] = OrderedDict()
        self.open: dict[int, tuple[pq.ParquetFile, dict[str, int], pa.Schema]] = {}
        self.decoded = 0
        """Row groups decoded so far (cache misses)."""

    def part(self, patches: list[str]) -> StoredRows:
        """The rows of ``patches``, all stored in one shard, without reading the shard's patch ids again."""
        number = self.where[patches[0]][0]
        where = {p: (0, self.where[p][1]) for p in patches}
        return StoredRows([self.paths[number]], where, {p: self.twins.get(p) for p in patches})

    def ids(self) -> list[str]:
        """Stored patch ids in storage order (shard by shard)."""
        return sorted(self.where, key=self.where.__getitem__)

    def row(self, patch: str, columns: tuple[str, ...]) -> dict[str, Any]:
        """``columns`` of the stored row of ``patch`` (those the repository has): bands as arrays, the others
        as Python values."""
        number, row = self.where[patch]
        if number not in self.starts:
            meta = self._shard(number)[0].metadata
            self.starts[number] = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        group = int(np.searchsorted(self.starts[number], row, side="right")) - 1
        values = self._group(number, group, tuple(c for c in columns if c in self.names))
        offset = row - int(self.starts[number][group])
        return {name: column[offset] for name, column in values.items()}

    def _shard(self, number: int) -> tuple[pq.ParquetFile, dict[str, int], pa.Schema]:
        """Shard ``number``'s parquet reader, its leaf column of each band and its Arrow schema (the last
        :data:`OPEN_SHARDS` kept)."""
        if number not in self.open:
            if len(self.open) >= OPEN_SHARDS:
                self.open.pop(next(iter(self.open)))
            parquet = pq.ParquetFile(self.paths[number])
            self.open[number] = (parquet, leaf_columns(parquet), parquet.schema_arrow)
        return self.open[number]

    def _group(self, number: int, group: int, columns: tuple[str, ...]) -> dict[str, Any]:
        key = (number, group, columns)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        self.decoded += 1
        parquet, leaves, schema = self._shard(number)
        others = [n for n in columns if n not in BANDS]
        table = parquet.read_row_group(group, columns=others)
        values: dict[str, Any] = {n: table.column(n).to_pylist() for n in others}
        with open(self.paths[number], "rb") as handle:
            for name in (n for n in columns if n in BANDS):
                band = BANDS[name]
                values[name] = band_grid(parquet, handle, group, leaves, name, band.shape, band.dtype, schema)
        self.cache[key] = values
        if len(self.cache) > CACHED_ROW_GROUPS:
            self.cache.popitem(last=False)
        return values


def digest(value: Any) -> int:
    """A 64-bit digest (SHA-256's first 8 bytes) of a stored or stated value: an array's dtype, shape and raw bits
    (so a float32 NaN matches only the same NaN, as :func:`bits` compares them), anything else's ``repr``."""
    if isinstance(value, np.ndarray):
        hashed = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode())
        hashed.update(np.ascontiguousarray(value).data)
    else:
        hashed = hashlib.sha256(repr(value).encode())
    return int.from_bytes(hashed.digest()[:8], "little")


@dataclass(frozen=True)
class StoredDigests:
    """:func:`digest` of the stored ``columns`` of each compared patch (8 bytes a value: 0.1 GB for v1's 590,326
    patches with 14 bands and 8 other columns), read shard by shard in storage order (:class:`ArrivingRows`)."""

    columns: tuple[str, ...]
    index: dict[str, int]
    """Patch id -> its row in ``values``."""
    values: np.ndarray
    """``(patches, columns)`` uint64."""

    def agree(self, patch: str, stated: dict[str, Any]) -> bool:
        """Whether every value the archive stated for ``patch`` has the stored value's digest (columns the
        repository does not store are not compared)."""
        at = self.index.get(patch)
        if at is None or any(isinstance(value, Unreadable) for value in stated.values()):
            return False
        row = self.values[at]
        return all(int(row[k]) == digest(stated[c]) for k, c in enumerate(self.columns) if c in stated)


def digest_rows(stored: StoredRows, patches: list[str], columns: tuple[str, ...]) -> np.ndarray:
    """The :func:`digest` of each of ``columns`` of each stored row of ``patches``, a ``(patches, columns)`` array."""
    out = np.empty((len(patches), len(columns)), dtype=np.uint64)
    for i, patch in enumerate(patches):
        row = stored.row(patch, columns)
        out[i] = [digest(row[c]) for c in columns]
    return out


def stored_digests(stored: StoredRows, order: list[str], columns: tuple[str, ...], workers: int,
                   done: Callable[[int], Any]) -> StoredDigests:  # fmt: skip
    """:class:`StoredDigests` of the patches of ``order`` (storage order), in chunks of one shard's patches, in
    ``workers`` processes when more than one."""
    columns = tuple(c for c in columns if c in stored.names)
    chunks = shard_chunks(stored, order)
    values = np.empty((len(order), len(columns)), dtype=np.uint64)
    at = 0
    arguments = ([stored.part(patches) for patches in chunks], chunks, [columns] * len(chunks))
    with mapped(digest_rows, arguments, workers) as results:
        for patches, result in zip(chunks, results, strict=True):
            values[at : at + len(patches)] = result
            at += len(patches)
            done(len(patches))
    return StoredDigests(columns, {patch: i for i, patch in enumerate(order)}, values)


PROBE = 64
"""Patches of a streamed part read as they arrive before :class:`ArrivingRows` judges their order."""

SCATTERED = 1 / 2
"""Row groups decoded a probed patch above which a streamed part switches to digests.  In storage order the probe
decodes the first group of each cell it meets (10 at most) and a group per 32 patches after that; out of it, a
32-row group for nearly every patch (``bench/audit.py``, both v1 tarballs, 3,000 patches: 75 patches/s reading
each row as its patch arrives out of order, 386 digesting from the first patch)."""

DIGESTS = True
"""Let a streamed part switch to :class:`StoredDigests`; ``False``: read every stored row as its patch arrives
(the way before, kept as ``bench/audit.py``'s baseline)."""


@dataclass
class ArrivingRows:
    """The stored rows of a tarball's part, whose patches arrive in its packer's order, which need not be storage
    order (a build from unpacked folders sorts; a build from a tarball sorts each shard; GNU tar without ``--sort``
    takes the file system's order).

    The first :data:`PROBE` patches are compared with their stored rows as they arrive, through the row-group
    cache.  When they needed more than :data:`SCATTERED` decoded groups a patch, the stored values of the part's
    columns are digested shard by shard (:func:`stored_digests`), each row group decoded once, and from then on a
    patch whose stated values all have the stored digests is identical; any other is read again and compared value
    by value, so a difference is described as before.  (Both v1 tarballs packed in shuffled order: 375 patches/s
    so, against 75 reading each stored row as its patch arrived, and 613 for that in name order:
    ``bench/audit.py``.)"""

    stored: StoredRows
    order: list[str]
    columns: tuple[str, ...]
    streamed: bool = True
    """``False`` for an unpacked folder, whose patches come in ``order``, storage order: never judged."""
    workers: int = 1
    progress: bool = False
    arrived: int = 0
    start: int = 0
    digests: StoredDigests | None = None

    def compare(self, report: AuditReport, patch: str, stated: dict[str, Any]) -> None:
        """Compare what the archive ``stated`` for ``patch`` with its stored values."""
        if self.digests is not None and self.digests.agree(patch, stated):
            return
        compare_values(report, patch, self.stored.row(patch, self.columns), stated)
        if self.digests is None and self.streamed and DIGESTS:
            self.judge()

    def judge(self) -> None:
        """Count a patch compared row by row; after :data:`PROBE` of them, digest the stored rows if their rows were
        scattered."""
        if self.arrived == 0:
            self.start = self.stored.decoded
        self.arrived += 1
        if self.arrived == PROBE and self.stored.decoded - self.start > PROBE * SCATTERED:
            bar = tqdm(total=len(self.order), desc="digest stored rows", unit=" patches", leave=False,
                       disable=not self.progress)  # fmt: skip
            with bar:
                self.digests = stored_digests(self.stored, self.order, self.columns, self.workers, bar.update)


def shard_chunks(stored: StoredRows, order: list[str]) -> list[list[str]]:
    """The patches of ``order`` (storage order) in runs of at most :data:`CHUNK` patches of one shard."""
    chunks: list[list[str]] = []
    last = -1
    for patch in order:
        shard = stored.where[patch][0]
        if shard != last or len(chunks[-1]) == CHUNK:
            chunks.append([])
            last = shard
        chunks[-1].append(patch)
    return chunks


@contextlib.contextmanager
def mapped(function: Callable[..., Any], arguments: tuple[list[Any], ...], workers: int) -> Iterator[Iterator[Any]]:
    """``function`` over the argument lists, results in order: in ``workers`` processes when more than one (and
    more than one call), else in this one."""
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(arguments[0]) > 1:
            yield stack.enter_context(process_pool(workers)).map(function, *arguments)
        else:
            yield map(function, *arguments)


def stored_positions(paths: list[Path]) -> tuple[dict[str, tuple[int, int]], dict[str, str | None]]:
    """Each stored patch's (shard number, row), and its stored ``s1_patch_id`` when the shards have one."""
    where: dict[str, tuple[int, int]] = {}
    twins: dict[str, str | None] = {}
    for number, path in enumerate(paths):
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in ("patch_id", "s1_patch_id") if c in names])
        ids = table.column("patch_id").to_pylist()
        where.update((patch, (number, row)) for row, patch in enumerate(ids))
        if "s1_patch_id" in table.column_names:
            twins.update(zip(ids, table.column("s1_patch_id").to_pylist(), strict=True))
    return where, twins


@contextlib.contextmanager
def differences_file(path: Path) -> Iterator[Callable[[Difference], Any]]:
    """A sink writing each difference as one JSON line (``patch_id``, ``what``, ``detail``) to ``path``: through
    a temp file renamed into place when the comparison ends, deleted if it fails."""
    with reported_full_disk(path.parent), atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        yield lambda d: handle.write(json.dumps(dataclasses.asdict(d), sort_keys=True) + "\n")


def build_layout(root: Path) -> str | None:
    """The archive layout recorded in a repository's ``build.json`` (``v1``/``v2``), if it has one."""
    path = root / "build.json"
    layout = load_json(root, "build.json").get("layout") if path.is_file() else None
    return layout if isinstance(layout, str) else None


def choose(ids: list[str], sample: int | None, seed: int) -> list[str]:
    """``ids`` (storage order), or ``sample`` of them drawn with ``seed``, kept in storage order."""
    if sample is None or sample >= len(ids):
        return ids
    picked = np.random.default_rng(seed).choice(len(ids), size=sample, replace=False)
    return [ids[i] for i in np.sort(picked)]


def archive_records(
    spec: ArchiveSpec, wanted: set[str], everything: bool
) -> tuple[dict[str, ScanRecord], set[str], dict[str, str]]:
    """The labels the archive states for the ``wanted`` patches, the ids of the patches scanned (``everything``:
    all the archive's), and the scan's errors by patch id (records of the others are not kept: 590,326 of them
    would take about a GB)."""
    errors: dict[str, str] = {}

    def note(error: PatchError) -> None:
        errors.setdefault(error.patch_id, str(error))

    records, names = {}, set()
    for record in scanned(spec, wanted, everything, note):
        names.add(record.patch_id)
        if record.patch_id in wanted:
            records[record.patch_id] = record
    return records, names, errors


def scanned(spec: ArchiveSpec, wanted: set[str], everything: bool, note: OnError) -> Iterator[ScanRecord]:
    """The layout's scan; for a sample of an unpacked v1 archive, only the sampled patches' JSON files."""
    if everything or spec.layout != "v1" or is_tar(spec.s2):
        yield from LAYOUTS[spec.layout].scan(spec, note)
        return
    for patch in sorted(wanted):
        try:
            yield v1.record_from_json(patch, v1.load_json(spec.s2, patch), str(spec.s2 / v1.json_name(patch)))
        except PatchError as err:
            note(err)


def bits(array: np.ndarray) -> np.ndarray:
    """The raw bits of an array (float32 as uint32), so NaNs compare by payload."""
    return array.view(f"u{array.dtype.itemsize}")


def band_difference(stored: np.ndarray, archived: np.ndarray) -> str | None:
    """``None`` when bit-identical, else where and by how much they differ."""
    if stored.shape != archived.shape:
        return f"stored shape {stored.shape}, archive {archived.shape}"
    unequal = bits(stored) != bits(archived.astype(stored.dtype, copy=False))
    if not unequal.any():
        return None
    r, c = (int(i) for i in np.argwhere(unequal)[0])
    return (
        f"{int(unequal.sum()):,} of {unequal.size:,} pixels differ; first at row {r}, column {c}: "
        f"stored {stored[r, c].item()!r}, archive {archived[r, c].item()!r}"
    )


@dataclass(frozen=True)
class Part:
    """One sensor part of the archive to compare: where it is, which bands, and how folders map to patches."""

    root: Path
    bands: tuple[Band, ...]
    folders: dict[str, str]
    """Archive folder name -> stored patch id, for the compared patches."""
    dirs: dict[str, str]
    """Stored patch id -> folder path relative to ``root`` (for unpacked folders)."""
    with_json: bool = False
    """Read each folder's ``*_labels_metadata.json`` too (v1 S1: the twin it names)."""

    @property
    def columns(self) -> tuple[str, ...]:
        return part_columns(self.bands)


def part_columns(bands: tuple[Band, ...]) -> tuple[str, ...]:
    """The stored columns a part with ``bands`` (of one sensor) is compared with: its bands, and for S2 the labels,
    the georeferencing and the twin's name."""
    names = tuple(b.name for b in bands)
    return names + (ARCHIVE_COLUMNS + GEO_COLUMNS + ("s1_patch_id",) if bands and bands[0].sensor == "s2" else ())


def part_files(
    part: Part, order: list[str], seen: set[str] | None = None
) -> Iterator[tuple[str, str, dict[str, bytes] | PatchError]]:
    """``(patch id, origin, {suffix: bytes})`` of the compared patches: a folder's in ``order``, a tarball's in
    archive order (adding every folder name it holds to ``seen``); a file that cannot be read gives its
    :class:`PatchError` instead."""
    suffixes = tuple(f"_{b.name}.tif" for b in part.bands) + ((METADATA_JSON,) if part.with_json else ())
    if is_tar(part.root):
        found = set()
        for folder, files in iter_folders(part.root, suffixes):
            if seen is not None:
                seen.add(folder)
            patch = part.folders.get(folder)
            if patch is not None:
                found.add(patch)
                yield patch, f"{part.root}:{folder}", files
        for patch in order:
            if patch not in found:
                yield patch, str(part.root), PatchError(patch, "absent", "its folder is not in the tarball")
        return
    for patch in order:
        directory = part.dirs[patch]
        where = part.root / directory
        if not where.is_dir():
            yield patch, str(where), PatchError(patch, "absent", "its folder is missing", str(where))
            continue
        prefix = os.path.join(where, directory.rsplit("/", 1)[-1])
        yield patch, str(where), {s: data for s in suffixes if (data := read_if_present(prefix + s)) is not None}


def read_if_present(path: str) -> bytes | None:
    """A file's bytes, or ``None`` when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Unreadable:
    """A value the archive could not state (its file missing or damaged): why, reported in the value's place."""

    detail: str


SOURCES = dict.fromkeys(ARCHIVE_COLUMNS, "archive") | dict.fromkeys(GEO_COLUMNS, "B02's georeferencing")
"""How a difference names where the archive's value of a non-band column came from."""


def archived_band(patch: str, band: Band, files: dict[str, bytes], origin: str) -> np.ndarray | Unreadable:
    """One band's pixels from the patch's files, or why they cannot be had."""
    data = files.get(f"_{band.name}.tif")
    if data is None:
        return Unreadable(f"no {band.name} file in {origin}")
    try:
        return read_tiff(data, band.shape, band.dtype)
    except TiffError as err:  # the build's advice (skip the patch) is not this check's: the file is named
        return Unreadable(f"the archive's {band.name} file in {origin} cannot be read: {err}")


def label_values(record: ScanRecord | None) -> dict[str, Any]:
    """The stored columns the archive's labels (JSON or metadata row) state, with the twin the metadata names."""
    if record is None:
        return {}
    stated = {"labels": record.labels_43, "labels_19": record.labels_19, "tile_source": record.tile_source,
              "acquisition_time": record.acquisition_time}  # fmt: skip
    return stated | ({"s1_patch_id": record.s1_patch_id} if record.s1_patch_id is not None else {})


def streamed_labels(patch: str, files: dict[str, bytes], origin: str) -> dict[str, Any]:
    """v1 from a tarball: :func:`label_values` of the patch's own JSON, read as its folder streamed by (an
    :class:`Unreadable` ``labels`` when it is missing or cannot be read)."""
    raw = files.get(METADATA_JSON)
    if raw is None:
        return {"labels": Unreadable(f"no labels JSON in {origin}")}
    try:
        return label_values(v1.record_from_json(patch, v1.parse_json(patch, raw, origin), origin))
    except PatchError as err:
        return {"labels": Unreadable(f"the archive's labels cannot be read: {err.message}")}


def geo_values(b02: bytes | None) -> dict[str, Any]:
    """``epsg``, ``ulx`` and ``uly`` of B02's georeferencing (none without a B02 file or georeferencing: the band
    comparison reports it)."""
    geo = read_geoinfo(b02) if b02 is not None else None
    return {} if geo is None else dict(zip(GEO_COLUMNS, (geo.epsg, geo.ulx, geo.uly), strict=True))


def stated_values(patch: str, part: Part, files: dict[str, bytes], origin: str,
                  records: dict[str, ScanRecord]) -> dict[str, Any]:  # fmt: skip
    """What the archive states for the part's stored columns, in the order differences are reported: the bands
    (decoded), then for S2 the labels, the twin the metadata names and B02's georeferencing."""
    stated: dict[str, Any] = {band.name: archived_band(patch, band, files, origin) for band in part.bands}
    if part.bands[0].sensor == "s2":
        stated |= streamed_labels(patch, files, origin) if part.with_json else label_values(records.get(patch))
        stated |= geo_values(files.get("_B02.tif"))
    return stated


def compare_values(report: AuditReport, patch: str, row: dict[str, Any], stated: dict[str, Any]) -> None:
    """Report each stated value that the stored ``row`` does not hold exactly (bands bit for bit), and each that
    the archive could not state."""
    for column, value in stated.items():
        if isinstance(value, Unreadable):
            report.add(patch, column, value.detail)
        elif column in BANDS:
            if column in row and (found := band_difference(row[column], value)):
                report.add(patch, column, found)
        elif column in row and row[column] != value:
            source = SOURCES.get(column, "the metadata names")
            report.add(patch, column, f"stored {row[column]!r}, {source} {value!r}")


def compare_twin(report: AuditReport, patch: str, files: dict[str, bytes], origin: str) -> None:
    """v1: the S1 folder stored as the twin must name ``patch`` as its ``corresponding_s2_patch``."""
    raw = files.get(METADATA_JSON)
    if raw is None:
        report.add(patch, "s1_patch_id", f"the stored twin's folder ({origin}) has no metadata JSON")
        return
    try:
        named = v1.parse_json(patch, raw, origin).get("corresponding_s2_patch")
    except PatchError as err:
        report.add(patch, "s1_patch_id", f"the twin's JSON cannot be read: {err.message}")
        return
    if named != patch:
        report.add(patch, "s1_patch_id", f"the stored twin's JSON ({origin}) names {named!r} as its S2 patch")


def compare_part(report: AuditReport, stored: StoredRows, part: Part, order: list[str],
                 records: dict[str, ScanRecord], seen: set[str] | None = None, absent: set[str] | None = None,
                 workers: int = 1, progress: bool = False) -> Iterator[None]:  # fmt: skip
    """Compare the patches of ``order`` with one part of the archive (S2 with labels, or S1 with its twin),
    yielding after each; ``seen``: as :func:`part_files`; ``absent`` collects the patches without a folder.
    A tarball's patches arrive in its order (:class:`ArrivingRows`, ``workers`` and ``progress`` for its digests);
    a folder's in ``order``, storage order."""
    rows = ArrivingRows(stored, order, part.columns, is_tar(part.root), workers, progress)
    for patch, origin, files in part_files(part, order, seen):
        if isinstance(files, PatchError):
            report.add(patch, "files", f"{files.message} ({files.path or origin})")
            if absent is not None:
                absent.add(patch)
        else:
            rows.compare(report, patch, stated_values(patch, part, files, origin, records))
            if part.bands[0].sensor == "s1" and part.with_json:
                compare_twin(report, patch, files, origin)
        yield


def compare_parts(
    report: AuditReport,
    stored: StoredRows,
    spec: ArchiveSpec,
    bands: tuple[Band, ...],
    order: list[str],
    records: dict[str, ScanRecord],
    seen: set[str] | None = None,
    workers: int = 1,
    progress: bool = False,
) -> Iterator[None]:
    """Compare the patches of ``order`` with the S2 part, then the S1 part (when ``bands`` has S1 bands);
    ``workers`` and ``progress`` for a tarball's digests (:class:`ArrivingRows`).

    With the labels read from the S2 stream (:func:`labels_streamed`), the patches whose folder the S2 tarball
    lacks are left out of the S1 comparison, and a tarball that has none of them raises the error of another
    archive (:func:`not_in_archive`) before S1 is read."""
    streamed = labels_streamed(spec)
    s2 = s2_part(spec, tuple(b for b in bands if b.sensor == "s2"), order, records)
    absent: set[str] = set()
    yield from compare_part(report, stored, s2, order, records, seen, absent, workers, progress)
    if streamed and order and len(absent) == len(order):
        raise not_in_archive(spec, len(order), len(seen) if seen is not None else None)
    s1_bands = tuple(b for b in bands if b.sensor == "s1")
    if s1_bands:
        s1 = s1_part(spec, s1_bands, order, records, stored)
        todo = [p for p in order if p in s1.dirs and not (streamed and p in absent)]
        yield from compare_part(report, stored, s1, todo, records, workers=workers, progress=progress)


def compare_shard(stored: StoredRows, spec: ArchiveSpec, bands: tuple[Band, ...], order: list[str],
                  records: dict[str, ScanRecord]) -> AuditReport:  # fmt: skip
    """A worker's share: the patches of ``order``, stored in one shard (``stored``: :meth:`StoredRows.part`), with
    unpacked folders; the report holds all its differences (at most a few per band and column of ``CHUNK``
    patches)."""
    report = AuditReport(stored=0, compared=len(order), bands=tuple(b.name for b in bands), keep=sys.maxsize)
    for _ in compare_parts(report, stored, spec, bands, order, records):
        pass
    return report


def compare_by_shard(report: AuditReport, stored: StoredRows, spec: ArchiveSpec, bands: tuple[Band, ...],
                     order: list[str], records: dict[str, ScanRecord], workers: int,
                     done: Callable[[int], Any]) -> None:  # fmt: skip
    """Unpacked folders, shard by shard (in ``workers`` processes when more than one); the reports are merged in
    shard order, so the differences listed do not depend on ``workers``."""
    chunks = shard_chunks(stored, order)
    arguments = (
        [stored.part(patches) for patches in chunks],
        [spec] * len(chunks),
        [bands] * len(chunks),
        chunks,
        [{p: records[p] for p in patches} for patches in chunks],
    )
    with mapped(compare_shard, arguments, workers) as results:
        for patches, result in zip(chunks, results, strict=True):
            report.merge(result)
            done(len(patches))


def s2_part(spec: ArchiveSpec, bands: tuple[Band, ...], order: list[str], records: dict[str, ScanRecord]) -> Part:
    """The S2 folders of ``order``, reading each one's labels JSON too when the labels stream with the pixels."""
    dirs = {p: records[p].s2_dir if p in records else s2_dir(spec, p) for p in order}
    folders = {d.rsplit("/", 1)[-1]: p for p, d in dirs.items()}
    return Part(spec.s2, bands, folders, dirs, with_json=labels_streamed(spec))


STREAM_LABELS = True
"""Read a v1 S2 tarball's labels from its JSON files as they stream by with the bands; ``False``: in a pass of their
own first, as a build reads them (the way before, kept as ``bench/audit.py``'s baseline)."""


def labels_streamed(spec: ArchiveSpec) -> bool:
    """A v1 S2 tarball: each patch's labels are read from its JSON as its folder streams by with the bands."""
    return STREAM_LABELS and spec.layout == "v1" and is_tar(spec.s2)


def not_in_archive(spec: ArchiveSpec, compared: int, patches: int | None) -> ArchiveError:
    """The error for an archive that holds none of the compared patches (``patches``: how many it holds)."""
    held = f", {patches:,} patches" if patches is not None else ""
    return ArchiveError(
        f"none of the {compared:,} patches to compare is in the archive at {spec.s2} ({spec.layout} layout{held}): "
        "pass the archive this repository was built from (build.json names its layout)"
    )


def s1_part(spec: ArchiveSpec, bands: tuple[Band, ...], order: list[str], records: dict[str, ScanRecord],
            stored: StoredRows) -> Part:  # fmt: skip
    """v2: the twin folders the metadata names; v1: the folders stored as twins, whose JSON is checked."""
    assert spec.s1 is not None
    if spec.layout == "v2":
        dirs = {p: d for p in order if p in records and (d := records[p].s1_dir) is not None}
    else:
        dirs = {p: twin for p in order if (twin := stored.twins.get(p))}
    return Part(spec.s1, bands, {d.rsplit("/", 1)[-1]: p for p, d in dirs.items()}, dirs, spec.layout == "v1")


def unstored_patches(spec: ArchiveSpec, candidates: Iterable[str], kept: set[str], seen: set[str] | None) -> list[str]:
    """Patches of the archive's S2 part not in ``kept``: of ``seen`` (a tarball's folders), else of the
    ``candidates`` (the archive's labels) whose folder is present."""
    if seen is not None:
        return sorted(seen - kept)
    return sorted(p for p in set(candidates) - kept if (spec.s2 / s2_dir(spec, p)).is_dir())


def s2_dir(spec: ArchiveSpec, patch: str) -> str:
    """A patch's S2 folder relative to the S2 part: ``<patch>`` (v1), ``<tile product>/<patch>`` (v2)."""
    return f"{tile_product(patch)}/{patch}" if spec.layout == "v2" else patch


def audit(
    root: Path,
    spec: ArchiveSpec,
    sample: int | None = None,
    seed: int = 0,
    with_s1: bool = True,
    workers: int = 1,
    progress: bool = False,
    sink: Callable[[Difference], Any] | None = None,
) -> AuditReport:
    """Compare the repository at ``root`` with the archive of ``spec``: every patch, or ``sample`` of them
    (drawn with ``seed``; a sample of at least the stored patches is every patch); ``with_s1=False`` compares the
    S2 bands only.  Unpacked folders are compared shard by shard, in ``workers`` processes; a tarball is one
    stream, read in this process in its own order.  ``sink`` receives every difference (the report holds the first
    :data:`KEPT`), in an order that does not depend on ``workers``.

    Raises:
        ArchiveError: when the repository stores S1 bands, ``with_s1`` is set and ``spec`` has no S1 part; when
            no compared patch is in the archive at all (another archive, or another layout).
    """
    stored = StoredRows([root / shard["path"] for shard in load_manifest(root)["shards"]])
    bands = tuple(BANDS[b] for b in stored.bands if with_s1 or BANDS[b].sensor == "s2")
    s1_bands = tuple(b for b in bands if b.sensor == "s1")
    if s1_bands and spec.s1 is None:
        raise ArchiveError(
            f"the repository stores {', '.join(b.name for b in s1_bands)} but the archive has no Sentinel-1 part: "
            "pass --s1-dir (its folder or download), or --no-s1 to compare the S2 bands only"
        )
    ids = stored.ids()
    if sample is not None and sample >= len(ids):
        sample = None  # a sample of every patch: the archive is checked for unstored patches too, as with none
    order = choose(ids, sample, seed)
    report = AuditReport(stored=len(stored.where), compared=len(order), bands=tuple(b.name for b in bands), sink=sink,
                         every=sample is None)  # fmt: skip
    records: dict[str, ScanRecord] = {}
    names: set[str] = set()
    errors: dict[str, str] = {}
    if not labels_streamed(spec):  # else read with each patch's folder, in the one pass over the S2 tarball
        records, names, errors = archive_records(spec, set(order), everything=sample is None)
        if order and not records:
            raise not_in_archive(spec, len(order), len(names))
        for patch in order:
            if patch not in records:
                report.add(
                    patch, "labels", errors.get(patch, "the archive's labels (JSON or metadata) lack this patch")
                )
        order = [p for p in order if p in records]
    seen: set[str] | None = set() if sample is None and is_tar(spec.s2) else None
    streamed = is_tar(spec.s2) or (bool(s1_bands) and spec.s1 is not None and is_tar(spec.s1))
    parts = 2 if s1_bands else 1  # the bar counts each patch once per part (S2, S1)
    with tqdm(total=len(order) * parts, desc="compare", unit=" patch parts", disable=not progress) as bar:
        if not streamed:
            compare_by_shard(report, stored, spec, bands, order, records, workers, lambda n: bar.update(n * parts))
        else:
            for _ in compare_parts(report, stored, spec, bands, order, records, seen, workers, progress):
                bar.update()
    if sample is None:
        skipped = {item["patch_id"] for item in load_json(root, "skipped.json")}
        missing = unstored_patches(spec, names | set(errors), set(stored.where) | skipped, seen)
        report.unstored = len(missing)
        for patch in missing:
            report.add(patch, "unstored", "in the archive, but neither stored nor listed in skipped.json")
    return report
