"""BigEarthNet v1.0: ``<patch>/<patch>_<band>.tif`` + ``<patch>_labels_metadata.json`` per patch.

S2 JSON: ``labels`` (43-class names), ``coordinates`` (ulx, uly, lrx, lry), ``projection`` (WKT),
``tile_source``, ``acquisition_date``.  S1 JSON: the same, but ``lly`` for ``lry``, ``acquisition_time``
instead of ``acquisition_date``, and ``corresponding_s2_patch`` naming the S2 twin.  Splits come from the
official lists, not from the archive.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from ..errors import ArchiveError, PatchError
from ..geo import parse_time
from ..labels import label_indices, to_19
from ..workers import process_pool
from .base import (
    ONE_PROCESS,
    ArchiveSpec,
    OnError,
    ScanOptions,
    ScanRecord,
    find_s1,
    index_table,
    iter_dirs,
    read_file,
)
from .pack import open_pack
from .tar import is_tar, iter_members

S2_FOLDERS = ("BigEarthNet-v1.0", "BigEarthNet-S2-v1.0", "BigEarthNet-S2-Example")
S1_FOLDERS = ("BigEarthNet-S1-v1.0", "BigEarthNet-S1-Example")
S1_TARBALLS = ("BigEarthNet-S1-v1.0.tar.gz", "BigEarthNet-S1-v1.0.tar")
"""The published S1 download's names, found beside the S2 part when its unpacked folder is not."""
T = TypeVar("T")


def json_name(patch: str) -> str:
    return f"{patch}/{patch}_labels_metadata.json"


def parse_json(patch: str, raw: bytes, origin: str) -> dict[str, Any]:
    """A metadata JSON document, or a :class:`PatchError` naming its file."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PatchError(patch, "bad_json", f"malformed JSON ({err}); re-extract it from the archive", origin) from None
    if not isinstance(doc, dict):
        raise PatchError(patch, "bad_json", "JSON is not an object", origin)
    return doc


def load_json(root: Path | str, patch: str) -> dict[str, Any]:
    """A patch's metadata JSON from a folder, or a :class:`PatchError` naming the file."""
    relpath = json_name(patch)
    return parse_json(patch, read_file(root, relpath, patch, "missing_json"), os.path.join(root, relpath))


def record_from_json(patch: str, doc: dict[str, Any], origin: str) -> ScanRecord:
    """A scan record from an S2 JSON document; checks the labels and the acquisition date."""
    names = doc.get("labels")
    if not isinstance(names, list) or not names:
        raise PatchError(patch, "empty_labels", "no labels; a BigEarthNet patch has at least one", origin)
    try:
        labels_43 = label_indices(names, 43)
    except KeyError as err:
        raise PatchError(
            patch,
            "unknown_label",
            f"unknown label {err}; labels must be CLC level-3 names of BigEarthNet's 43-class nomenclature",
            origin,
        ) from None
    try:
        when = parse_time(str(doc["acquisition_date"]))
    except (KeyError, ValueError) as err:
        raise PatchError(patch, "bad_json", f"missing or bad acquisition_date ({err})", origin) from None
    return ScanRecord(
        patch_id=patch,
        labels_43=labels_43,
        labels_19=to_19(labels_43),
        s2_dir=patch,
        acquisition_time=when,
        tile_source=doc.get("tile_source"),
    )


TWINS = pa.schema([("s2", pa.string()), ("s1", pa.string())])
"""S1 twins as a table: the S2 patch an S1 JSON names, and that S1 folder."""


def s1_pairs(root: str, names: list[str]) -> tuple[pa.Table, list[PatchError]]:
    """``(s2, s1)`` from these S1 folders' JSONs, and the errors met, in name order (a worker's part of
    :func:`scan_s1`)."""
    s2s, s1s, errors = [], [], []
    for s1 in names:
        try:
            doc = load_json(root, s1)
            s2 = doc.get("corresponding_s2_patch")
            if not isinstance(s2, str):
                raise PatchError(s1, "bad_json", "no corresponding_s2_patch", os.path.join(root, json_name(s1)))
        except PatchError as err:
            errors.append(err)
            continue
        s2s.append(s2)
        s1s.append(s1)
    return pa.table([pa.array(s2s, pa.string()), pa.array(s1s, pa.string())], schema=TWINS), errors


