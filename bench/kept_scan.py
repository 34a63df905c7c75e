"""A stopped build from a v1 S2 tarball, run again: its plan from the kept label scan, against scanning again.

    python bench/kept_scan.py [--patches 3000] [--repeats 3]

A synthetic v1 archive (``bench/common.py: synthetic_repo``, S2 only) packed as its download (``.tar.gz``); each way
plans the build (``ben_hub.build.make_plan``: label scan, both splits, shard plan; ``fast`` split), the tarball read
into the page cache first, alternated, medians of ``--repeats``:
  - the first run, or a rerun before this change: the tarball read through for its JSON files;
  - a rerun of a build stopped after its label scan: the scan kept in ``OUT/.ben-hub/labels``
    (``ben_hub.archive.scan_cache``), so the download is read only by the pixel pass that follows.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    import subprocess

    from common import (
        RATE_HEADER,
        alternated_medians,
        arguments,
        publish,
        rate_rows,
        scratch,
        synthetic_repo,
        warm_cache,
    )

    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, make_plan

    args = arguments(__doc__)
    with scratch("kept-scan", args.work) as work:
        archive, _ = synthetic_repo(work, args.patches)
        s2_tar = work / "BigEarthNet-v1.0.tar.gz"  # as the download: GNU tar, members in name order
        if not s2_tar.exists():
            subprocess.run(
                ["tar", "--sort=name", "-C", str(archive), "-czf", str(s2_tar), "BigEarthNet-v1.0"], check=True
            )
        config = BuildConfig(spec=locate_archive(s2_tar, with_s1=False), lists_dir=archive / "splits", method="fast")
        kept = work / "kept"
        shutil.rmtree(kept, ignore_errors=True)
        make_plan(config, progress=False, kept=kept)  # the stopped run's scan, kept
        plans = {}

        def scan_again() -> None:
            plans["scanned"] = make_plan(config, progress=False)

        def from_kept() -> None:
            plans["kept"] = make_plan(config, progress=False, kept=kept)

        ways: dict[str, Callable[[], object]] = {
            "label scan through the tarball (first run; every rerun before)": scan_again,
            "kept label scan (a rerun now)": from_kept,
        }
        median = alternated_medians(ways, args.repeats, lambda: warm_cache(s2_tar))
        assert (
            plans["kept"].index.equals(plans["scanned"].index) and (plans["kept"].cells == plans["scanned"].cells).all()
        )
        mib = s2_tar.stat().st_size / 2**20
    publish(
        f"plan of a rerun from the v1 S2 tarball: {args.patches:,} synthetic patches, medians of {args.repeats}",
        f"python bench/kept_scan.py --patches {args.patches} --repeats {args.repeats}",
        f"; tarball (gzip) of {mib:.0f} MiB in the page cache; one process, `fast` split; both plans equal",
        RATE_HEADER,
        rate_rows(median, args.patches),
    )


if __name__ == "__main__":
    main()
