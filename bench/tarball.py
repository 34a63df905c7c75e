"""Building from the downloads: decompression in a second thread, and S1 from its own tarball.

    python bench/tarball.py [--patches 3000] [--repeats 3]

A synthetic v1 archive (S2 folder + S1 twins), each part also packed as its published download
(``BigEarthNet-v1.0.tar.gz``, ``BigEarthNet-S1-v1.0.tar.gz``).  Every way below runs one build process, alternated
with the others in each repeat, its inputs read into the page cache first; medians of ``--repeats``:
  - S2 only, from the S2 tarball: before (``ben_hub.archive.tar.READ_AHEAD = False``: ``tarfile``, zlib inflating
    inline) and now (the default: ben-hub's tar reader, ISA-L inflating in a second thread); from the folder for scale;
  - inflating the S2 tarball alone, 1 MiB of input at a time: zlib against ISA-L;
  - S1 alone: unpacking its tarball with ``tar -xzf``, and staging it (``ben_hub.archive.pack.stage``) before and now;
  - S2 + S1: (a) unpack the S1 tarball, then build from the two folders (the user's way until now) against (b) build
    with the S1 tarball itself (staged into ``.ben-hub/s1``, then deleted), the staging before the label scan (as
    before) and beside it in a thread (now); the same with both tarballs;
  - a synthetic reBEN archive of as many patches, its parts as ``.tar.zst`` (labels from ``metadata.parquet``: one
    pass): S2 only before and now, and from the folder; S2 + S1 from both tarballs (S1 staged before and beside the
    scan of the metadata) and from the folders.
Repositories that should agree are checked byte-identical first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
S2_FOLDER, S1_FOLDER = "BigEarthNet-v1.0", "BigEarthNet-S1-v1.0"


def ahead(on: bool, run: Callable[[], object]) -> Callable[[], object]:
    """``run`` with the tar reader's decompression in a second thread (``on``) or inline."""
    from common import with_values

    from ben_hub.archive import tar

    return with_values(tar, {"READ_AHEAD": on}, run)


def beside(on: bool, run: Callable[[], object]) -> Callable[[], object]:
    """``run`` with an S1 tarball staged beside the label scan (``on``) or before it."""
    from common import with_values

    from ben_hub import build

    return with_values(build, {"STAGE_BESIDE_SCAN": on}, run)


def inflate(tarball: Path, module: Any) -> int:
    """Inflate a gzip file 1 MiB of input at a time with ``module`` (zlib's interface); the bytes out."""
    out, inflater = 0, module.decompressobj(31)
    with tarball.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            out += len(inflater.decompress(chunk))
    return out


def reben_ways(work: Path, reben: Path) -> dict[str, Callable[[], object]]:
    """reBEN's downloads (``.tar.zst``; labels from ``metadata.parquet``, so one pass), by row label."""
    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, build

    tars = work / "reben-tars"

    def build_into(name: str, source: Path, with_s1: bool) -> None:
        shutil.rmtree(work / name, ignore_errors=True)
        spec = locate_archive(source, with_s1=with_s1, metadata=reben / "metadata.parquet")
        build(BuildConfig(spec=spec, method="fast"), work / name, progress=False)

    s2 = tars / "BigEarthNet-S2.tar.zst"

    def both(name: str) -> Callable[[], None]:
        return lambda: build_into(name, s2, True)

    return {
        "reBEN S2 only: .tar.zst, before (tarfile, inline)": ahead(False, lambda: build_into("v2-inline", s2, False)),
        "reBEN S2 only: .tar.zst, now (zstd in a 2nd thread)": ahead(True, lambda: build_into("v2-ahead", s2, False)),
        "reBEN S2 only: folder": lambda: build_into("v2-folder", reben, False),
        "reBEN S2 + S1: folders": lambda: build_into("v2-both-folders", reben, True),
        "reBEN S2 + S1: both .tar.zst, S1 staged before the metadata scan": beside(False, both("v2-both-tars-before")),
        "reBEN S2 + S1: both .tar.zst, S1 staged beside it (now)": beside(True, both("v2-both-tars")),
    }  # fmt: skip


