"""``-j`` for builds from a tarball: shards written by worker processes beside the process reading the download.

    python bench/tar_workers.py [--patches 3000] [--repeats 5]

A synthetic v1 archive (``bench/common.py: synthetic_repo``, S2 only, ``fast`` split) packed as its published
download, ``BigEarthNet-v1.0.tar.gz``, in the page cache.  Alternated, medians of ``--repeats``, each build into a
fresh folder (so each reads the labels through once, then the pixels):
  - ``-j 1``: this process reads the stream and writes every shard (every tarball build before 2026-11-27);
  - ``-j 2``: two worker processes write the shards while this one reads (now; ``-j`` defaults to the cores);
  - ``-j 2`` with one writer process (``ben_hub.build.stream_writers`` patched), to choose how many writers;
  - the stream alone: the S2 band files read out of the tarball with nothing written, the rate no number of
    writer processes can pass (ISA-L inflating in a thread, the tar reader in this one).
Both times are given: the whole build, and its pixel pass (``ben_hub.build.stream_tasks``).  The repositories are
checked byte-identical.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from common import (
        alternated_medians,
        arguments,
        pack_v1_part,
        publish,
        repo_digest,
        scratch,
        synthetic_repo,
        timed_calls,
        warm_cache,
    )

    from ben_hub import build as module
    from ben_hub.archive import locate_archive
    from ben_hub.archive.tar import iter_patches
    from ben_hub.bands import bands_for
    from ben_hub.build import BuildConfig, build

    args = arguments(__doc__, repeats=5)
    with scratch("tar-workers", args.work) as work:
        archive, _ = synthetic_repo(work, args.patches)
        tarball = pack_v1_part(work, archive, "BigEarthNet-v1.0")
        spec = locate_archive(tarball, with_s1=False)
        passes: dict[str, list[float]] = {}
        writers_now = module.stream_writers

        def way(name: str, folder: str, processes: int, writers: int | None = None) -> Callable[[], None]:
            passes[name] = []

            def chosen(workers: int) -> int:
                return writers_now(workers) if writers is None else writers

            def run() -> None:
                out = work / folder
                shutil.rmtree(out, ignore_errors=True)
                module.stream_writers = chosen
                undo = timed_calls(module, "stream_tasks", passes[name])
                try:
                    build(BuildConfig(spec=spec, lists_dir=archive / "splits", method="fast", workers=processes), out,
                          progress=False)  # fmt: skip
                finally:
                    undo()
                    module.stream_writers = writers_now

            return run

        bands = tuple(b.name for b in bands_for(False))

        def stream_alone() -> None:
            assert sum(1 for _ in iter_patches(tarball, bands)) == args.patches

        builds = [("-j 1: one process reads and writes (before)", "j1", 1, None),
                  ("-j 2: two writer processes beside the reader (now)", "j2", 2, None),
                  ("-j 2 with one writer process", "j2-one", 2, 1)]  # fmt: skip
        ways: dict[str, Callable[[], object]] = {b[0]: way(*b) for b in builds}
        ways["the stream alone, nothing written"] = stream_alone
        median = alternated_medians(ways, args.repeats, lambda: warm_cache(tarball))
        assert len({repo_digest(work / folder) for _, folder, _, _ in builds}) == 1, "the repositories differ"
    rows = []
    for name, seconds in median.items():
        pixel = statistics.median(passes[name]) if passes.get(name) else seconds
        whole = f"{seconds:.2f}" if name in passes else "-"
        rows.append([name, whole, f"{pixel:.2f}", f"{args.patches / pixel:,.0f}"])
    publish(
        f"tarball builds with -j: {args.patches:,} synthetic v1 patches (S2 .tar.gz), medians of {args.repeats}",
        f"python bench/tar_workers.py --patches {args.patches} --repeats {args.repeats}",
        "; tarball in the page cache; `fast` split; each build into a fresh folder (labels pass, then pixel pass); "
        "repositories byte-identical",
        ["way", "build seconds", "pixel pass seconds", "pixel pass patches/s"],
        rows,
    )


if __name__ == "__main__":
    main()