def scan_s1(root: Path, on_error: OnError, options: ScanOptions = ONE_PROCESS) -> pa.Table:
    """Every S1 folder's pair (:data:`TWINS`) from the S1 JSONs, in name order (in ``options.workers`` processes
    for a large archive; the table is the same)."""
    return gathered(s1_pairs, str(root), options, "scan S1 twins", on_error)


def s1_twins(spec: ArchiveSpec, on_error: OnError, options: ScanOptions = ONE_PROCESS) -> pa.Table:
    """S1 twins (:data:`TWINS`): from the S1 folder's JSONs, or from a staged S1 tarball's."""
    if spec.s1 is None:
        return TWINS.empty_table()
    if spec.s1_pack is not None:
        return open_pack(spec.s1_pack).twins(spec.s1, on_error)
    if is_tar(spec.s1):
        raise ArchiveError(f"{spec.s1} is a tarball: stage it first (ben_hub.archive.pack.stage; ben-hub build does)")
    return scan_s1(spec.s1, on_error, options)


def _documents(
    spec: ArchiveSpec, patches: list[str] | None = None
) -> Iterator[tuple[str, Callable[[], dict[str, Any]], str]]:
    """``(patch, loader, origin)`` per patch: folders in sorted order (or those of ``patches``), a tarball in
    archive order."""
    if is_tar(spec.s2):
        for name, raw in iter_members(spec.s2, lambda n: n.endswith("_labels_metadata.json")):
            patch = name.split("/")[-2]
            yield patch, functools.partial(parse_json, patch, raw, f"{spec.s2}:{name}"), f"{spec.s2}:{name}"
        return
    root = str(spec.s2)  # plain strings in the per-patch loop: pathlib costs ~10 µs a patch here
    for patch in iter_dirs(spec.s2) if patches is None else patches:
        yield patch, functools.partial(load_json, root, patch), os.path.join(root, json_name(patch))


def scan(spec: ArchiveSpec, on_error: OnError, patches: list[str] | None = None) -> Iterator[ScanRecord]:
    """Scan records of every patch's S2 labels (of an unpacked archive's ``patches`` only, when given): folders in
    sorted name order, a tarball in archive order.

    The S1 twins are joined afterwards (:func:`join_s1`), so a build stages the S1 tarball while this runs."""
    for patch, load, origin in _documents(spec, patches):
        try:
            yield record_from_json(patch, load(), origin)
        except PatchError as err:
            on_error(err)


PART = 5_000
"""Patches per part when several processes read the JSONs."""
PARALLEL_FROM = 100_000
"""Fewer patches than this are read by this process alone, whatever ``-j`` (a threshold set by judgement, not
measured: one process reads the 1.18 million S2 and S1 JSONs of all of v1 in about 25 s, ``bench/scale.py
--v1-full``)."""


def index_part(root: str, patches: list[str]) -> tuple[pa.Table, list[PatchError]]:
    """Index rows of these patches' S2 JSONs (:func:`scan`), and the errors met, in patch order (a part of
    :func:`index`)."""
    errors: list[PatchError] = []
    return index_table(scan(ArchiveSpec("v1", s2=Path(root)), errors.append, patches)), errors


