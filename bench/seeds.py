"""Benchmark: several seeds of one model and configuration, one launch each or one launch for all.

The paper's protocol trains ShortCNN with 10 seeds on each configuration.  Launched one by one, every run
starts Python, imports torch, accelerate and timm, and loads its splits again; ``train.py --seed 0 1 ...``
(what ``harness/sweep.py`` does on one device) does that once.  Both ways run ``--seeds`` ShortCNN seeds of
``--epochs`` epochs (``--max-batches`` training batches each) on a synthetic repository through
``accelerate launch --cpu``, alternated, medians of ``--repeats``; reported: wall seconds of all the seeds and
the seconds each run records (``run.json`` ``launch_seconds``) beside those of its epochs.

    python bench/seeds.py --patches 3000 --seeds 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, publish, scratch, synthetic_repo

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "harness" / "train.py")]  # fmt: skip


def run(repo: Path, out: Path, seeds: list[int], together: bool, args: argparse.Namespace) -> dict[str, float]:
    """Wall seconds of training ``seeds`` (one launch, or one each), and the runs' own launch and epoch seconds."""
    shutil.rmtree(out, ignore_errors=True)
    common = ["--repo", str(repo), "--out", str(out), "--epochs", str(args.epochs),
              "--max-batches", str(args.max_batches), "--batch-size", "64"]  # fmt: skip
    launches = [seeds] if together else [[seed] for seed in seeds]
    start = time.perf_counter()
    for batch in launches:
        subprocess.run([*LAUNCH, *common, "--seed", *map(str, batch)], check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - start
    runs = [json.loads((out / f"shortcnn-resampled-seed{s}" / "run.json").read_text()) for s in seeds]
    return {"wall": wall, "launch": sum(sum(r["launch_seconds"]) for r in runs),
            "epochs": sum(sum(r["epoch_seconds"]) for r in runs)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-batches", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    with scratch("bench_seeds_") as work:
        repo = synthetic_repo(work, args.patches)[1]
        seeds = list(range(args.seeds))
        results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for together in (False, True):
                results[together].append(run(repo, work / "runs", seeds, together, args))
        rows = []
        alone = statistics.median(r["wall"] for r in results[False])
        labels = ((False, "one launch per seed"), (True, f"one launch, --seed {' '.join(map(str, seeds))}"))
        for together, label in labels:
            median = {k: statistics.median(r[k] for r in results[together]) for k in ("wall", "launch", "epochs")}
            rows.append([label, f"{median['wall']:.1f}", f"{median['launch']:.1f}", f"{median['epochs']:.1f}",
                         f"{alone / median['wall']:.2f}x"])  # fmt: skip
        note = (f"; {args.seeds} ShortCNN seeds, {args.epochs} epoch(s) of {args.max_batches} training batches of 64 "
                f"and the whole validation split, on a {args.patches:,}-patch synthetic repository, CPU, "
                f"alternated, medians of {args.repeats}; seconds")  # fmt: skip
        header = ["launches", "wall, all seeds", "runs' launch seconds", "runs' epoch seconds", "speed-up"]
        publish(f"seeds: {args.seeds} seeds one launch each or in one launch, medians of {args.repeats}",
                f"python bench/seeds.py --patches {args.patches} --seeds {args.seeds} --repeats {args.repeats}", note,
                header, rows)  # fmt: skip


if __name__ == "__main__":
    main()
