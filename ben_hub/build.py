"""Build a dataset repository from a raw archive: scan -> splits -> shards -> manifest and card.

Labels are cheap, pixels are expensive: every patch's labels are read first, both splits are decided,
then pixels are read exactly once and each patch is written into the shard of its
``(original split, resampled split)`` cell.  Shards are independent tasks: run them in parallel
(``workers``), resume after a crash (finished shards are skipped), or spread them over machines
(``job_index``/``job_count``); whichever job finds every shard done writes the manifest and README.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from . import card, repo, schema, splits, stats
from . import lists as public_lists
from .archive import LAYOUTS, ArchiveSpec, pack, scan_cache
from .archive.base import ScanOptions
from .archive.tar import is_tar, iter_patches
from .bands import BANDS, bands_for
from .errors import ArchiveError, ListError, PatchError, RepoError, SplitError
from .labels import LAYOUT_CLASSES
from .loader import multi_hot
from .repo import REPOSITORY_FILES, cell_of
from .shards import ShardTask, ShardWriter, WriteSettings, finished_record, write_json_atomic, write_shard
from .space import SpaceWatch, reported_full_disk
from .splits import spatial
from .streamed import shard_sink
from .workers import process_pool

CELL_SPLITS = splits.SPLITS
EXCLUDED = "excluded"


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one build; saved as ``.ben-hub/build.json`` (and ``build.json`` when finished).

    Attributes:
        spec: the archive.
        method: resampled split method (``iterstrat`` = the paper, ``random``, ``lists``).
        ratios, seed: target train/validation/test ratios and seed of the resampled split.
        block: with ``method='fast'``: stratify whole squares of ``block x block`` patches of each UTM zone's
            plane, each patch by the centre its name and tile give (v1: the tile of its ``tile_source``;
            :func:`ben_hub.splits.spatial.block_groups`), so neighbours, all dates of a place and the ground
            neighbouring tiles share meet across splits only at square edges.
        classes: the nomenclature the resampled split is stratified on and its quality measured by (43 or 19);
            ``None``: the layout's (43 for v1, the paper's; 19 for v2, reBEN's only).  19 for v1 stratifies on the
            ``labels_19`` its scan gives (the 43 classes grouped).
        lists_dir: folder with the official lists (``original/{train,val,test}.csv`` and exclusion lists);
            ``None`` downloads the published ones (v1 only).
        countries: v1 only: reBEN ``metadata.parquet`` (its snow/cloud companion beside it is read too), or
            ``Path("reben")`` for the published pair (downloaded once, :mod:`ben_hub.reben`), to fill ``country``
            by joining on ``s2v1_name``; v1's own JSON has no country.
        resampled_lists_dir: with ``method='lists'``: folder with ``train.csv``(optional), ``val.csv``,
            ``test.csv``; ``None`` uses ``<lists_dir>/resampled-paper`` or the paper's published lists.
        shard_size: rows per shard (118.2 KB each for real S2 patches, ``bench/scale.py``: 2,048 rows is ~240 MB).
        row_group_size: rows per parquet row group.
        skip_bad: record bad patches in ``skipped.json`` and go on, instead of stopping.
        subset: the archive folder holds part of BigEarthNet (a few tiles, a sample): the patches that the official
            lists (v1) or the metadata (v2) name but the folder lacks are left out of every configuration and
            only counted (``absent_from_archive`` in ``manifest.json``, and the card), instead of each being an
            error.  ``original`` is then the official split of the patches present and ``resampled`` re-splits
            them.  Not for tarballs, whose contents are known only once read through.
        compression_level: zstd level of the pages, lossless at every level.  -1 (default, zstd's fast mode):
            118.2 KB per real patch against 117.5 at level 1 and 114.5 at level 3 (``bench/scale.py``), and 61
            µs to encode a 120x120 band against 69 and 92 (``bench/parts.py``).
        writer: parquet writer (``ben-hub``: pixel pages written directly; ``pyarrow``: the reference, slower).
        workers: processes writing shards (from a tarball: beside the one that reads it, when more than one, and at
            most one a cell), and reading an unpacked v1 archive's JSONs when it holds at least
            ``ben_hub.archive.v1.PARALLEL_FROM`` patches (not part of the output's identity).
        job_index, job_count: this job's share of the shards (``k % job_count == job_index``).
    """

    spec: ArchiveSpec
    method: str = "iterstrat"
    ratios: tuple[float, float, float] = splits.PAPER_RATIOS
    seed: int = 0
    block: int | None = None
    classes: int | None = None
    lists_dir: Path | None = None
    resampled_lists_dir: Path | None = None
    countries: Path | None = None
    cache_dir: Path | None = None
    shard_size: int = 2048
    row_group_size: int = 32
    compression_level: int = -1
    skip_bad: bool = False
    subset: bool = False
    writer: str = "ben-hub"
    workers: int = 1
    job_index: int = 0
    job_count: int = 1

    def __post_init__(self) -> None:
        """Raises :class:`SplitError` for ratios no split can meet, before the archive is read or ``out`` touched."""
        splits.check_ratios(self.ratios)
        spatial.check_block(self.block, self.method)
        splits.check_classes(self.classes)
        splits.check_lists(self.method, self.resampled_lists_dir, self.ratios)
        if self.classes == 43 and self.spec.layout == "v2":
            raise SplitError("reBEN (v2) has only the 19-class labels: drop --classes 43")

    @property
    def stratified_classes(self) -> int:
        """The nomenclature the resampled split is stratified on: ``classes``, else 43 for v1 and 19 for v2."""
        return self.classes or LAYOUT_CLASSES[self.spec.layout]

    def identity(self) -> dict[str, Any]:
        """The settings that determine the output bytes (paths and parallelism excluded)."""
        keep = ("method", "ratios", "seed", "shard_size", "row_group_size", "compression_level", "skip_bad", "writer")
        out = {k: v for k, v in asdict(self).items() if k in keep}
        out.update(layout=self.spec.layout, with_s1=self.spec.with_s1, ratios=list(self.ratios))
        if self.countries is not None:
            out["countries"] = "reBEN metadata"
        if self.subset:  # only when set: the digests of complete builds stay as they were
            out["subset"] = True
        if self.block is not None:  # a --block build begun before countries were strata, or before its squares were
            # laid on the UTM zone's plane (reBEN names; v1 names with their tile_source's tile), is not resumed
            out["block"], out["block_strata"], out["block_grid"] = self.block, "labels and country", "utm zone"
            if self.spec.layout == "v1":
                out["block_tiles"] = "tile_source"
        if self.stratified_classes != LAYOUT_CLASSES[self.spec.layout]:  # only when not the layout's own
            out["classes"] = self.stratified_classes
        if self.method == "lists" and (lists := splits.list_provenance(self.resampled_lists_folder)) is not None:
            out["resampled_lists"] = lists  # lists other than the paper's: a build from other lists is not resumed
        return out

    @property
    def resampled_lists_folder(self) -> Path | None:
        """Where ``method='lists'`` reads its lists: ``resampled_lists_dir``, else ``<lists_dir>/resampled-paper``;
        ``None``: the paper's, downloaded."""
        return self.resampled_lists_dir or (self.lists_dir / "resampled-paper" if self.lists_dir else None)


