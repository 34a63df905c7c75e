"""Statistics of a built repository, computed by streaming its shards (one row group at a time).

Per cell (``train-validation``, ``excluded`` ...): rows, positives per class (43 and 19), labels per patch,
flag counts, and per band the exact sum and sum of squares of its pixels (Python integers for uint16, so
means and standard deviations carry no rounding error from accumulation).  Cells are then merged into
each configuration's splits; the split-quality measures are computed from the counts.  The result is
``stats.json``; the card is rendered from it, and ``verify`` recomputes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .archive.base import FLAG_COLUMNS
from .bands import BANDS
from .labels import LABELS_19, LABELS_43
from .pages import band_grid, leaf_columns
from .repo import CONFIGS, cell_in_split, cell_of, load_json, load_manifest
from .splits import SPLITS
from .splits.quality import quality_from_counts
from .workers import process_pool

T = TypeVar("T")

LABEL_COLUMNS = {"labels": len(LABELS_43), "labels_19": len(LABELS_19)}


def _empty(schema_names: list[str]) -> dict[str, Any]:
    return {
        "rows": 0,
        "labels": {c: [0] * n for c, n in LABEL_COLUMNS.items() if c in schema_names},
        "label_total": {c: 0 for c in LABEL_COLUMNS if c in schema_names},
        "flags": {f: 0 for f in FLAG_COLUMNS},
        "bands": {b: {"sum": 0, "sumsq": 0, "pixels": 0} for b in schema_names if b in BANDS},
    }


def empty_stats(columns: list[str]) -> dict[str, Any]:
    """A zero accumulator for a shard whose schema has ``columns``."""
    return _empty(columns)


def accumulate(
    out: dict[str, Any], rows: int, labels: dict[str, np.ndarray], flags: dict[str, int], pixels: dict[str, np.ndarray]
) -> None:
    """Add one row group: flattened label ids per label column, flag counts, pixel arrays per band.

    The shard writer calls this on each row group it writes and :func:`shard_stats` on each row group it
    reads back, so both give identical numbers (float sums included: same chunks, same order).
    """
    out["rows"] += rows
    for column, values in labels.items():
        counts = np.bincount(values, minlength=len(out["labels"][column]))
        out["labels"][column] = [a + int(b) for a, b in zip(out["labels"][column], counts, strict=True)]
        out["label_total"][column] += len(values)
    for flag, count in flags.items():
        out["flags"][flag] += count
    for band, values in pixels.items():
        add_pixels(out["bands"][band], values.reshape(-1), BANDS[band].dtype)


def shard_stats(path: str) -> dict[str, Any]:
    """Counts and pixel sums of one shard, read one row group at a time (iter_batches buffers far more), its
    bands straight from their pages (:func:`ben_hub.pages.band_grid`)."""
    parquet = pq.ParquetFile(path, pre_buffer=False)  # one row group in memory at a time
    schema = parquet.schema_arrow
    out, leaves = _empty(schema.names), leaf_columns(parquet)
    with open(path, "rb") as handle:
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=[*out["labels"], *FLAG_COLUMNS]).combine_chunks()
            if table.num_rows == 0:
                continue
            pixels = {b: band_grid(parquet, handle, group, leaves, b, BANDS[b].shape, BANDS[b].dtype, schema)
                      for b in out["bands"]}  # fmt: skip
            accumulate(
                out,
                table.num_rows,
                {c: pc.list_flatten(table.column(c)).to_numpy() for c in out["labels"]},
                {f: int(pc.sum(table.column(f)).as_py() or 0) for f in FLAG_COLUMNS},
                pixels,
            )
    return out


_EXACT_CHUNK = 2_000_000
"""Values per int64 accumulation: 2e6 * 65535^2 < 2^63, so sums of squares of uint16 values never overflow."""


def add_pixels(acc: dict[str, Any], values: np.ndarray, dtype: str) -> None:
    """Add pixel values to a sum / sum of squares accumulator (exact integers for integer bands).

    ``einsum`` rather than ``@``: a BLAS dot product starts OpenBLAS threads, which compete with the parquet
    writer inside the shard workers.
    """
    if dtype.startswith("uint"):
        for start in range(0, values.size, _EXACT_CHUNK):
            chunk = values[start : start + _EXACT_CHUNK].astype(np.int64)
            acc["sum"] += int(chunk.sum())
            acc["sumsq"] += int(np.einsum("i,i->", chunk, chunk))
    else:
        wide64 = values.astype(np.float64)
        acc["sum"] += float(wide64.sum())
        acc["sumsq"] += float(np.einsum("i,i->", wide64, wide64))
    acc["pixels"] += int(values.size)


def merge(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum shard (or cell) statistics, in the order given (deterministic for float bands)."""
    total: dict[str, Any] | None = None
    for part in parts:
        if total is None:
            total = {"rows": 0, "labels": {}, "label_total": {}, "flags": {},
                     "bands": {b: {"sum": 0, "sumsq": 0, "pixels": 0} for b in part["bands"]}}  # fmt: skip
        total["rows"] += part["rows"]
        for column, counts in part["labels"].items():
            prev = total["labels"].get(column, [0] * len(counts))
            total["labels"][column] = [a + b for a, b in zip(prev, counts, strict=True)]
            total["label_total"][column] = total["label_total"].get(column, 0) + part["label_total"][column]
        for flag, count in part["flags"].items():
            total["flags"][flag] = total["flags"].get(flag, 0) + count
        for band, acc in part["bands"].items():
            for key in ("sum", "sumsq", "pixels"):
                total["bands"][band][key] += acc[key]
    return total or {"rows": 0, "labels": {}, "label_total": {}, "flags": {}, "bands": {}}


