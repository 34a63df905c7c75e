"""Tarball builds with ``-j``: shards written by worker processes beside the one reading the download."""

import contextlib
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ben_hub.archive import locate_archive
from ben_hub.archive.tar import iter_patches
from ben_hub.build import BuildConfig, all_cells, build, make_plan, stream_writers, write_settings
from ben_hub.errors import PatchError, RepoError
from ben_hub.streamed import InlineShards, ShardProcesses, portable, shard_sink

from .test_build_synth import tree_digest
from .test_tarball import make_tar


def leftovers(out: Path) -> list[Path]:
    """Temp files of shards, anywhere under ``out``."""
    return sorted(out.rglob(".*.tmp"))


@pytest.mark.parametrize("workers", [2, 3])
def test_writer_processes_build_the_same_repository_as_the_folder(
    built_v1: Path, synth_v1: Path, tmp_path: Path, workers: int
) -> None:
    """Whatever process writes a shard, it holds the same patches in the same order: byte-identical output."""
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar.gz")
    spec = locate_archive(tarball, s1_dir=synth_v1 / "BigEarthNet-S1-v1.0")
    out = tmp_path / "from-tar"
    build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=workers), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)
    assert not leftovers(out)


def test_writer_processes_resume_and_share_jobs(built_v1: Path, synth_v1: Path, tmp_path: Path) -> None:
    """Two ``--job``s, each with two writer processes, then a lost shard redone: the folder's repository."""
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar")
    spec = locate_archive(tarball, s1_dir=synth_v1 / "BigEarthNet-S1-v1.0")
    out = tmp_path / "out"
    for job in range(2):
        config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=2, job_index=job,
                             job_count=2)  # fmt: skip
        build(config, out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)
    sorted((out / "data").rglob("*.parquet"))[1].unlink()
    (out / "manifest.json").unlink()
    build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=2), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)


def test_a_bad_patch_in_a_writer_process_is_raised_here(synth_v1: Path, tmp_path: Path) -> None:
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz", skip="_B8A.tif")
    spec = locate_archive(tarball, with_s1=False)
    out = tmp_path / "a"
    with pytest.raises(PatchError, match=r"B8A.tif\): band file is missing from the tarball") as caught:
        build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=2), out, progress=False)
    assert caught.value.reason == "missing_band" and caught.value.patch_id  # the whole error, not its text
    assert not leftovers(out) and not list(out.rglob("*.parquet")) and not (out / "manifest.json").exists()
    config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, skip_bad=True, workers=2)
    result = build(config, tmp_path / "b", progress=False)
    assert result is not None and result["rows"] == 0
    skipped = json.loads((tmp_path / "b" / "skipped.json").read_text())
    assert len(skipped) == 160 and {s["reason"] for s in skipped} == {"missing_band"}


def started(synth_v1: Path, tmp_path: Path) -> tuple[ShardProcesses, list[dict], Path]:
    """Two writer processes given the first shard of a plan and its first 20 patches (one batch sent)."""
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar")
    config = BuildConfig(spec=locate_archive(tarball, with_s1=False), lists_dir=synth_v1 / "splits", shard_size=40)
    plan = make_plan(config, progress=False)
    settings, out, records = write_settings(config), tmp_path / "out", list[dict]()
    sink = ShardProcesses(2, settings, out, records.append)
    task = plan.tasks[0]
    sink.open(task)
    row_of = {p: i for i, p in enumerate(plan.index.column("patch_id").to_pylist())}
    stream = iter_patches(tarball, settings.bands)
    for _ in range(20):
        patch, files = next(stream)
        sink.add(task.relpath, plan.index.slice(row_of[patch], 1).to_pylist()[0], files)
    stream.close()
    return sink, records, out


def wait_for(condition: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_writer_process_that_dies_is_reported_with_what_to_do(synth_v1: Path, tmp_path: Path) -> None:
    sink, records, out = started(synth_v1, tmp_path)
    wait_for(lambda: leftovers(out))  # the shard's temp file: its first patches are being written
    for process in sink.processes:
        process.kill()  # as the kernel's out-of-memory killer would
    with pytest.raises(RepoError, match=r"died \(exit code -9.*run the same command again: the build resumes"):
        sink.finish()
    sink.abort()
    assert not leftovers(out) and not records


def test_abort_stops_the_writers_and_deletes_their_temp_files(synth_v1: Path, tmp_path: Path) -> None:
    sink, records, out = started(synth_v1, tmp_path)
    wait_for(lambda: leftovers(out))
    assert leftovers(out)
    sink.abort()
    assert all(p.exitcode is not None for p in sink.processes)
    assert not leftovers(out) and not list(out.rglob("*.parquet")) and not records


def test_writer_processes_for_each_j() -> None:
    """-j 1: the reader writes; more: that many writers, but at most one a cell (a cell has one shard open)."""
    assert [stream_writers(j) for j in (1, 2, 3, 64)] == [0, 2, 3, len(all_cells())] == [0, 2, 3, 10]


class NeedsItsKeyword(Exception):
    def __init__(self, *, why: str) -> None:
        super().__init__(why)


def test_a_workers_error_crosses_to_the_build_whole_or_as_its_text() -> None:
    """What a worker sends back: an OSError keeps errno and file (a full disk is then reported as in one process);
    an error that cannot be rebuilt on this side comes as a RuntimeError with its name and text."""
    full = pickle.loads(pickle.dumps(portable(OSError(errno.ENOSPC, "No space left", "/out/.part.tmp"))))
    assert isinstance(full, OSError) and full.errno == errno.ENOSPC and full.filename == "/out/.part.tmp"
    odd = pickle.loads(pickle.dumps(portable(NeedsItsKeyword(why="a codec's own error"))))
    assert type(odd) is RuntimeError and str(odd) == "NeedsItsKeyword: a codec's own error"


def test_one_worker_writes_in_this_process(synth_v1: Path, tmp_path: Path) -> None:
    config = BuildConfig(spec=locate_archive(synth_v1, with_s1=False), lists_dir=synth_v1 / "splits")
    sink = shard_sink(0, write_settings(config), tmp_path, lambda record: None)
    assert isinstance(sink, InlineShards)
    sink.finish()


ORPHANED = """
import os, signal, sys
from pathlib import Path
from ben_hub.streamed import ShardProcesses
from ben_hub.workers import process_pool

pool = process_pool(1)
pids = [pool.submit(os.getpid).result()]
sink = ShardProcesses(2, None, Path(sys.argv[1]), print)  # settings are only read by a shard's calls
pids += [p.pid for p in sink.processes]
print(*pids, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would: no cleanup runs here
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_workers_end_when_the_build_process_is_killed(tmp_path: Path) -> None:
    """A build killed with kill -9 leaves no worker waiting forever on a queue nobody writes to: pool workers
    (folder builds, scans, statistics, audits) and a tarball build's writer processes alike."""
    said, errors = tmp_path / "stdout", tmp_path / "stderr"
    with said.open("w") as stdout, errors.open("w") as stderr:  # files, not pipes: orphans would hold a pipe open
        code = subprocess.Popen([sys.executable, "-c", ORPHANED, str(tmp_path)], stdout=stdout, stderr=stderr).wait(60)
    assert code == -signal.SIGKILL, errors.read_text()
    pids = [int(p) for p in said.read_text().split()]
    assert len(pids) == 3
    try:
        wait_for(lambda: not any(running(p) for p in pids), seconds=20)
        assert not [p for p in pids if running(p)]
    finally:
        for pid in pids:  # when the test fails: no orphans left behind by it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
