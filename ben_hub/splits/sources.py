"""Label matrices from what a user has: an unpacked archive (labels scan), reBEN ``metadata.parquet``, or a built
repository (a folder, or one published on the Hub, read without its pixels)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import HubError, RepoError, SplitError
from ..labels import LABELS_19, LABELS_43, matrix_to_19
from ..loader import multi_hot
from . import SPLITS


@dataclass(frozen=True)
class LabelSource:
    """Patch ids, their label matrix and class names, the official split when known (-1 = none), each patch's
    country when known (reBEN; a v1 build with ``--countries``), its WGS84 centre (``(patches, 2)`` lon, lat in
    degrees, NaN where unknown) when the source has coordinates (a built repository), and its ``tile_source`` when the
    source has one (v1's names lack the tile it names: :func:`ben_hub.splits.spatial.name_points`), in the same
    order."""

    patch_ids: list[str]
    Y: np.ndarray
    names: tuple[str, ...]
    official: np.ndarray | None
    country: pa.Array | None = None
    centres: np.ndarray | None = None
    tile_sources: pa.Array | None = None

    def with_classes(self, classes: int | None, source: Path) -> LabelSource:
        """This source on the ``classes``-class nomenclature (43 or 19; ``None``: as read, 43 where there are, else
        19): v1's 43-class labels grouped into the 19 classes (:func:`ben_hub.labels.matrix_to_19`).

        Raises:
            SplitError: for 43 classes of a source that has only the 19 (reBEN), naming ``source``.
        """
        if classes is None or classes == len(self.names):
            return self
        if classes == len(LABELS_19) and self.names == LABELS_43:
            return replace(self, Y=matrix_to_19(self.Y), names=LABELS_19)
        raise SplitError(
            f"{source} has only the {len(self.names)}-class labels (reBEN's nomenclature), not {classes}: drop "
            "--classes"
        )


def from_metadata(path: Path) -> LabelSource:
    """reBEN ``metadata.parquet``: 19-class labels and the ``split`` column (-1 for any other value), sorted by patch
    id, a column at a time (:func:`ben_hub.archive.v2.label_lists`); a row without labels, or with a name outside
    the 19 classes, is a :class:`SplitError` naming the patch."""
    from ..archive.v2 import label_lists

    try:
        names = pq.read_schema(path).names
        columns = ["patch_id", "labels", "split", *(["country"] if "country" in names else [])]
        table = pq.read_table(path, columns=columns).sort_by("patch_id")
    except (OSError, ValueError, KeyError) as err:
        raise SplitError(f"cannot read patch_id/labels/split from {path} ({err})") from None
    lists, unknown = label_lists(table.column("labels"))
    check_labels(path, table, np.flatnonzero((np.asarray(pc.list_value_length(lists)) == 0) | (unknown >= 0)), unknown)
    official = pc.fill_null(pc.index_in(table.column("split"), value_set=pa.array(SPLITS)), -1)
    country = table.column("country").combine_chunks() if "country" in table.column_names else None
    return LabelSource(
        table.column("patch_id").to_pylist(),
        multi_hot(lists, 19, bool),
        LABELS_19,
        official.to_numpy().astype(np.int8),
        country,
    )


def check_labels(path: Path, table: pa.Table, bad: np.ndarray, unknown: np.ndarray) -> None:
    """A :class:`SplitError` naming the first of the ``bad`` rows (no labels, or the first unknown name's position
    in ``unknown``) and how many more there are."""
    if not bad.size:
        return
    row, more = int(bad[0]), f" (and {bad.size - 1:,} more rows)" if bad.size > 1 else ""
    patch = table.column("patch_id")[row].as_py()
    if unknown[row] >= 0:
        name = pc.list_flatten(table.column("labels").combine_chunks())[int(unknown[row])].as_py()
        what = f"has the label {name!r}, not one of the 19 classes' names"
    else:
        what = "has no labels"
    raise SplitError(f"{path}: patch {patch} {what}{more}; correct or drop it, or pass reBEN's published metadata")


def from_archive(
    root: Path, lists_dir: Path | None, subset: bool = False, workers: int = 1, countries: Path | None = None
) -> LabelSource:
    """An unpacked archive's labels (43 classes for v1, 19 for v2), official split and countries, via a build plan;
    ``subset``: the archive holds part of BigEarthNet, ``workers``: processes reading its JSONs, ``countries``:
    reBEN metadata giving v1's patches their country (:class:`ben_hub.build.BuildConfig`)."""
    from ..archive import lists_beside, locate_archive
    from ..build import BuildConfig, Problems, label_matrix, scan_official

    spec = locate_archive(root, with_s1=False)
    lists_dir = lists_dir or lists_beside(root, spec)
    config = BuildConfig(spec=spec, lists_dir=lists_dir, subset=subset, workers=workers, countries=countries)
    index, official, _ = scan_official(config, Problems(skip=False))
    column, names = ("labels", LABELS_43) if spec.layout == "v1" else ("labels_19", LABELS_19)
    Y = label_matrix(index, column, len(names))
    country, tiles = (index.column(name).combine_chunks() for name in ("country", "tile_source"))
    return LabelSource(index.column("patch_id").to_pylist(), Y, names, official, country, tile_sources=tiles)


LOCATING = {"country": pa.string(), "lon": pa.float64(), "lat": pa.float64(), "tile_source": pa.string()}
"""The columns beside the labels that a split reads of a built repository's shard where it has them."""


def label_columns(names: list[str]) -> list[str]:
    """What a split reads of a built repository's shard (its schema's ``names``): the id and the 43-class labels,
    or the 19-class ones where there are no others (reBEN), and the country and the centre (``lon``, ``lat``) where
    the shard has them, and the ``tile_source`` (whose tile v1 names lack)."""
    extra = [c for c in LOCATING if c in names]
    return ["patch_id", "labels" if "labels" in names else "labels_19", *extra]


def from_repository(root: Path) -> LabelSource:
    """A built repository: labels from its shards (only the label columns are read), official split from cells."""
    import json

    paths = [s["path"] for s in json.loads((root / "manifest.json").read_text())["shards"]]
    tables = [pq.read_table(root / p, columns=label_columns(pq.read_schema(root / p).names)) for p in paths]
    return from_shard_tables(paths, tables)


def from_hub(
    repo_id: str, revision: str | None = None, endpoint: str | None = None, progress: bool = True
) -> LabelSource:
    """A repository published on the Hub, as :func:`from_repository` reads a folder, but without downloading its
    shards: the id and label columns of each are read by HTTP range requests (:func:`ben_hub.remote.hub_columns`),
    at the commit that ``revision`` (default: ``main``) names when the read starts."""
    from ..remote import HubRepo, hub_columns

    shards, tables = hub_columns(HubRepo(repo_id, revision, endpoint), label_columns, progress)
    return from_shard_tables([s["path"] for s in shards], tables)


def from_shard_tables(paths: list[str], tables: list[pa.Table]) -> LabelSource:
    """Each shard's ``patch_id`` and label column (:func:`label_columns`), the official split from its cell (the
    first part of its folder's name; ``excluded``: none), sorted by patch id."""
    from ..repo import cell_of

    names, renamed, official = LABELS_19, [], []
    for path, table in zip(paths, tables, strict=True):
        names = LABELS_43 if "labels" in table.column_names else LABELS_19
        picked = table.select(label_columns(table.column_names)[:2]).rename_columns(["patch_id", "labels"])
        for name, kind in LOCATING.items():
            given = table.column(name) if name in table.column_names else pa.nulls(table.num_rows, kind)
            picked = picked.append_column(name, given)
        renamed.append(picked)
        cell = cell_of(path)
        code = -1 if cell == "excluded" else SPLITS.index(cell.split("-")[0])
        official.append(np.full(table.num_rows, code, np.int8))
    if not renamed:
        return LabelSource([], np.zeros((0, len(names)), bool), names, np.zeros(0, np.int8))
    table = pa.concat_tables(renamed)
    order = pc.sort_indices(table.column("patch_id")).to_numpy()  # stable, by UTF-8 bytes: patch-id order
    Y = multi_hot(table.column("labels"), len(names), bool)[order]
    ids = pc.take(table.column("patch_id"), order).to_pylist()
    country, tiles = (pc.take(table.column(c), order).combine_chunks() for c in ("country", "tile_source"))
    centres = np.stack([pc.fill_null(table.column(c), np.nan).to_numpy()[order] for c in ("lon", "lat")], axis=1)
    return LabelSource(ids, Y, names, np.concatenate(official)[order], country,
                       centres if np.isfinite(centres).any() else None, tiles)  # fmt: skip


def is_hub_id(path: Path) -> bool:
    """``OWNER/NAME`` that names nothing here (by :func:`ben_hub.hub.is_local`'s rule), and no file name: a dataset
    repository on the Hub."""
    from ..hub import is_local

    if path.exists() or path.suffix or "/" not in str(path):
        return False
    try:
        return not is_local(str(path))
    except RepoError:  # a path, not an id: ``a/b/c``, ``/a/b``
        return False


def load_source(
    path: Path,
    lists_dir: Path | None = None,
    subset: bool = False,
    workers: int = 1,
    hub: tuple[str | None, str | None] = (None, None),
    progress: bool = True,
    countries: Path | None = None,
) -> LabelSource:
    """A ``.parquet`` file is read as reBEN metadata, a folder with ``manifest.json`` as a built repository,
    any other folder as an archive (``subset``: one with part of BigEarthNet); the word ``reben`` is reBEN's
    published ``metadata.parquet`` (480,038 patches, downloaded once, :mod:`ben_hub.reben`); ``OWNER/NAME``
    that names no path here is a repository on the Hub (``hub``: its revision and the Hub's endpoint), whose
    labels are read without its pixels (:func:`from_hub`).  ``countries``: reBEN metadata that gives a v1 archive's
    patches their country (the others carry theirs).

    Raises:
        SplitError: for ``countries`` with a source other than a v1 archive folder, or ``subset`` with a source other
            than an archive folder (either would be ignored)."""
    from ..reben import PUBLISHED, fetch_metadata, is_published

    not_archive = (path.suffix == ".parquet" or is_published(path) or (path / "manifest.json").is_file()
                   or is_hub_id(path))  # fmt: skip
    if countries is not None and not_archive:
        raise SplitError(
            f"--countries fills a v1 archive's country; {path} carries its own (or none): drop --countries"
        )
    if subset and not_archive:
        raise SplitError(f"--subset splits the patches an archive folder holds; {path} is not an archive folder: drop "
                         "--subset")  # fmt: skip

    if is_published(path):
        return from_metadata(fetch_metadata()[0])
    if is_hub_id(path):
        try:
            return from_hub(str(path), *hub, progress=progress)
        except HubError as err:
            raise SplitError(f"{path} is no path here, and as a Hub dataset id: {err}") from None
    if not path.exists():
        raise SplitError(
            f"{path} does not exist; pass an archive folder, a built repository (a folder, or OWNER/NAME on the Hub), "
            f"a reBEN metadata.parquet, or {PUBLISHED!r} for reBEN's published metadata"
        )
    if path.suffix == ".parquet":
        return from_metadata(path)
    if (path / "manifest.json").is_file():
        return from_repository(path)
    return from_archive(path, lists_dir, subset, workers, countries)