@dataclass
class Problems:
    """Bad patches met while building: raise at once, or (``skip``) collect for ``skipped.json``."""

    skip: bool
    items: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, error: PatchError) -> None:
        if not self.skip:
            raise error
        self.items.append({"patch_id": error.patch_id, "reason": error.reason, "message": str(error)})


def check_duplicates(index: pa.Table) -> None:
    """Raise a :class:`PatchError` naming the first patch id that occurs twice."""
    ids = index.column("patch_id").to_numpy(zero_copy_only=False)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        patch = str(uniq[counts > 1][0])
        raise PatchError(
            patch, "duplicate_id", f"occurs {int(counts.max())} times in the archive; remove the duplicate folder"
        )


def label_matrix(index: pa.Table, column: str, n_labels: int) -> np.ndarray:
    """Boolean ``(rows, n_labels)`` matrix of a list-of-ids column."""
    return multi_hot(index.column(column), n_labels, bool)


def original_assignment(config: BuildConfig, index: pa.Table, problems: Problems) -> tuple[np.ndarray, pa.Table, int]:
    """Official split per patch (-1 = outside the official set), the index with exclusion flags set, and (with
    ``subset``) how many listed patches the archive lacks."""
    if config.spec.layout == "v2":
        codes = pc.index_in(index.column("_official"), value_set=pa.array(CELL_SPLITS))
        return pc.fill_null(codes, -1).to_numpy().astype(np.int8), index, 0
    ids = index.column("patch_id").to_pylist()
    keys = ["original/train", "original/validation", "original/test", "cloud_or_shadow", "seasonal_snow"]
    loaded = public_lists.load_lists(keys, config.lists_dir, config.cache_dir)
    mapped = splits.from_lists(ids, {s: loaded[f"original/{s}"] for s in CELL_SPLITS})
    already = {item["patch_id"] for item in problems.items}
    absent = [p for p in mapped.extra if p not in already]
    n = len(absent) - 1
    others = f" (nor {'is' if n == 1 else 'are'} {n:,} other listed patch{'' if n == 1 else 'es'})" if n else ""
    for patch in [] if config.subset else absent:
        problems(
            PatchError(
                patch,
                "absent_from_archive",
                f"is in the official split lists but not in the archive{others}; complete the archive, pass "
                "--subset if it is meant to hold part of BigEarthNet, or --skip-bad to record and go on",
            )
        )
    for flag in ("cloud_or_shadow", "seasonal_snow"):
        members = pc.is_in(index.column("patch_id"), value_set=pa.array(loaded[flag], pa.string()))
        index = index.set_column(index.schema.get_field_index(flag), flag, members)
    return mapped.assignment, index, len(absent) if config.subset else 0