def band_moments(acc: dict[str, Any]) -> dict[str, float]:
    """Mean and population standard deviation from an accumulator."""
    n = acc["pixels"]
    if not n:
        return {"mean": math.nan, "std": math.nan}
    mean = acc["sum"] / n
    if isinstance(acc["sum"], int):  # exact: n * sumsq - sum^2 is an integer
        variance = (n * acc["sumsq"] - acc["sum"] ** 2) / (n * n)
    else:
        variance = max(acc["sumsq"] / n - mean * mean, 0.0)
    return {"mean": round(mean, 6), "std": round(math.sqrt(variance), 6)}


def split_summary(cell: dict[str, Any]) -> dict[str, Any]:
    """What the card shows for one split: rows, label counts and shares, cardinality, flags."""
    rows = cell["rows"]
    return {
        "rows": rows,
        "labels": cell["labels"],
        "cardinality": {c: round(t / rows, 6) if rows else 0.0 for c, t in cell["label_total"].items()},
        "flags": cell["flags"],
    }


def compute_stats(
    root: Path,
    workers: int = 1,
    recorded: list[dict[str, Any]] | None = None,
    tables: list[pa.Table] | None = None,
) -> dict[str, Any]:
    """``stats.json`` of a repository: per cell, per configuration split, band moments and split quality.

    ``recorded``: per-shard statistics the shard writer kept while writing (in manifest order); without
    them every shard is streamed and counted again (what ``verify`` does).  ``tables``: each shard's
    :func:`small_columns`, when read already.
    """
    manifest = load_manifest(root)
    paths = [str(root / s["path"]) for s in manifest["shards"]]
    if recorded is not None:
        per_shard = recorded
    elif workers > 1:
        with process_pool(workers) as pool:
            per_shard = list(pool.map(shard_stats, paths))
    else:
        per_shard = [shard_stats(p) for p in paths]
    identity = load_json(root, "build.json")
    result = summarise(manifest["shards"], per_shard, resampled_targets(identity), identity.get("classes"))
    tables = tables if tables is not None else list(small_columns(root, manifest["shards"]))
    return result | placed_sections(manifest["shards"], tables)


def placed_sections(shards: list[dict[str, Any]], tables: list[pa.Table]) -> dict[str, Any]:
    """``stats.json``'s ``spatial``, ``countries`` and ``nearby`` from each shard's :data:`SMALL_COLUMNS` (those
    it has), in the manifest's order: a local recount and one on the Hub (range requests) alike."""
    has = lambda t, *names: set(names) <= set(t.column_names)  # noqa: E731
    return {
        "spatial": spatial_shares(
            zip((s["path"] for s in shards), (t.column("patch_id") for t in tables), strict=True)
        ),
        "countries": country_shares(shards, (t.column("country") if has(t, "country") else None for t in tables)),
        "nearby": nearby_shares(shards, (t.select(["lon", "lat"]) if has(t, "lon", "lat") else None for t in tables)),
    }


