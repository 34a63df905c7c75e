"""Benchmark: the `fast` split engine against iterstrat (the paper's call), on two label matrices.

1. synthetic 519,284 x 43 with BigEarthNet v1.0's per-class counts (``synth_label_matrix``);
2. the real reBEN labels, 480,038 x 19, from ``metadata.parquet`` (``--reben``; default ../shared).

Each method runs in a fresh subprocess ``--repeats`` times (wall time, peak RSS of the process minus the
matrix-only baseline); quality (LD, ED, zero pairs, size error) is reported for the last run.  Results are
appended to BENCHMARKS.md.

    python bench/split.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, peak_rss_mb, publish, reset_peak_rss, rss_mb

DEFAULT_REBEN = ROOT.parent / "shared" / "bigearthnet" / "v2" / "metadata.parquet"


def load_matrix(name: str, reben: Path) -> np.ndarray:
    if name == "v1-synthetic":
        from ben_hub.archive.synth import synth_label_matrix

        return synth_label_matrix(519_284, seed=0)
    import pyarrow.parquet as pq

    from ben_hub.labels import LABELS_19

    table = pq.read_table(reben, columns=["patch_id", "labels"]).sort_by("patch_id")
    index = {name: i for i, name in enumerate(LABELS_19)}
    Y = np.zeros((table.num_rows, 19), dtype=bool)
    for row, labels in enumerate(table.column("labels").to_pylist()):
        Y[row, [index[x] for x in labels]] = True
    return Y


def child(matrix: str, method: str, reben: Path) -> None:
    from ben_hub.splits import split
    from ben_hub.splits.quality import quality

    Y = load_matrix(matrix, reben)
    if method == "iterstrat":  # import outside the timer: sklearn's import is not the algorithm
        import iterstrat.ml_stratifiers  # noqa: F401
    base_mb = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    assignment = split(Y, method, (0.6, 0.2, 0.2), 0) if method != "none" else np.zeros(len(Y), np.int8)
    seconds = time.perf_counter() - start
    extra_mb = peak_rss_mb() - base_mb
    report = quality(Y, assignment, (0.6, 0.2, 0.2))
    keep = ("LD", "ED", "zero_pairs", "avoidable_zero_pairs", "size_error_vs_target", "worst_relative_deviation")
    print(json.dumps({"seconds": seconds, "extra_rss_mb": extra_mb, **{k: report[k] for k in keep}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reben", type=Path, default=DEFAULT_REBEN)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.reben)
        return
    rows = []
    for matrix in ("v1-synthetic", "reben-real"):
        for method in ("iterstrat", "fast", "random"):
            runs = []
            for _ in range(args.repeats):
                cmd = [sys.executable, __file__, "--reben", str(args.reben), "--child", matrix, method]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
                print(matrix, method, runs[-1], flush=True)
            rows.append((matrix, method, runs))
    report(args, rows)


def report(args: argparse.Namespace, rows: list) -> None:
    table = []
    for matrix, method, runs in rows:
        last = runs[-1]
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["extra_rss_mb"] for r in runs)
        errors = "/".join(str(v) for v in last["size_error_vs_target"].values())
        table.append(
            [
                matrix,
                method,
                f"{seconds:.2f}",
                f"{rss:.0f}",
                f"{last['LD']:.3g}",
                f"{last['ED']:.1f}",
                f"{last['zero_pairs']} ({last['avoidable_zero_pairs']})",
                errors,
            ]
        )
    publish(
        f"split: iterstrat vs fast vs random, 0.6/0.2/0.2, seed 0, medians of {args.repeats}",
        f"python bench/split.py --repeats {args.repeats}",
        "; extra RSS = peak RSS growth during the split call; size error = rows vs target, train/val/test",
        ["matrix", "method", "seconds", "extra RSS (MB)", "LD", "ED", "zero pairs (avoidable)", "size error"],
        table,
    )


if __name__ == "__main__":
    main()