def present_patches(s2_root: Path) -> set[str]:
    """``tile/patch`` of every patch folder under a v2 ``BigEarthNet-S2`` folder (two directory levels)."""
    import os

    present: set[str] = set()
    with os.scandir(s2_root) as tiles:
        for tile in tiles:
            if tile.is_dir():
                with os.scandir(tile.path) as patches:
                    present.update(f"{tile.name}/{patch.name}" for patch in patches if patch.is_dir())
    return present


def keep_present(config: BuildConfig, index: pa.Table, problems: Problems) -> tuple[pa.Table, int]:
    """v2 from an unpacked folder: the index rows whose S2 folder exists, and (with ``subset``) how many were
    dropped.  Without ``subset`` a patch the metadata lists and the folder lacks is a bad patch, met before any
    shard is written (an error, or with ``--skip-bad`` one recorded in ``skipped.json`` and left out of the
    splits), where it would otherwise stop the writing at its first band file."""
    if config.spec.layout != "v2" or is_tar(config.spec.s2):  # a tarball's patches are known once read through
        return index, 0
    present = pa.array(list(present_patches(config.spec.s2)), pa.string())
    found = pc.is_in(index.column("_s2_dir"), value_set=present)
    kept = index.filter(found)
    dropped = index.num_rows - kept.num_rows
    if config.subset or not dropped:
        return kept, dropped
    lacking = index.filter(pc.invert(found)).select(["patch_id", "_s2_dir"]).to_pylist()
    others = f" (nor are {dropped - 1:,} other patches it lists)" if dropped > 1 else ""
    for row in lacking:
        problems(PatchError(
            row["patch_id"], "absent_from_archive",
            f"metadata.parquet lists it, but {config.spec.s2} has no folder {row['_s2_dir']}{others}; complete the "
            "archive, pass --subset if it is meant to hold part of reBEN, or --skip-bad to record and go on",
        ))  # fmt: skip
    return kept, 0


