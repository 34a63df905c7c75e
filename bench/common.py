"""Shared by the benchmark scripts: the machine line and appending a result table to BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """``x86_64, 2 cores, Python 3.11.7, 2026-11-26``: where and when the numbers were taken."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"


def publish(title: str, command: str, note: str, header: list[str], rows: list[list[str]], append: bool = True) -> str:
    """Print a markdown section and (``append``) add it to BENCHMARKS.md; returns the text."""
    lines = [f"\n### {title}\n", f"`{command}` on {machine()}{note}\n", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not append:
        return text
    with (ROOT / "BENCHMARKS.md").open("a") as handle:
        handle.write(text)
    return text


def _status_mb(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` in MB, or ``None`` off Linux."""
    try:
        with open("/proc/self/status") as handle:
            line = next(line for line in handle if line.startswith(f"{field}:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 1024


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB since it started or since :func:`reset_peak_rss`.

    Read from ``VmHWM`` (Linux): ``getrusage``'s ``ru_maxrss`` also counts the memory of the process a benchmark's
    fresh process was forked from, until its ``exec``, so a fresh process started by a parent holding 1 GB reports
    at least 1 GB (this project's benchmarks read it until 2026-11-27).  Elsewhere, ``ru_maxrss``.
    """
    import resource
    import sys

    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def rss_mb() -> float:
    """This process's resident memory now, in MB (``VmRSS``; 0 off Linux)."""
    return _status_mb("VmRSS") or 0.0


def reset_peak_rss() -> None:
    """Start :func:`peak_rss_mb` again from the memory in use now (Linux: ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


@contextmanager
def scratch(prefix: str, given: Path | None = None) -> Iterator[Path]:
    """The folder a benchmark works in: ``given`` as is (kept, so that a later run reuses its archive and repository),
    else a new temporary folder that is removed however the run ends (a 20,000-patch run leaves 2-4 GB)."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def warm_cache(*folders: Path) -> None:
    """Read every file below ``folders`` once, so each run starts from the page cache as the targets assume.

    Without this a run that follows another that wrote or read much (the conversion baseline writes 2.5 GB) reads
    part of its input from disk again: this machine's page cache is reclaimed in the background.  Files are read
    too (until 2026-11-27 only folders were: the tarballs ``bench/tarball.py`` names were not warmed).
    """
    files = [root for root in folders if root.is_file()]  # a tarball: os.walk yields nothing for a file
    for root in folders:
        files += [Path(folder, name) for folder, _, names in os.walk(root) for name in names]
    for path in files:
        with open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    os.sync()  # and the previous run's written files are on disk: their writeback does not slow this run


def synthetic_repo(work: Path, patches: int) -> tuple[Path, Path]:
    """A synthetic v1 archive of ``patches`` S2 patches (seed 0) and its built repository (``fast`` split, two
    workers) under ``work``, each made only when missing: ``(archive, repo)``."""
    from ben_hub.archive import locate_archive
    from ben_hub.archive.synth import synth_archive
    from ben_hub.build import BuildConfig, build

    archive, repo = work / f"archive-{patches}", work / f"repo-{patches}"
    if not archive.exists():
        synth_archive(archive, patches, "v1", seed=0, with_s1=False)
    if not (repo / "README.md").exists():
        spec = locate_archive(archive, with_s1=False)
        build(BuildConfig(spec=spec, lists_dir=archive / "splits", method="fast", workers=2), repo, progress=False)
    return archive, repo


V1_DOWNLOADS = ("BigEarthNet-v1.0", "BigEarthNet-S1-v1.0")
"""The v1 archive's two parts, packed by :func:`pack_v1_downloads` as ``<part>.tar.gz`` like the published downloads."""


def pack_v1_part(work: Path, archive: Path, part: str, shuffle: int | None = None) -> Path:
    """The ``part`` folder of the v1 ``archive`` as ``work/<part>.tar.gz`` (GNU tar, members in name order, as a
    folder build reads them; with a ``shuffle`` seed, its patch folders in a shuffled order, each folder's files in
    name order), packed only when missing."""
    import random
    import subprocess

    tarball = work / f"{part}.tar.gz"
    if not tarball.exists():
        work.mkdir(parents=True, exist_ok=True)
        if shuffle is None:
            subprocess.run(["tar", "--sort=name", "-C", str(archive), "-czf", str(tarball), part], check=True)
        else:
            folders = sorted(f"{part}/{p.name}" for p in (archive / part).iterdir())
            random.Random(shuffle).shuffle(folders)
            listing = work / f"{part}.members"
            listing.write_text("\n".join(folders) + "\n")
            command = ["tar", "--sort=name", "-C", str(archive), "-czf", str(tarball), "-T", str(listing)]
            subprocess.run(command, check=True)
    return tarball


def pack_v1_downloads(work: Path, archive: Path) -> tuple[Path, Path]:
    """The S2 and S1 folders of the v1 ``archive`` packed like the published downloads: ``(S2 tarball, S1 tarball)``
    (:func:`pack_v1_part`)."""
    s2, s1 = (pack_v1_part(work, archive, part) for part in V1_DOWNLOADS)
    return s2, s1


def repo_digest(repo: Path) -> str:
    """One sha256 over every file of a built repository but its private ``.ben-hub`` folder."""
    import hashlib

    files = sorted(p for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts)
    return hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).digest() for p in files)).hexdigest()


def with_values(module: Any, values: dict[str, Any], run: Callable[[], object]) -> Callable[[], object]:
    """``run`` with the attributes ``values`` of ``module`` set (a default-on switch kept as a baseline, a function
    as it was), each set back to what it was after the run."""

    def wrapped() -> object:
        before = {name: getattr(module, name) for name in values}
        for name, value in values.items():
            setattr(module, name, value)
        try:
            return run()
        finally:
            for name, value in before.items():
                setattr(module, name, value)

    return wrapped


def timed_calls(module: Any, name: str, spent: list[float]) -> Callable[[], None]:
    """Patch ``module.name`` (a function) to append each call's seconds to ``spent``; returns the undo."""
    original = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    setattr(module, name, timed)
    return lambda: setattr(module, name, original)


RATE_HEADER = ["way", "seconds", "patches/s"]
"""The columns of :func:`rate_rows`."""


def rate_rows(median: dict[str, float], patches: int) -> list[list[str]]:
    """A table row per way: its median seconds and the patches a second they make."""
    return [[way, f"{s:.2f}", f"{patches / s:,.0f}"] for way, s in median.items()]


def alternated_medians(
    ways: dict[str, Callable[[], object]], repeats: int, before: Callable[[], object]
) -> dict[str, float]:
    """Median seconds of each way over ``repeats`` rounds, the ways alternated within each round and ``before``
    (warming the page cache, say) run untimed before each."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, run in ways.items():
            before()
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def arguments(doc: str, patches: int = 3000, repeats: int = 3) -> argparse.Namespace:
    """The options most benchmarks share: ``--patches``, ``--repeats`` and ``--work`` (a scratch folder to keep)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--patches", type=int, default=patches)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder, kept for the next run to reuse")
    return parser.parse_args()
