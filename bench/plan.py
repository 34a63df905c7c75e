"""``build --plan`` against the build it plans: what the plan costs, and how close its size and time come.

    python bench/plan.py [--patches 3000] [--repeats 3]

A synthetic v1 archive (``bench/common.py: synthetic_repo``, S2 only, ``fast`` split), in the page cache.
Alternated, medians of ``--repeats``:
  - the plan (``ben_hub.estimate.estimate_build``: label scan, both splits, shard plan, and 128 patches spread over
    the archive written to a temporary folder with the build's settings);
  - the build it plans, in one process (``-j 1``, the rate the plan projects), into a fresh folder each time;
  - the same archive packed as its download (``BigEarthNet-v1.0.tar.gz``): the plan into a fresh folder, then the
    build it plans into that folder, which takes the label scan the plan kept there (as a user's build after its
    plan does), so the build reads the download once.
Then the plan's projected shard bytes against the bytes the build wrote, and its projected one-process time
against the time the build spent writing its shards (``ben_hub.build.write_shards``: for the tarball, reading the
whole download through as well), which is what it projects: the label scan, the statistics and the card are not in
it.  Synthetic patches
are not real ones (they compress differently), but both sides here read the same archive, which is what the
projection's accuracy is about.
"""

from __future__ import annotations

import functools
import json
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
        scratch,
        synthetic_repo,
        timed_calls,
        warm_cache,
    )

    from ben_hub import build as module
    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, build
    from ben_hub.estimate import BuildEstimate, estimate_build

    args = arguments(__doc__)
    with scratch("plan", args.work) as work:
        archive, _ = synthetic_repo(work, args.patches)
        tarball = pack_v1_part(work, archive, "BigEarthNet-v1.0")
        sources = {"folder": archive, "tarball": tarball}
        configs = {k: BuildConfig(spec=locate_archive(path, with_s1=False), lists_dir=archive / "splits", method="fast")
                   for k, path in sources.items()}  # fmt: skip
        plans: dict[str, list[BuildEstimate]] = {k: [] for k in sources}
        written: dict[str, list[int]] = {k: [] for k in sources}
        writing: dict[str, list[float]] = {k: [] for k in sources}

        def plan(kind: str) -> None:
            out = work / kind
            if kind == "tarball":  # a fresh folder, where the build that follows finds the kept label scan
                shutil.rmtree(out, ignore_errors=True)
            plans[kind].append(estimate_build(configs[kind], out, progress=False))

        def run_build(kind: str) -> None:
            out = work / kind
            if kind == "folder":
                shutil.rmtree(out, ignore_errors=True)
            undo = timed_calls(module, "write_shards", writing[kind])
            try:
                build(configs[kind], out, progress=False)
            finally:
                undo()
            written[kind].append(sum(s["bytes"] for s in json.loads((out / "manifest.json").read_text())["shards"]))

        ways: dict[str, Callable[[], object]] = {}
        for kind in sources:
            ways[f"plan, {kind}"] = functools.partial(plan, kind)
            ways[f"build, {kind}, one process"] = functools.partial(run_build, kind)
        median = alternated_medians(ways, args.repeats, lambda: warm_cache(archive, tarball))
    rows = []
    for kind in sources:
        planned_bytes = statistics.median(p.repository_bytes for p in plans[kind])
        planned_seconds = statistics.median(p.seconds_one_process for p in plans[kind])
        actual_bytes, build_s = statistics.median(written[kind]), median[f"build, {kind}, one process"]
        writing_s = statistics.median(writing[kind])
        plan_s = median[f"plan, {kind}"]
        assert all(p.job_patches == args.patches for p in plans[kind])
        rows += [
            [f"{kind}: wall seconds (plan / build)", f"{plan_s:.2f}", f"{build_s:.2f}", f"{plan_s / build_s:.1%}"],
            [f"{kind}: shard MB (projected / written)", f"{planned_bytes / 1e6:.1f}", f"{actual_bytes / 1e6:.1f}",
             f"{planned_bytes / actual_bytes:.3f}"],
            [f"{kind}: one-process seconds (projected / the build's shard writing)", f"{planned_seconds:.2f}",
             f"{writing_s:.2f}", f"{planned_seconds / writing_s:.2f}"],
        ]  # fmt: skip
    publish(
        f"build --plan against the build: {args.patches:,} synthetic v1 patches (S2), medians of {args.repeats}",
        f"python bench/plan.py --patches {args.patches} --repeats {args.repeats}",
        f"; archive in the page cache; `fast` split; the plan samples {plans['folder'][0].sample_patches} patches; "
        "the tarball's build reads the label scan its plan kept",
        ["what", "plan", "build", "plan / build"],
        rows,
    )


if __name__ == "__main__":
    main()