def resampled_assignment(config: BuildConfig, index: pa.Table, official: np.ndarray) -> np.ndarray:
    """Resampled split per patch of the official set (-1 elsewhere)."""
    member = official >= 0
    ids = pc.filter(index.column("patch_id"), pa.array(member))
    out = np.full(len(official), -1, dtype=np.int8)
    if config.method == "lists":
        out[member] = resampled_from_lists(config, ids.to_pylist())
        return out
    column = "labels" if config.stratified_classes == 43 else "labels_19"  # v1's scan holds both
    Y = multi_hot(pc.filter(index.column(column), pa.array(member)), config.stratified_classes, bool)
    order = pc.sort_indices(ids).to_numpy()  # patch-id order (stable, by UTF-8 bytes), whatever the archive order
    chosen = np.empty(len(ids), dtype=np.int8)
    if config.block is None:
        chosen[order] = splits.split(Y[order], config.method, config.ratios, config.seed)
    else:
        names = pc.take(ids, pa.array(order)).to_pylist()
        tiles = pc.take(pc.filter(index.column("tile_source"), pa.array(member)), pa.array(order))
        groups = spatial.block_groups(names, config.block, tiles)
        country = pc.take(pc.filter(index.column("country"), pa.array(member)), pa.array(order))
        strata = spatial.with_countries(Y[order], country)  # reBEN, or v1 with --countries: countries balanced too
        chosen[order] = spatial.grouped_split(strata, groups, config.ratios, config.seed)
    out[member] = chosen
    return out


def resampled_from_lists(config: BuildConfig, ids: list[str]) -> np.ndarray:
    """Resampled split from explicit lists (default: ``<lists_dir>/resampled-paper`` or the paper's)."""
    return splits.from_list_files(ids, config.resampled_lists_folder, config.cache_dir)[0]


def cell_name(original: int, resampled: int) -> str:
    """``train-validation`` = official train, resampled validation; ``excluded`` outside the official set."""
    return EXCLUDED if original < 0 else f"{CELL_SPLITS[original]}-{CELL_SPLITS[resampled]}"


def all_cells() -> list[str]:
    return [f"{a}-{b}" for a in CELL_SPLITS for b in CELL_SPLITS] + [EXCLUDED]


def cell_indices(official: np.ndarray, resampled: np.ndarray) -> np.ndarray:
    """Each patch's position in :func:`all_cells` (:func:`cell_name` of its two splits), as ``int16``."""
    cells = official.astype(np.int16) * len(CELL_SPLITS) + resampled
    return np.where(official < 0, len(all_cells()) - 1, cells).astype(np.int16)