def ways_for(work: Path, archive: Path) -> dict[str, Callable[[], object]]:
    """Each way to time, by its row label."""
    import zlib

    from ben_hub.archive import locate_archive, pack
    from ben_hub.archive.tar import inflate_module
    from ben_hub.build import BuildConfig, build

    s2_tar, s1_tar, unpacked = work / f"{S2_FOLDER}.tar.gz", work / f"{S1_FOLDER}.tar.gz", work / "unpacked"

    def build_into(name: str, source: Path, s1: Path | None) -> None:
        shutil.rmtree(work / name, ignore_errors=True)
        spec = locate_archive(source, with_s1=s1 is not None, s1_dir=s1)
        build(BuildConfig(spec=spec, lists_dir=archive / "splits", method="fast"), work / name, progress=False)

    def unpack() -> None:
        shutil.rmtree(unpacked, ignore_errors=True)
        unpacked.mkdir()
        subprocess.run(["tar", "-C", str(unpacked), "-xzf", str(s1_tar)], check=True)

    def unpack_and_build() -> None:
        unpack()
        build_into("a", archive, unpacked / S1_FOLDER)

    def into(name: str, source: Path) -> Callable[[], None]:
        return lambda: build_into(name, source, s1_tar)

    def stage() -> None:
        shutil.rmtree(work / "staged", ignore_errors=True)
        pack.stage(s1_tar, work / "staged", "v1")

    return {
        "S2 only: S2 tarball, before (tarfile, zlib inline)": ahead(False, lambda: build_into("inline", s2_tar, None)),
        "S2 only: S2 tarball, now (ISA-L in a 2nd thread)": ahead(True, lambda: build_into("ahead", s2_tar, None)),
        "S2 only: S2 folder": lambda: build_into("s2-folder", archive, None),
        "inflate the S2 tarball alone: zlib": lambda: inflate(s2_tar, zlib),
        "inflate the S2 tarball alone: ISA-L (isal)": lambda: inflate(s2_tar, inflate_module()),
        "S1 alone: tar -xzf": unpack,
        "S1 alone: stage, before (tarfile, zlib inline)": ahead(False, stage),
        "S1 alone: stage, now": ahead(True, stage),
        "S2 + S1: (a) unpack S1 with tar -xzf, then build from the folders": unpack_and_build,
        "S2 + S1: (b) build with the S1 tarball, staged before the label scan": beside(False, into("b0", archive)),
        "S2 + S1: (b) build with the S1 tarball, staged beside the label scan (now)": beside(True, into("b", archive)),
        "S2 + S1: both tarballs, S1 staged before the label scan": beside(False, into("c-before", s2_tar)),
        "S2 + S1: both tarballs, S1 staged beside the label scan (now)": beside(True, into("c", s2_tar)),
    }  # fmt: skip


def main() -> None:
    from common import (
        RATE_HEADER,
        alternated_medians,
        arguments,
        pack_v1_downloads,
        publish,
        rate_rows,
        repo_digest,
        scratch,
        warm_cache,
    )

    args = arguments(__doc__)

    from ben_hub.archive.synth import synth_archive

    with scratch("ben-hub-tarball-", args.work) as work:
        archive = work / f"archive-{args.patches}"
        if not archive.exists():
            synth_archive(archive, args.patches, "v1", seed=0, with_s1=True)
        pack_v1_downloads(work, archive)
        reben = work / f"reben-{args.patches}"
        if not reben.exists():
            synth_archive(reben, args.patches, "v2", seed=0, with_s1=True)
        (work / "reben-tars").mkdir(exist_ok=True)
        for folder in ("BigEarthNet-S2", "BigEarthNet-S1"):
            if not (work / "reben-tars" / f"{folder}.tar.zst").exists():
                tarball = str(work / "reben-tars" / f"{folder}.tar.zst")
                subprocess.run(["tar", "--sort=name", "-C", str(reben), "--zstd", "-cf", tarball, folder], check=True)
        ways = ways_for(work, archive) | reben_ways(work, reben)
        for run in ways.values():
            run()
        groups = [
            ("inline", "ahead", "s2-folder"),
            ("a", "b0", "b", "c-before", "c"),
            ("v2-inline", "v2-ahead", "v2-folder"),
            ("v2-both-folders", "v2-both-tars", "v2-both-tars-before"),
        ]
        for group in groups:  # the ways that read the same archive otherwise (S1 from its tarball, say)
            assert len({repo_digest(work / name) for name in group}) == 1, f"{group} gave other repositories"
        inputs = (archive, reben, work / "reben-tars", work / f"{S2_FOLDER}.tar.gz", work / f"{S1_FOLDER}.tar.gz")
        median = alternated_medians(ways, args.repeats, lambda: warm_cache(*inputs))
        rows = rate_rows(median, args.patches)
        mib = {f: (work / f"{f}.tar.gz").stat().st_size / 2**20 for f in (S2_FOLDER, S1_FOLDER)}
        note = (f"; {args.patches:,} synthetic v1 patches with S1 twins; tarballs (gzip) of {mib[S2_FOLDER]:.0f} MiB "
                f"(S2) and {mib[S1_FOLDER]:.0f} MiB (S1); as many synthetic reBEN patches, `.tar.zst` (GNU tar --zstd, "
                "default level); one build process, `fast` split, inputs read into the page "
                f"cache before each run, alternated, medians of {args.repeats}; the repositories of "
                "each group of rows byte-identical")  # fmt: skip
        publish(f"tarball: building from the downloads, medians of {args.repeats}",
                f"python bench/tarball.py --patches {args.patches} --repeats {args.repeats}", note,
                RATE_HEADER, rows)  # fmt: skip


if __name__ == "__main__":
    main()
