"""A build's plan before it runs (``ben-hub build --plan``): counts, shards, size, time and disk, measured.

The labels are scanned and both splits decided exactly as the build does (the same :func:`~ben_hub.build.make_plan`),
so the counts are the build's.  Size and time come from a sample: :data:`SAMPLE` patches, spread evenly over an
unpacked archive's index (the first ones of a tarball's stream), are written into a throwaway shard with the
build's settings (bands, writer, compression, row groups), in a temporary folder outside ``out``.  The
repository's size is the sample's bytes per patch times the patches; the time is the patches over the sample's
rate in one process (from a tarball: its reading timed apart, for every patch of the download).  On 3,000
synthetic patches the projection came to 0.998 of the bytes written and 0.97 of the time the one-process build
spent writing its shards, for 5% of the build's time; from the same archive's ``.tar.gz``, 1.001 of the bytes and
1.45x the time, an upper bound (``bench/plan.py``).  No full real archive is here to check it on, and a synthetic
archive's size is no guide to a real one's (118.2 KB an S2 patch, ``bench/scale.py``).

An S1 *download* is not staged by a plan (staging writes as much as the unpacked S1 files): its bands are
counted at their uncompressed size (:data:`S1_RAW_BYTES`, an upper bound; float32 backscatter barely
compresses) and the staging's own disk is projected at the same size per patch.  A tarball's label scan reads
the whole download, so a plan keeps it in ``out/.ben-hub/labels`` (:mod:`~ben_hub.archive.scan_cache`) for the
build that follows; otherwise a plan writes nothing under ``out``.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from . import repo
from .archive import read_pixels
from .archive.tar import is_tar, iter_patches
from .bands import BANDS
from .build import BuildConfig, Plan, job_tasks, make_plan, write_settings
from .shards import ShardTask, ShardWriter, WriteSettings
from .space import free_bytes

SAMPLE = 128
"""Patches written to measure bytes and time (about 15 MB for real S2 patches)."""
S1_RAW_BYTES = 2 * 120 * 120 * 4
"""VV and VH, float32, 120 x 120: 115,200 bytes a patch, uncompressed."""


@dataclass(frozen=True)
class BuildEstimate:
    """What a build of ``config`` would write, before it writes anything.

    Attributes:
        splits: ``{config: {split: {"num_examples", "num_bytes"}}}`` as ``manifest.json`` will hold them (bytes
            estimated).
        patches: patches with labels in the archive (every configuration's rows together, each stored once).
        shards: shard files of the whole build; ``job_shards``/``job_patches``: this ``--job``'s share.
        problems: bad patches met while reading the labels (``--skip-bad``: recorded in ``skipped.json``).
        absent: with ``subset``: patches the lists or the metadata name that the archive lacks.
        sample_patches, sample_bytes, sample_seconds: the measured sample shard (rows written, parquet bytes,
            seconds to read and write them in one process).
        sample_stream_seconds: of ``sample_seconds``, those spent reading the sample's band files out of a tarball
            (0 for a folder, whose files are read as they are written).
        s1_unsampled_bytes: per patch, added for S1 bands that come from a download a plan does not stage.
        staging_bytes: disk the S1 staging takes while the build runs: every patch's twin, whichever ``--job``
            runs (0 without an S1 download).
        free_bytes: free bytes on the filesystem that will hold ``out``.
        streamed: S2 comes from a tarball, which one process reads through, whichever ``--job``, while ``workers``
            processes write this job's shards.
    """

    splits: dict[str, dict[str, dict[str, int]]]
    patches: int
    shards: int
    job_shards: int
    job_patches: int
    problems: int
    absent: int
    sample_patches: int
    sample_bytes: int
    sample_seconds: float
    s1_unsampled_bytes: int
    staging_bytes: int
    free_bytes: int
    streamed: bool = False
    sample_stream_seconds: float = 0.0

    @property
    def bytes_per_patch(self) -> float:
        return self.sample_bytes / max(self.sample_patches, 1) + self.s1_unsampled_bytes

    @property
    def repository_bytes(self) -> int:
        """This job's shards, estimated (the JSON files and the card beside them are a few MB)."""
        return round(self.job_patches * self.bytes_per_patch)

    @property
    def stream_seconds(self) -> float:
        """Reading a tarball through at the sample's rate: every patch, for any ``--job`` (0 for a folder)."""
        return self.patches * self.sample_stream_seconds / max(self.sample_patches, 1)

    @property
    def seconds_one_process(self) -> float:
        """This job's shards at the sample's rate in one process, plus reading the whole of a tarball.

        From a tarball this is an upper bound: the build inflates the stream in a second thread while it writes,
        which the sample, too short for the thread to get ahead, does not show (1.45x the build's shard writing on
        3,000 synthetic v1 patches in one job, against 0.97x from the folder; ``bench/plan.py``).
        """
        writing = self.sample_seconds - self.sample_stream_seconds
        return self.job_patches * writing / max(self.sample_patches, 1) + self.stream_seconds

    @property
    def needed_bytes(self) -> int:
        return self.repository_bytes + self.staging_bytes

    @property
    def enough_space(self) -> bool:
        return self.free_bytes >= self.needed_bytes


def plan_config(config: BuildConfig) -> BuildConfig:
    """``config`` with an S1 download left out (a plan does not stage it; :data:`S1_RAW_BYTES` stands in)."""
    s1 = config.spec.s1
    if s1 is None or not is_tar(s1):
        return config
    return replace(config, spec=replace(config.spec, s1=None))


def sample_rows(n: int, sample: int) -> np.ndarray:
    """``sample`` row numbers spread evenly over ``0 .. n-1`` (all of them when ``n <= sample``)."""
    return np.unique(np.linspace(0, n - 1, num=min(sample, n)).round().astype(np.int64)) if n else np.zeros(0, int)


def sample_reads(plan: Plan, settings: WriteSettings, sample: int) -> Iterator[tuple[dict[str, Any], Any]]:
    """``(index row, pixel reader)`` of the sample: evenly spread rows of a folder, the first of a tarball."""
    bands = tuple(BANDS[b] for b in settings.bands)
    spec = settings.spec
    if not is_tar(spec.s2):
        for meta in plan.index.take(pa.array(sample_rows(plan.index.num_rows, sample))).to_pylist():
            yield meta, functools.partial(read_pixels, spec, meta["patch_id"], meta["_s2_dir"], meta["_s1_dir"], bands)
        return
    row_of = {p: i for i, p in enumerate(plan.index.column("patch_id").to_pylist())}
    s2_bands = tuple(b.name for b in bands if b.sensor == "s2")
    taken = 0
    for patch, files in iter_patches(spec.s2, s2_bands):
        row = row_of.get(patch)
        if row is None:
            continue
        meta = plan.index.slice(row, 1).to_pylist()[0]
        yield meta, functools.partial(read_pixels, spec, patch, meta["_s2_dir"], meta["_s1_dir"], bands, files)
        taken += 1
        if taken == sample:
            return


def write_sample(plan: Plan, settings: WriteSettings, sample: int, progress: bool) -> tuple[int, int, float, float]:
    """Write the sample shard into a temporary folder; ``(rows written, bytes, seconds, of which reading the
    stream)``."""
    want = min(sample, plan.index.num_rows)
    with (
        tempfile.TemporaryDirectory(prefix="ben-hub-plan-") as tmp,
        tqdm(total=want, desc="sample", unit=" patches", disable=not progress) as bar,
    ):
        task = ShardTask("data/sample/part-00000-of-00001.parquet", None, "", want)
        start = time.perf_counter()
        writer, reads, streaming = ShardWriter(task, settings, Path(tmp)), sample_reads(plan, settings, sample), 0.0
        try:
            while True:
                before = time.perf_counter()
                item = next(reads, None)
                streaming += time.perf_counter() - before
                if item is None:
                    break
                writer.add(*item)
                bar.update()
            record = writer.close()
        except BaseException:
            writer.abort()
            raise
        return record["rows"], record["bytes"], time.perf_counter() - start, streaming


def estimate_build(config: BuildConfig, out: Path, sample: int = SAMPLE, progress: bool = True) -> BuildEstimate:
    """Scan, split and cut shards as :func:`~ben_hub.build.build` would, write a sample, and project the rest.

    Raises what the build would raise on the same input (a bad patch in the labels or in the sample without
    ``skip_bad``, missing lists, ...), so a plan finds those before hours of writing.
    """
    planned = plan_config(config)
    plan = make_plan(planned, progress, kept=out / ".ben-hub" / "labels")
    settings = write_settings(planned)
    measured = write_sample(plan, settings, sample, progress) if plan.tasks else (0, 0, 0.0, 0.0)
    rows, nbytes, seconds, streaming = measured
    s1_extra, streamed = S1_RAW_BYTES if planned is not config else 0, is_tar(config.spec.s2)
    per_patch = nbytes / max(rows, 1) + s1_extra
    records = [{"path": t.relpath, "rows": t.size, "bytes": round(t.size * per_patch)} for t in plan.tasks]
    mine = job_tasks(config, plan.tasks)
    job_patches = sum(t.size for t in mine)
    return BuildEstimate(
        splits=repo.in_config_order(repo.split_sizes(records)),
        patches=plan.index.num_rows,
        shards=len(plan.tasks),
        job_shards=len(mine),
        job_patches=job_patches,
        problems=len(plan.problems),
        absent=plan.absent,
        sample_patches=rows,
        sample_bytes=nbytes,
        sample_seconds=seconds,
        s1_unsampled_bytes=s1_extra,
        staging_bytes=plan.index.num_rows * s1_extra,  # every job stages the whole download, once, in ``out``
        free_bytes=free_bytes(out),
        streamed=streamed,
        sample_stream_seconds=streaming if streamed else 0.0,  # a folder's files are read as they are written
    )


__all__ = ["S1_RAW_BYTES", "SAMPLE", "BuildEstimate", "estimate_build"]