def plan_shards(config: BuildConfig, index: pa.Table, cells: np.ndarray) -> list[ShardTask]:
    """Cut each cell's rows into shards of ``shard_size``; the order is fixed.

    From folders a shard lists its patches (index order).  From a tarball a shard is "the next
    ``shard_size`` patches of this cell in archive order", its digest tied to the tarball's size.
    """
    identity = json.dumps(config.identity(), sort_keys=True)
    stream = is_tar(config.spec.s2)
    if stream:
        identity += f"\ntarball {config.spec.s2.name} {config.spec.s2.stat().st_size}"
    ids = index.column("patch_id").combine_chunks() if index.num_rows else pa.array([], pa.string())
    tasks = []
    for code, cell in enumerate(all_cells()):
        rows = np.flatnonzero(cells == code)
        n_shards = -(-len(rows) // config.shard_size)
        for k in range(n_shards):
            take = rows[k * config.shard_size : (k + 1) * config.shard_size]
            relpath = f"data/{cell}/part-{k:05d}-of-{n_shards:05d}.parquet"
            members = f"{relpath} {len(take)}" if stream else "\n".join(ids.take(pa.array(take)).to_pylist())
            digest = hashlib.sha256(f"{identity}\n{members}".encode()).hexdigest()
            tasks.append(ShardTask(relpath, None if stream else take, digest, len(take)))
    return tasks


@dataclass(frozen=True)
class Plan:
    """The decided build: the index, per-patch cells and the shard tasks."""

    index: pa.Table
    cells: np.ndarray
    tasks: list[ShardTask]
    problems: list[dict[str, str]]
    absent: int = 0  # with ``subset``: patches named by the lists or the metadata, not in the archive


def scan_official(
    config: BuildConfig,
    problems: Problems,
    progress: bool = False,
    s1_ready: Callable[[], Any] = lambda: None,
    kept: Path | None = None,
) -> tuple[pa.Table, np.ndarray, int]:
    """The label index of the archive, each patch's official split (-1 outside the official set) and, with
    ``subset``, how many patches the lists or the metadata name that the archive lacks.  ``s1_ready`` returns
    once S1 can be read (a build stages its S1 tarball meanwhile), before v1's twins are joined; ``kept``: where
    a tarball's scan is kept for the runs after this one (:mod:`ben_hub.archive.scan_cache`)."""
    if config.subset and is_tar(config.spec.s2):
        raise ArchiveError(
            f"{config.spec.s2}: --subset needs an unpacked archive folder (a tarball's patches are known only once "
            "read through); unpack it, or drop --subset"
        )
    countries = country_metadata(config)  # before the scan: a missing file or failed download stops at once
    layout = LAYOUTS[config.spec.layout]
    options = ScanOptions(workers=config.workers, progress=progress)
    scan = functools.partial(layout.index, config.spec, problems, options)
    index = scan_cache.cached_scan(kept, config.spec, config.skip_bad, problems.items, scan)
    pa.default_memory_pool().release_unused()  # hand the scan's transient buffers back before splitting
    s1_ready()
    if layout.join_s1 is not None and config.spec.s1 is not None:
        index = layout.join_s1(index, config.spec, problems, options)
        pa.default_memory_pool().release_unused()
    check_duplicates(index)
    index, absent_v2 = keep_present(config, index, problems)
    if countries is not None:
        index = join_countries(index, countries)
    official, index, absent_v1 = original_assignment(config, index, problems)
    return index, official, absent_v1 + absent_v2


def make_plan(
    config: BuildConfig, progress: bool = True, s1_ready: Callable[[], Any] = lambda: None, kept: Path | None = None
) -> Plan:
    """Scan labels, decide both splits and cut shards, reading no pixel (``s1_ready``, ``kept``:
    :func:`scan_official`)."""
    problems = Problems(config.skip_bad)
    index, official, absent = scan_official(config, problems, progress, s1_ready, kept)
    resampled = resampled_assignment(config, index, official)
    cells = cell_indices(official, resampled)
    return Plan(index, cells, plan_shards(config, index, cells), problems.items, absent)


def country_metadata(config: BuildConfig) -> Path | None:
    """The reBEN ``metadata.parquet`` that fills a v1 build's ``country`` (the published one for ``reben``)."""
    from .reben import PUBLISHED, metadata_path

    if config.countries is None or config.spec.layout != "v1":
        return None
    path = metadata_path(config.countries)
    if not path.is_file():
        raise ListError(f"--countries {path} is not a file; pass reBEN's metadata.parquet, or {PUBLISHED!r} for the "
                        "published one (downloaded once)")  # fmt: skip
    return path


def join_countries(index: pa.Table, metadata: Path) -> pa.Table:
    """Fill v1's ``country`` from reBEN metadata (and its snow/cloud companion), joined on ``s2v1_name``."""
    import pyarrow.parquet as pq

    from .archive.v2 import EXTRA_NAME

    paths = [p for p in (metadata, metadata.with_name(EXTRA_NAME)) if p.is_file()]
    try:
        table = pa.concat_tables([pq.read_table(p, columns=["s2v1_name", "country"]) for p in paths])
    except (OSError, ValueError, KeyError) as err:
        raise ListError(
            f"cannot read s2v1_name/country from {metadata} ({err}); pass reBEN's metadata.parquet"
        ) from None
    where = pc.index_in(index.column("patch_id"), value_set=table.column("s2v1_name").combine_chunks())
    countries = pc.take(table.column("country").combine_chunks(), where)
    return index.set_column(index.schema.get_field_index("country"), "country", countries)


def changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The keys whose values differ, each as ``key <before> there, <after> now``, ``;``-separated."""
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return "; ".join(f"{k} {before.get(k, '(unset)')!r} there, {after.get(k, '(unset)')!r} now" for k in keys)


def check_out_dir(out: Path, config: BuildConfig) -> None:
    """Refuse to mix builds with different settings in one folder; record this build's settings (over those of a
    build that wrote nothing else: one stopped before its first shard, by an error in its labels, say; a kept
    label scan does not count, as it depends on none of the settings it does not name in its key)."""
    saved, kept = out / ".ben-hub" / "build.json", out / ".ben-hub" / "labels"
    if saved.exists() and any(p != saved and kept not in p.parents for p in out.rglob("*") if p.is_file()):
        require_settings(out, config)
    else:
        write_json_atomic(saved, config.identity())


def require_settings(out: Path, config: BuildConfig) -> None:
    """Raise :class:`RepoError` naming the differences when ``out``'s recorded settings are not ``config``'s."""
    previous, now = json.loads((out / ".ben-hub" / "build.json").read_text()), config.identity()
    if previous != now:
        raise RepoError(
            f"{out} holds a build with other settings ({changes(previous, now)}): run the same command with its "
            "settings to resume it, or use another --out, or delete it"
        )


def run_tasks(
    tasks: list[ShardTask],
    index: pa.Table,
    settings: WriteSettings,
    out: Path,
    workers: int,
    on_done: Callable[[dict], Any],
) -> None:
    """Write shards inline (``workers == 1``) or in a process pool; finished ones are reported to ``on_done``.

    A shard's metadata rows are materialised only when it is submitted, and at most ``2 * workers`` shards
    are in flight, so memory does not grow with the archive.
    """
    jobs = ((t, index.take(pa.array(t.rows)).to_pydict()) for t in tasks if t.rows is not None)
    if workers <= 1:
        for task, meta in jobs:
            on_done(write_shard(task, meta, settings, out))
        return
    with process_pool(workers) as pool:
        pending: set[Future] = set()
        for task, meta in jobs:
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_done(future.result())
            pending.add(pool.submit(write_shard, task, meta, settings, out))
        for future in as_completed(pending):
            on_done(future.result())


RERUN = "run the same command again: the build resumes where it stopped"


def build(config: BuildConfig, out: Path, progress: bool = True) -> dict[str, Any] | None:
    """Build (or resume) this job's shards of the repository at ``out``.

    Returns the manifest when every shard of the build is done (and then writes the repository files),
    ``None`` when other jobs still have shards to write.  A finished repository (:func:`finished_manifest`)
    is returned as it is, without reading the archive or staging S1 again.

    Raises:
        DiskFullError: when the disk fills up (every file is written atomically, so a rerun resumes).
    """
    with reported_full_disk(out, RERUN):
        out.mkdir(parents=True, exist_ok=True)
        check_out_dir(out, config)
        done = finished_manifest(out)
        kept = out / ".ben-hub" / "labels"
        if done is not None:  # a rerun, or a cluster job started after the last one: read nothing, stage nothing
            pack.release(out / ".ben-hub" / "s1")  # left by a run stopped between its card and the release
            scan_cache.release(kept)
            return done
        with S1Staging(config, out, progress) as staging:
            config = staging.config
            if not STAGE_BESIDE_SCAN:
                staging.wait()
            plan = make_plan(config, progress, staging.wait, kept)
        # a cluster job started beside this one with other settings may have taken the folder while this one planned
        require_settings(out, config)
        plan = write_shards(config, plan, out, progress)
        records = [finished_record(out, t) for t in plan.tasks]
        if any(r is None for r in records):
            return None
        result = finalize(out, config, plan, [r for r in records if r])
        if config.spec.s1_pack is not None:
            pack.release(config.spec.s1_pack)  # the repository is finished: the staged S1 files are not needed
        scan_cache.release(kept)
        return result


@dataclass
class ShardProgress:
    """Counts finished shards into the progress bar, and projects the bytes still to write from the bytes
    written per patch so far (:class:`~ben_hub.space.SpaceWatch`: a warning when they outgrow the free space)."""

    bar: Any
    watch: SpaceWatch
    total: int
    patches: int = 0
    written: int = 0

    def __call__(self, record: dict[str, Any]) -> None:
        count = record["rows"] + len(record["skipped"])
        self.bar.update(count)
        self.patches += count
        self.written += record["bytes"]
        self.watch.check(self.patches / self.total if self.total else 1.0, self.written)


def job_tasks(config: BuildConfig, tasks: list[ShardTask]) -> list[ShardTask]:
    """This ``--job``'s shards: every ``job_count``-th from ``job_index``."""
    return [t for k, t in enumerate(tasks) if k % config.job_count == config.job_index]


