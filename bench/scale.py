"""Benchmark: output size on the real example patches, and planning memory at full reBEN scale.

1. Builds the six real BigEarthNet v1.0 patches in ``../shared/bigearthnet/example`` (S2 only) at zstd levels
   -1 (the default), 1 and 3 and reports parquet bytes per patch, against the raw band bytes.
2. Plans a build of the real reBEN metadata (549,488 patches: scan, both splits with ``fast`` and
   ``iterstrat``, shard plan; no pixels) in a fresh process per run, reporting median seconds and peak RSS over
   ``--repeats`` runs, the scan a column at a time (ben-hub's) beside the scan a row at a time it replaced
   (``bench/row_scan.py``), alternated.

    python bench/scale.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from common import ROOT, publish, scratch

SHARED = ROOT.parent / "shared" / "bigearthnet"

PLAN = """
import json, resource, sys, time
from pathlib import Path
if sys.argv[4] == "rows":
    sys.path.insert(0, "bench")
    import row_scan
    row_scan.install()
from ben_hub.archive import ArchiveSpec
from ben_hub.build import BuildConfig, make_plan
meta = Path(sys.argv[1])
spec = ArchiveSpec("v2", s2=Path(sys.argv[2]), metadata=meta / "metadata.parquet",
                   metadata_extra=meta / "metadata_for_patches_with_snow_cloud_or_shadow.parquet")
start = time.perf_counter()
plan = make_plan(BuildConfig(spec=spec, method=sys.argv[3]), progress=False)
print(json.dumps({"patches": plan.index.num_rows, "shards": len(plan.tasks), "seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
SCANS = {"columns": "scan a column at a time", "rows": "scan a row at a time (before, bench/row_scan.py)"}


def example_size(work: Path, level: int) -> list[str]:
    from ben_hub.archive import ArchiveSpec
    from ben_hub.build import BuildConfig, build

    s2 = SHARED / "example" / "BigEarthNet-S2-Example"
    raw = sum(p.stat().st_size for p in s2.glob("*/*.tif"))
    out = work / f"example-level{level}"
    lists = work / "lists"  # every example patch as "train", so that the build needs no other list
    if not lists.exists():
        (lists / "original").mkdir(parents=True)
        (lists / "original" / "train.csv").write_text("\n".join(p.name for p in sorted(s2.iterdir())) + "\n")
        for name in ("val.csv", "test.csv"):
            (lists / "original" / name).write_text("")
    config = BuildConfig(spec=ArchiveSpec("v1", s2=s2), lists_dir=lists, method="random", compression_level=level)
    build(config, out, progress=False)
    shards = sum(p.stat().st_size for p in (out / "data").rglob("*.parquet"))
    return [
        f"six real v1 patches, 12 S2 bands, zstd level {level}",
        f"{shards / 6:,.0f} bytes/patch parquet",
        f"{raw / 6:,.0f} bytes/patch GeoTIFF",
        "-",
    ]


def plan(work: Path, method: str, scan: str) -> dict[str, float]:
    """One plan of the real reBEN metadata in a fresh process: patches, shards, seconds and peak RSS (MB)."""
    out = subprocess.run(
        [sys.executable, "-c", PLAN, str(SHARED / "v2"), str(work / "s2"), method, scan],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def plan_rows(work: Path, repeats: int) -> list[list[str]]:
    """Both scans with both split methods, alternated, ``repeats`` times each: median seconds and peak RSS."""
    (work / "s2").mkdir()
    rows = []
    for method in ("fast", "iterstrat"):
        runs: dict[str, list[dict[str, float]]] = {scan: [] for scan in SCANS}
        for _ in range(repeats):
            for scan in SCANS:
                runs[scan].append(plan(work, method, scan))
        for scan, results in runs.items():
            first = results[0]
            rows.append(
                [
                    f"plan real reBEN ({first['patches']:,.0f} patches, {first['shards']:.0f} shards), {method}, "
                    f"{SCANS[scan]}",
                    f"{statistics.median(r['seconds'] for r in results):.1f} s",
                    "-",
                    f"{statistics.median(r['peak_rss_mb'] for r in results):,.0f}",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    with scratch("ben-hub-scale-") as work:
        rows = [example_size(work, level) for level in (-1, 1, 3)] + plan_rows(work, repeats)
        publish(
            "scale: real example patches, full-size reBEN plan",
            f"python bench/scale.py --repeats {repeats}",
            f"; the plan is everything before pixels: label scan, both splits, shard plan; medians of {repeats} "
            "runs, each in a fresh process",
            ["what", "result", "reference", "peak RSS (MB)"],
            rows,
        )


if __name__ == "__main__":
    main()