def resampled_targets(identity: dict[str, Any]) -> list[float] | None:
    """What the ``resampled`` split's quality is measured against: the build's ``ratios``, but for lists other than
    the paper's (``build.json``'s ``resampled_lists``), whose sizes the lists decide, ``None``: the split's own
    sizes, as for the official split."""
    return None if identity.get("resampled_lists") else identity["ratios"]


def summarise(
    shards: list[dict[str, Any]],
    per_shard: list[dict[str, Any]],
    ratios: list[float] | None,
    classes: int | None = None,
) -> dict[str, Any]:
    """``stats.json`` from each shard's statistics (in the manifest's order; ``ratios``: the resampled split's
    targets, ``classes``: the nomenclature it was stratified on when not the layout's, both from ``build.json``).
    Shard statistics without bands (``verify`` on the Hub counts labels and flags from those columns alone) give
    empty ``band_stats``."""
    cells: dict[str, list[dict[str, Any]]] = {}
    for shard, part in zip(shards, per_shard, strict=True):
        cells.setdefault(cell_of(shard["path"]), []).append(part)
    merged = {cell: merge(parts) for cell, parts in sorted(cells.items())}
    configs: dict[str, dict[str, Any]] = {}
    bands: dict[str, dict[str, dict[str, float]]] = {}
    for config, split_globs in CONFIGS.items():
        for split in split_globs:
            chosen = [m for c, m in merged.items() if cell_in_split(c, config, split)]
            if chosen:
                configs.setdefault(config, {})[split] = split_summary(merge(chosen))
                if split == "train":
                    bands[config] = {b: band_moments(acc) for b, acc in merge(chosen)["bands"].items()}
    targets = {"original": None, "resampled": ratios}
    quality = {
        c: split_quality(configs[c], r, classes)
        for c, r in targets.items()
        if set(configs.get(c, {})) == set(SPLITS) and all(configs[c][s]["rows"] for s in SPLITS)
    }
    return {
        "cells": {c: split_summary(m) for c, m in merged.items()},
        "configs": configs,
        "band_stats": bands,
        "quality": quality,
    }


def spatial_shares(shards: Iterable[tuple[str, pa.ChunkedArray]]) -> dict[str, Any] | None:
    """Per configuration (``original``, ``resampled``) and split, the share of its patches that touch (8-neighbourhood
    of the tile's patch grid) or repeat on another date a patch of another split
    (:func:`ben_hub.splits.spatial.touching`), from ``(shard path, its patch ids)``; ``None`` when the names do not
    give their places (or no patch is in the official set).  ``place``: ``tile`` or ``acquisition``."""
    from .splits import spatial

    columns, assignments = official_assignments((path, len(column), column) for path, column in shards)
    where = spatial.grid(pa.concat_arrays([c for column in columns for c in column.chunks])) if columns else None
    if where is None:
        return None
    touching = {}
    for config, assignment in assignments.items():
        shares = [round(share, 6) for share in spatial.touching(where, assignment, len(SPLITS))]
        touching[config] = dict(zip(SPLITS, shares, strict=True))
    return {"place": where.unit, "touching": touching}


def nearby_shares(shards: list[dict[str, Any]], tables: Iterable[pa.Table | None]) -> dict[str, Any] | None:
    """Per configuration and split, the share of its patches whose centre lies within ``reach_m`` metres of a patch
    of another split (:func:`ben_hub.splits.spatial.nearby`: also across overlapping tiles, UTM zones and dates,
    which :func:`spatial_shares`' names do not tell), from each shard's ``lon``/``lat`` columns (``None``: the shard
    has none) in the manifest's order; ``None`` when no patch of the official set has coordinates."""
    from .splits import spatial

    given = (
        (shard["path"], shard["rows"], (table, shard["rows"])) for shard, table in zip(shards, tables, strict=True)
    )
    kept, assignments = official_assignments(given)
    lon, lat = (np.concatenate([degrees(table, name, rows) for table, rows in kept] or [np.empty(0)])
                for name in ("lon", "lat"))  # fmt: skip
    if not np.isfinite(lon).any():
        return None
    touching = {}
    for config, assignment in assignments.items():
        shares = spatial.nearby(lon, lat, assignment, len(SPLITS))
        touching[config] = {split: round(share, 6) for split, share in zip(SPLITS, shares, strict=True)}
    return {"reach_m": spatial.REACH_M, "touching": touching}