def write_settings(config: BuildConfig) -> WriteSettings:
    """The parquet and reading settings every shard of ``config``'s build is written with."""
    feats = schema.features(config.spec.layout, config.spec.with_s1)
    return WriteSettings(
        config.spec,
        schema.storage_schema(feats),
        tuple(b.name for b in bands_for(config.spec.with_s1)),
        config.row_group_size,
        config.compression_level,
        config.skip_bad,
        config.writer,
    )


def write_shards(config: BuildConfig, plan: Plan, out: Path, progress: bool) -> Plan:
    """Write this job's unfinished shards; returns the plan with the problems met while streaming a tarball."""
    settings = write_settings(config)
    mine = job_tasks(config, plan.tasks)
    earlier = {t.relpath: finished_record(out, t) for t in mine}
    finished = [r for r in earlier.values() if r is not None]
    todo = [t for t in mine if earlier[t.relpath] is None]
    total = sum(t.size for t in mine)
    with tqdm(total=total, desc="write shards", unit=" patches", disable=not progress) as bar:
        on_done = ShardProgress(bar, SpaceWatch(out, "writing the shards"), total)
        for record in finished:
            on_done(record)
        if is_tar(config.spec.s2):
            problems = Problems(config.skip_bad, list(plan.problems))
            stream_tasks(plan, todo, settings, out, problems, on_done, config.shard_size, config.workers)
            return replace(plan, problems=problems.items)
        run_tasks(todo, plan.index, settings, out, config.workers, on_done)
    return plan


