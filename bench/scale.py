"""Benchmark: output size on the real example patches, and planning time and memory at full scale.

1. Builds the six real BigEarthNet v1.0 patches in ``../shared/bigearthnet/example`` (S2 only) at zstd levels
   -1 (the default), 1 and 3 and reports parquet bytes per patch, against the raw band bytes.
2. Plans a build of the real reBEN metadata (549,488 patches: scan, both splits with ``fast`` and
   ``iterstrat``, shard plan; no pixels) in a fresh process per run, reporting median seconds and peak RSS over
   ``--repeats`` runs, the scan a column at a time (ben-hub's) beside the scan a row at a time it replaced
   (``bench/row_scan.py``), alternated.
3. With ``--v1-full``: plans a v1 build of all 590,326 v1 patches and their S1 twins the same way, by one and
   by two processes (``-j``: the JSONs read in parts), from a labels-only archive it writes first (one folder and
   ``_labels_metadata.json`` per patch named in the real official and exclusion lists, and per S1 twin, naming
   its S2 patch; no GeoTIFF; labels drawn with v1.0's per-class counts by ``synth_label_matrix``; about two
   minutes and 5 GB of small files, kept under ``--work`` for the next run).  The JSONs are read from the page
   cache.

    python bench/scale.py --repeats 3 [--v1-full --work /tmp/ben-hub-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import ROOT, publish, scratch, warm_cache

SHARED = ROOT.parent / "shared" / "bigearthnet"
LISTS = ("original/train.csv", "original/val.csv", "original/test.csv", "patches_with_cloud_and_shadow.csv",
         "patches_with_seasonal_snow.csv", "patches_with_no_19_class_targets.csv")  # fmt: skip
"""Every v1 patch is named in one of these (590,326 names in all)."""

PLAN = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, "bench")
from common import peak_rss_mb
settings = json.loads(sys.argv[1])
if settings.pop("scan") == "rows":
    import row_scan
    row_scan.install()
from ben_hub.archive import ArchiveSpec
from ben_hub.build import BuildConfig, make_plan
paths = {k: v if k == "layout" else Path(v) for k, v in settings.pop("spec").items()}
lists = Path(settings.pop("lists_dir")) if settings.get("lists_dir") else None
start = time.perf_counter()
plan = make_plan(BuildConfig(spec=ArchiveSpec(**paths), lists_dir=lists, **settings), progress=False)
print(json.dumps({"patches": plan.index.num_rows, "shards": len(plan.tasks), "seconds": time.perf_counter() - start,
                  "peak_rss_mb": peak_rss_mb()}))
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


def plan(settings: dict[str, Any]) -> dict[str, float]:
    """One plan in a fresh process: patches, shards, seconds and peak RSS (MB)."""
    done = subprocess.run([sys.executable, "-c", PLAN, json.dumps(settings)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"a plan failed ({settings}):\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def median_row(what: str, results: list[dict[str, float]]) -> list[str]:
    first = results[0]
    return [
        f"{what} ({first['patches']:,.0f} patches, {first['shards']:.0f} shards)",
        f"{statistics.median(r['seconds'] for r in results):.1f} s",
        "-",
        f"{statistics.median(r['peak_rss_mb'] for r in results):,.0f}",
    ]


def reben_rows(work: Path, repeats: int) -> list[list[str]]:
    """Both scans of the real reBEN metadata with both split methods, alternated, ``repeats`` times each."""
    (work / "s2").mkdir(exist_ok=True)
    meta = SHARED / "v2"
    spec = {"layout": "v2", "s2": str(work / "s2"), "metadata": str(meta / "metadata.parquet"),
            "metadata_extra": str(meta / "metadata_for_patches_with_snow_cloud_or_shadow.parquet")}  # fmt: skip
    rows = []
    for method in ("fast", "iterstrat"):
        runs: dict[str, list[dict[str, float]]] = {scan: [] for scan in SCANS}
        for _ in range(repeats):
            for scan in SCANS:
                runs[scan].append(plan({"scan": scan, "spec": spec, "method": method}))
        rows += [median_row(f"plan real reBEN, {method}, {SCANS[scan]}", results) for scan, results in runs.items()]
    return rows


def labels_only_v1(work: Path) -> Path:
    """A v1 archive of every listed v1 patch with its label JSON only, and its S1 twin's JSON naming it (written
    once; see the module's 3.): the folder holding ``BigEarthNet-v1.0`` and ``BigEarthNet-S1-v1.0``."""
    import numpy as np

    from ben_hub.archive.synth import synth_label_matrix
    from ben_hub.labels import LABELS_43
    from ben_hub.lists import read_list

    root = work / "v1-labels"
    if (root / "done").exists():
        return root
    names = sorted({name for path in LISTS for name in read_list(SHARED / "splits" / path)})
    Y = synth_label_matrix(len(names), seed=0)
    Y[~Y.any(axis=1), 0] = True  # every v1 patch has a label
    s2, s1 = root / "BigEarthNet-v1.0", root / "BigEarthNet-S1-v1.0"
    for name, labels in zip(names, Y, strict=True):
        twin = f"S1A_IW_GRDH_1SDV_{name.split('_')[2]}_{name}"
        os.makedirs(s2 / name, exist_ok=True)
        os.makedirs(s1 / twin, exist_ok=True)
        doc = {"labels": [LABELS_43[i] for i in np.flatnonzero(labels)], "acquisition_date": "2017-06-13 10:10:31",
               "tile_source": "S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101608.SAFE"}  # fmt: skip
        (s2 / name / f"{name}_labels_metadata.json").write_text(json.dumps(doc))
        (s1 / twin / f"{twin}_labels_metadata.json").write_text(json.dumps({"corresponding_s2_patch": name}))
    (root / "done").touch()
    return root


def v1_rows(work: Path, repeats: int) -> list[list[str]]:
    """All 590,326 v1 patches and their S1 twins planned with both split methods by 1 and 2 processes, alternated,
    ``repeats`` times each."""
    root = labels_only_v1(work)
    warm_cache(root)
    spec = {"layout": "v1", "s2": str(root / "BigEarthNet-v1.0"), "s1": str(root / "BigEarthNet-S1-v1.0")}
    rows = []
    for method in ("fast", "iterstrat"):
        runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for _ in range(repeats):
            for workers, results in runs.items():
                settings = {"scan": "columns", "spec": spec, "method": method, "workers": workers}
                results.append(plan({**settings, "lists_dir": str(SHARED / "splits")}))
        for workers, results in runs.items():
            what = f"plan all of v1 + S1 twins (labels-only JSONs, real lists), {method}, {workers} process"
            rows.append(median_row(what + ("es" if workers > 1 else ""), results))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--v1-full", action="store_true", help="also plan all of v1 from a labels-only archive")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder, kept for the next run to reuse")
    args = parser.parse_args()
    with scratch("ben-hub-scale-", args.work) as work:
        rows = [example_size(work, level) for level in (-1, 1, 3)] + reben_rows(work, args.repeats)
        rows += v1_rows(work, args.repeats) if args.v1_full else []
        publish(
            "scale: real example patches, full-size plans",
            f"python bench/scale.py --repeats {args.repeats}" + (" --v1-full" if args.v1_full else ""),
            f"; the plan is everything before pixels: label scan, both splits, shard plan; medians of {args.repeats} "
            "runs, each in a fresh process",
            ["what", "result", "reference", "peak RSS (MB)"],
            rows,
        )


if __name__ == "__main__":
    main()