def degrees(table: pa.Table | None, name: str, rows: int) -> np.ndarray:
    """A shard's ``lon`` or ``lat`` as float64, NaN where null or where the shard has no such column."""
    return np.full(rows, np.nan) if table is None else pc.fill_null(table.column(name), np.nan).to_numpy()


def country_shares(
    shards: list[dict[str, Any]], columns: Iterable[pa.ChunkedArray | None]
) -> dict[str, dict[str, list[int]]] | None:
    """Per configuration (``original``, ``resampled``), each country's patches per split in :data:`SPLITS` order
    (:func:`ben_hub.splits.spatial.country_counts`; ``unknown``: a patch without one), from each shard's ``country``
    column (``None``: the shard has none) in the manifest's order; ``None`` when no patch of the official set has a
    country (v1 without ``--countries``)."""
    from .splits import spatial

    given = ((shard["path"], shard["rows"], column if column is not None else null_column(shard["rows"]))
             for shard, column in zip(shards, columns, strict=True))  # fmt: skip
    kept, assignments = official_assignments(given)
    if not kept:
        return None
    country = pa.concat_arrays([c for column in kept for c in column.chunks])
    out = {
        config: spatial.country_counts(country, assignment, len(SPLITS)) for config, assignment in assignments.items()
    }
    return out if out["original"] else None


def null_column(rows: int) -> pa.ChunkedArray:
    """The ``country`` of a shard without one: ``rows`` nulls."""
    return pa.chunked_array([pa.nulls(rows, pa.string())])


def official_assignments(shards: Iterable[tuple[str, int, T]]) -> tuple[list[T], dict[str, np.ndarray]]:
    """Of ``(shard path, its rows, a value)`` in order, the values of the official set's shards (``excluded``'s are
    left out) and, per configuration, the split (an index into :data:`SPLITS`) of each of their patches: a shard's
    cell gives both splits of all its rows, so the work per patch is numpy's."""
    kept: list[T] = []
    splits: list[tuple[int, int, int]] = []  # per shard: original split, resampled split, rows
    for path, rows, value in shards:
        cell = cell_of(path)
        if cell != "excluded":
            original, resampled = cell.split("-")
            kept.append(value)
            splits.append((SPLITS.index(original), SPLITS.index(resampled), rows))
    counts = [n for *_, n in splits]
    return kept, {config: np.repeat(np.array([s[which] for s in splits], dtype=np.int8), counts)
                  for which, config in enumerate(("original", "resampled"))}  # fmt: skip


SMALL_COLUMNS = ("patch_id", "country", "lon", "lat")
"""The per-patch columns besides labels and flags that ``stats.json`` is counted from (a shard has ``country`` and
``lon``/``lat`` when its build wrote them)."""


def small_columns(root: Path, shards: list[dict[str, Any]]) -> Iterable[pa.Table]:
    """Each shard's :data:`SMALL_COLUMNS` that it has, one read of one file a shard."""
    for shard in shards:
        path = root / shard["path"]
        names = set(pq.read_schema(path).names)
        yield pq.read_table(path, columns=[c for c in SMALL_COLUMNS if c in names])


def table_stats(table: pa.Table) -> dict[str, Any]:
    """Label and flag counts of a shard's rows (its label and flag columns; bands are not counted)."""
    out = _empty([c for c in table.column_names if c not in BANDS])
    if table.num_rows:
        accumulate(
            out,
            table.num_rows,
            {c: pc.list_flatten(table.column(c)).to_numpy() for c in out["labels"]},
            {f: int(pc.sum(table.column(f)).as_py() or 0) for f in FLAG_COLUMNS},
            {},
        )
    return out


def split_quality(splits: dict[str, Any], ratios: list[float] | None, classes: int | None = None) -> dict[str, Any]:
    """LD, ED, zero pairs ... of one configuration from its label counts: on ``classes`` (19: ``labels_19``), by
    default on the 43 classes where present.

    ``ratios`` are the targets; ``None`` (the official split, which had none) measures against the split's
    own proportions, so ED is 0 and the deviations compare each label's share with its split's share.
    """
    column = "labels" if "labels" in splits["train"]["labels"] and classes != 19 else "labels_19"
    names = LABELS_43 if column == "labels" else LABELS_19
    per_split = np.array([splits[s]["labels"][column] for s in SPLITS])
    sizes = [splits[s]["rows"] for s in SPLITS]
    targets = ratios or [size / sum(sizes) for size in sizes]
    return quality_from_counts(per_split, sizes, targets, names)