def finished_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of the finished repository at ``out`` when its files and every shard it lists (at the size
    it records) are in place, else ``None``.  Contents are not re-read: ``ben-hub verify`` checks them."""
    if not all((out / name).is_file() for name in REPOSITORY_FILES):
        return None
    try:
        manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
        shards = [(out / s["path"], s["bytes"]) for s in manifest["shards"]]
    except (ValueError, KeyError, TypeError):
        return None
    return manifest if all(path.is_file() and path.stat().st_size == size for path, size in shards) else None


STAGE_BESIDE_SCAN = True
"""Stage an S1 tarball in a thread while the labels are scanned; ``False``: before the scan, the way before, kept
as ``bench/tarball.py``'s baseline."""


class Cancelled(Exception):
    """Raised inside the staging thread when the build stops (the staging is started again next time)."""


class S1Staging:
    """With an S1 tarball, stage it once into ``out/.ben-hub/s1`` (:mod:`ben_hub.archive.pack`) in a thread,
    while the main thread scans the labels, and read S1 there.

    The codecs and file I/O release the GIL, so the two overlap even in one process: on 2 cores, whole builds of
    3,000 synthetic patches took 8.10 s against 9.04 with the staging before the scan for v1 from both tarballs
    (whose label scan reads the S2 tarball through), 6.30 against 6.59 from the S2 folder, and 6.75 against 7.08
    for reBEN's (``bench/tarball.py``, medians of 5).  ``wait`` returns once the staging is done (raising its
    error); leaving the block on an error stops the staging at its next patch.
    """

    def __init__(self, config: BuildConfig, out: Path, progress: bool) -> None:
        self.cancel = threading.Event()
        self.future: Future | None = None
        self.pool: ThreadPoolExecutor | None = None
        s1 = config.spec.s1
        if s1 is None or not is_tar(s1):
            self.config = config
            return
        dest = out / ".ben-hub" / "s1"
        self.config = replace(config, spec=replace(config.spec, s1_pack=dest))
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-s1")
        self.future = self.pool.submit(self.stage, s1, dest, config.spec.layout, progress)

    def stage(self, s1: Path, dest: Path, layout: str, progress: bool) -> None:
        size, watch = s1.stat().st_size, SpaceWatch(dest, f"staging {s1.name}")
        with tqdm(total=size, desc="stage S1 tarball", unit="B", unit_scale=True, disable=not progress) as bar:

            def step(done: float, written: int) -> None:
                if self.cancel.is_set():
                    raise Cancelled
                bar.update(max(0, int(done * size) - bar.n))
                watch.check(done, written)

            pack.stage(s1, dest, layout, step)

    def wait(self) -> None:
        if self.future is not None:
            self.future.result()

    def __enter__(self) -> S1Staging:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self.pool is None:
            return
        if kind is not None:
            self.cancel.set()
        self.pool.shutdown(wait=True)  # an error of the staging is raised by ``wait``, or lost to the one raised


