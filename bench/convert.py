"""Benchmark: convert a synthetic v1 archive (12 S2 bands) with ben-hub against a plain pipeline.

The baseline is what one would write with the usual tools: ``tifffile.imread`` per band and
``datasets.Dataset.from_generator`` with the same features, saved with ``to_parquet``.  Each pipeline runs
in a fresh subprocess (so peak RSS is its own) ``--repeats`` times on the same files, read once just before
each run so that it starts from the page cache; the table
reports medians.  Results are appended to ``BENCHMARKS.md`` with the command and the machine.

    python bench/convert.py --patches 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import peak_rss_mb, publish, scratch, warm_cache


def run_benhub(archive: Path, out: Path, workers: int, writer: str = "ben-hub") -> None:
    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, build

    spec = locate_archive(archive, with_s1=False)
    build(BuildConfig(spec=spec, lists_dir=archive / "splits", workers=workers, writer=writer), out, progress=False)


def run_benhub_pyarrow_writer(archive: Path, out: Path, workers: int) -> None:
    """ben-hub with pyarrow's parquet writer (``--writer pyarrow``): what the parquet writer alone is worth."""
    run_benhub(archive, out, workers, "pyarrow")


def run_baseline(archive: Path, out: Path, workers: int) -> None:
    import datasets
    import tifffile

    from ben_hub.bands import S2_BANDS
    from ben_hub.schema import features

    feats = datasets.Features(
        {k: v for k, v in features("v1", False).items() if k == "patch_id" or k in {b.name for b in S2_BANDS}}
    )
    folders = sorted((archive / "BigEarthNet-v1.0").iterdir())

    def rows() -> Iterator[dict[str, Any]]:
        for folder in folders:
            row: dict[str, Any] = {"patch_id": folder.name}
            for band in S2_BANDS:
                row[band.name] = tifffile.imread(folder / f"{folder.name}_{band.name}.tif")
            yield row

    ds = datasets.Dataset.from_generator(rows, features=feats, cache_dir=str(out / "cache"), num_proc=None)
    ds.to_parquet(str(out / "data.parquet"))


PIPELINES = {"ben-hub": run_benhub, "ben-hub --writer pyarrow": run_benhub_pyarrow_writer, "baseline": run_baseline}


def child(name: str, archive: Path, out: Path, workers: int) -> None:
    start = time.perf_counter()
    PIPELINES[name](archive, out, workers)
    seconds = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # worker processes (fork server's)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": max(peak_rss_mb(), children)}))


def measure(name: str, archive: Path, workers: int, work: Path) -> dict:
    warm_cache(archive)
    out = work / f"{name.replace(' ', '_')}-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, str(archive), str(out), str(workers)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_DATASETS_CACHE": str(out / "cache")},
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    files = [p for p in out.rglob("*.parquet") if "cache" not in p.parts]
    result["bytes"] = sum(p.stat().st_size for p in files)
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, archive, out, workers = args.child
        child(name, Path(archive), Path(out), int(workers))
        return
    with scratch("ben-hub-bench-", args.work) as work:
        archive = work / f"archive-{args.patches}"
        if not archive.exists():
            from ben_hub.archive.synth import synth_archive

            synth_archive(archive, args.patches, "v1", seed=0, with_s1=False)
        plan = (("ben-hub", 1), ("ben-hub", 2), ("ben-hub --writer pyarrow", 1), ("baseline", 1))
        runs: dict[tuple[str, int], list[dict]] = {key: [] for key in plan}
        for _ in range(args.repeats):
            for (name, workers), results in runs.items():
                results.append(measure(name, archive, workers, work))
                print(name, workers, results[-1], flush=True)
        report(args, runs)


def report(args: argparse.Namespace, runs: dict) -> None:
    rows = []
    for (name, workers), results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["peak_rss_mb"] for r in results)
        size = statistics.median(r["bytes"] for r in results) / args.patches
        rate = args.patches / seconds
        rows.append([name, str(workers), f"{rate:,.0f}", f"{rate / workers:,.0f}", f"{rss:,.0f}", f"{size:,.0f}"])
    publish(
        f"convert: {args.patches:,} synthetic v1 patches, 12 S2 bands, page cache, medians of {args.repeats}",
        f"python bench/convert.py --patches {args.patches} --repeats {args.repeats}",
        "; ben-hub's time includes the label scan, the split, the statistics and the card",
        ["pipeline", "processes", "patches/s", "patches/s per process", "peak RSS (MB)", "bytes/patch"],
        rows,
    )


if __name__ == "__main__":
    main()
