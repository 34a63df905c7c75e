"""``build --plan`` against the build it plans: what the plan costs, and how close its size and time come.

    python bench/plan.py [--patches 3000] [--repeats 3]

A synthetic v1 archive (``bench/common.py: synthetic_repo``, S2 only, ``fast`` split), in the page cache.
Alternated, medians of ``--repeats``:
  - the plan (``ben_hub.estimate.estimate_build``: label scan, both splits, shard plan, and 128 patches spread over
    the archive written to a temporary folder with the build's settings);
  - the build it plans, in one process (``-j 1``, the rate the plan projects), into a fresh folder each time.
Then the plan's projected shard bytes against the bytes the build wrote, and its projected one-process time
against the build's measured time.  Synthetic patches are not real ones (they compress differently), but both
sides here read the same archive, which is what the projection's accuracy is about.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from common import alternated_medians, arguments, publish, scratch, synthetic_repo, warm_cache

    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, build
    from ben_hub.estimate import BuildEstimate, estimate_build

    args = arguments(__doc__)
    with scratch("plan", args.work) as work:
        archive, _ = synthetic_repo(work, args.patches)
        config = BuildConfig(spec=locate_archive(archive, with_s1=False), lists_dir=archive / "splits", method="fast")
        out = work / "planned"
        plans: list[BuildEstimate] = []
        written: list[int] = []

        def plan() -> None:
            plans.append(estimate_build(config, out, progress=False))

        def run_build() -> None:
            shutil.rmtree(out, ignore_errors=True)
            build(config, out, progress=False)
            written.append(sum(s["bytes"] for s in json.loads((out / "manifest.json").read_text())["shards"]))

        median = alternated_medians(
            {"plan": plan, "build, one process": run_build}, args.repeats, lambda: warm_cache(archive)
        )
    planned_bytes = statistics.median(p.repository_bytes for p in plans)
    planned_seconds = statistics.median(p.seconds_one_process for p in plans)
    actual_bytes, build_s, plan_s = statistics.median(written), median["build, one process"], median["plan"]
    assert all(p.job_patches == args.patches for p in plans)
    rows = [
        ["wall seconds (plan / build)", f"{plan_s:.2f}", f"{build_s:.2f}", f"{plan_s / build_s:.1%}"],
        ["shard MB (projected / written)", f"{planned_bytes / 1e6:.1f}", f"{actual_bytes / 1e6:.1f}",
         f"{planned_bytes / actual_bytes:.3f}"],
        ["one-process seconds (projected / measured)", f"{planned_seconds:.2f}", f"{build_s:.2f}",
         f"{planned_seconds / build_s:.2f}"],
    ]  # fmt: skip
    publish(
        f"build --plan against the build: {args.patches:,} synthetic v1 patches (S2), medians of {args.repeats}",
        f"python bench/plan.py --patches {args.patches} --repeats {args.repeats}",
        f"; archive in the page cache; `fast` split; the plan samples {plans[0].sample_patches} patches",
        ["what", "plan", "build", "plan / build"],
        rows,
    )


if __name__ == "__main__":
    main()