def finalize(out: Path, config: BuildConfig, plan: Plan, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write ``manifest.json``, ``skipped.json``, ``build.json``, ``stats.json``, the plot and ``README.md``.

    Statistics come from what each shard writer counted in the row groups it wrote (``verify`` recounts them
    by streaming the shards).  Every file is deterministic for the same input; ``README.md`` is written
    last, so a repository with a card is a finished one.
    """
    skipped = sorted(plan.problems + [s for r in records for s in r["skipped"]], key=lambda s: s["patch_id"])
    sizes = repo.split_sizes(records)
    result = repo.manifest(records, sizes, plan.index.num_rows)
    if config.subset:
        result["absent_from_archive"] = plan.absent
    write_json_atomic(out / "skipped.json", skipped)
    write_json_atomic(out / "build.json", config.identity())
    write_json_atomic(out / "manifest.json", result)
    recorded = {r["path"]: r["stats"] for r in records}
    in_order = [recorded[s["path"]] for s in result["shards"]]
    write_json_atomic(out / "stats.json", stats.compute_stats(out, config.workers, in_order))
    card.write_card(out)
    return result


def stream_writers(workers: int) -> int:
    """Processes writing a tarball build's shards beside the one reading it, for ``-j workers``: none with one
    (the reader writes them), else ``workers``, but no more than the cells, as each cell has one shard open at a
    time (more would wait)."""
    return 0 if workers <= 1 else min(workers, len(all_cells()))


def stream_tasks(
    plan: Plan,
    todo: list[ShardTask],
    settings: WriteSettings,
    out: Path,
    problems: Problems,
    on_done: Callable[[dict], Any],
    shard_size: int,
    workers: int = 1,
) -> None:
    """Write shards from a tarball in one forward pass (S2 from the stream, S1 from a folder or its staging), in
    this process or by worker processes (:func:`stream_writers`).

    The i-th patch of a cell to arrive belongs to shard ``i // shard_size`` of that cell, so reruns and
    other jobs agree on shard contents; each cell has at most one open shard, so memory stays bounded.
    """
    names = all_cells()
    by_cell: dict[str, list[ShardTask]] = {}
    for task in plan.tasks:
        by_cell.setdefault(cell_of(task.relpath), []).append(task)
    wanted = {t.relpath for t in todo}
    row_of = {p: i for i, p in enumerate(plan.index.column("patch_id").to_pylist())}
    known_bad = {item["patch_id"] for item in problems.items}
    arrived = [0] * len(names)
    open_shard: dict[int, str] = {}  # cell code -> the relpath of its open shard
    s2_bands = tuple(b for b in settings.bands if BANDS[b].sensor == "s2")
    sink = shard_sink(stream_writers(workers), settings, out, on_done)
    try:
        for patch, files in iter_patches(settings.spec.s2, s2_bands):
            row = row_of.pop(patch, None)
            if row is None:
                if patch not in known_bad:
                    problems(
                        PatchError(patch, "not_in_index", "is in the tarball but has no labels (JSON or metadata row)")
                    )
                continue
            code = int(plan.cells[row])
            task = by_cell[names[code]][arrived[code] // shard_size]
            arrived[code] += 1
            if task.relpath not in wanted:
                continue
            if open_shard.get(code) != task.relpath:
                if code in open_shard:
                    sink.close(open_shard[code])
                sink.open(task)
                open_shard[code] = task.relpath
            sink.add(task.relpath, plan.index.slice(row, 1).to_pylist()[0], files)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    for patch in sorted(row_of):
        problems(
            PatchError(
                patch,
                "absent_from_archive",
                "has labels but no band files in the tarball; re-download the archive or pass --skip-bad",
            )
        )
    for task in todo:  # shards whose patches never arrived (all skipped): write them empty, but complete
        if finished_record(out, task) is None:
            on_done(ShardWriter(task, settings, out).close())


__all__ = ["BuildConfig", "build", "finished_manifest", "make_plan"]