def in_parts(
    read: Callable[[str, list[str]], tuple[T, list[PatchError]]],
    root: str,
    names: list[str],
    options: ScanOptions,
    desc: str,
) -> Generator[tuple[T, list[PatchError]], None, None]:
    """``read(root, part)`` for consecutive parts of ``names`` (:data:`PART` names each), in order: in
    ``options.workers`` processes when there are at least :data:`PARALLEL_FROM` names, else here."""
    parts = [names[i : i + PART] for i in range(0, len(names), PART)] or [[]]
    pool = process_pool(options.workers) if options.workers > 1 and len(names) >= PARALLEL_FROM else None
    results = pool.map(read, itertools.repeat(root), parts) if pool else (read(root, part) for part in parts)
    bar = tqdm(total=len(names), desc=desc, unit=" patches", disable=not options.progress)
    try:
        for part, result in zip(parts, results, strict=True):
            bar.update(len(part))
            yield result
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # an error stops the parts not yet begun
        bar.close()


def gathered(
    read: Callable[[str, list[str]], tuple[pa.Table, list[PatchError]]],
    root: str,
    options: ScanOptions,
    desc: str,
    on_error: OnError,
) -> pa.Table:
    """The tables :func:`in_parts` reads from ``root``'s folders, as one, each part's errors passed to ``on_error``
    first; when that raises, the parts not yet begun are cancelled at once (not when the error is let go)."""
    tables = []
    with contextlib.closing(in_parts(read, root, list(iter_dirs(Path(root))), options, desc)) as parts:
        for table, errors in parts:
            for error in errors:
                on_error(error)
            tables.append(table)
    return pa.concat_tables(tables)


def index(spec: ArchiveSpec, on_error: OnError, options: ScanOptions = ONE_PROCESS) -> pa.Table:
    """The label index of every patch's S2 JSON: an unpacked archive's folders in parts (:func:`in_parts`: by
    ``options.workers`` processes from :data:`PARALLEL_FROM` patches on, the same table and the same errors in the
    same order either way); a tarball, one stream, by :func:`scan` here."""
    if not is_tar(spec.s2):
        return gathered(index_part, str(spec.s2), options, "scan labels", on_error)
    records = tqdm(scan(spec, on_error), desc="scan labels", unit=" patches", disable=not options.progress)
    return index_table(records)


def join_s1(index: pa.Table, spec: ArchiveSpec, on_error: OnError, options: ScanOptions = ONE_PROCESS) -> pa.Table:
    """The scanned ``index`` with each patch's S1 twin (``s1_patch_id``, ``_s1_dir``), from the S1 JSONs'
    ``corresponding_s2_patch`` (the last S1 folder in name order, when two name one patch); a patch that no S1
    JSON names goes to ``on_error``, in index order, and leaves the index.  Joined by arrow, with no Python object
    per patch."""
    twins = s1_twins(spec, on_error, options)
    backwards = pa.array(np.arange(twins.num_rows - 1, -1, -1))  # index_in finds the first match: the last pair
    where = pc.index_in(index.column("patch_id"), value_set=twins.column("s2").take(backwards).combine_chunks())
    found = pc.take(twins.column("s1").take(backwards), where)
    del twins, where
    ids = index.column("patch_id")
    for row in np.flatnonzero(np.asarray(pc.is_null(found))):
        on_error(
            PatchError(
                ids[int(row)].as_py(),
                "missing_s1",
                f"no Sentinel-1 patch under {spec.s1} names it as corresponding_s2_patch; build without --s1 "
                "or skip the patch (--skip-bad)",
            )
        )
    for name in ("s1_patch_id", "_s1_dir"):
        index = index.set_column(index.schema.get_field_index(name), name, found)
    return index.filter(pc.is_valid(found)) if found.null_count else index


def locate(root: Path, with_s1: bool) -> ArchiveSpec | None:
    """A v1 spec when ``root`` holds one of the known S2 folder names (S1 beside it when asked: its folder, else
    its tarball)."""
    s2 = next((root / n for n in S2_FOLDERS if (root / n).is_dir()), None)
    if s2 is None:
        return None
    return ArchiveSpec("v1", s2=s2, s1=find_s1(root, S1_FOLDERS, S1_TARBALLS) if with_s1 else None)
