"""Benchmark: k processes streaming one split together, as ``accelerate launch`` runs the harness on k GPUs.

Each of ``--processes`` OS processes iterates its part ``(i, k)`` of a shuffled streaming epoch of the train
split (``SplitReader.batches(epoch, shuffle=True, part=(i, k))``, raw uint16 batches as the harness feeds
``DeviceBatches``, one decoding thread each) after an untimed epoch; the rate is every process's samples over
the wall time from the common start to the last process's end.  Side by side, the same with the ``ben_hub`` of
``--baseline`` (default 5ab0ca6, the last commit in which every process decoded every row group and kept only its
share of the batches), unpacked with ``git archive``; each worker prints which ``ben_hub`` it imported.

    python bench/processes.py --patches 6000 --processes 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, publish, scratch, synthetic_repo, warm_cache

BASELINE = "5ab0ca6"


def worker(repo: Path, part: tuple[int, int], batch: int) -> None:
    """In a child: untimed epoch 0, then wait for the parent's go (a line on stdin), time epoch 1, print JSON."""
    import ben_hub
    from ben_hub.loader import LoaderConfig, SplitReader

    reader = SplitReader(repo, "train", LoaderConfig(batch_size=batch, raw=True))
    for _ in reader.batches(0, True, 0, part=part):
        pass
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    seen = sum(len(x) for x, _ in reader.batches(1, True, 0, part=part))
    print(json.dumps({"seen": seen, "start": start, "end": time.monotonic(), "ben_hub": ben_hub.__file__}))


def run_once(source: Path, repo: Path, processes: int, batch: int) -> tuple[float, str]:
    """All ``processes`` workers importing ``ben_hub`` from ``source``, started together: (samples/s, module)."""
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--worker", str(repo), "--batch", str(batch), "--processes", str(processes)]
    children = [
        subprocess.Popen([*command, "--part", str(i)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
        for i in range(processes)
    ]  # fmt: skip
    for child in children:  # every worker has read its epoch 0 before any starts the timed one
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [json.loads(child.communicate()[0]) for child in children]
    if any(child.returncode for child in children):
        raise SystemExit(f"a worker failed ({source})")
    seen = sum(r["seen"] for r in results)
    return seen / (max(r["end"] for r in results) - min(r["start"] for r in results)), results[0]["ben_hub"]


def baseline_tree(ref: str, work: Path) -> Path:
    """``ben_hub`` of commit ``ref``, unpacked below ``work``."""
    target = work / f"baseline-{ref}"
    if not (target / "ben_hub").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", ref, "ben_hub"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=6000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the ben_hub to compare with")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, (args.part, args.processes), args.batch)
        return
    with scratch("ben-hub-processes-", args.work) as work:
        _, repo = synthetic_repo(work, args.patches)
        trees = {f"baseline {args.baseline}: every process decodes every row group": baseline_tree(args.baseline, work),
                 "this tree: process i decodes row groups i, i+k, ...": ROOT}  # fmt: skip
        rates: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, source in trees.items():  # alternated, so that drift in the machine hits both alike
                warm_cache(repo)
                rate, module = run_once(source, repo, args.processes, args.batch)
                rates[name].append(rate)
                print(f"{name}: {rate:,.0f} samples/s ({module})", flush=True)
        medians = {name: statistics.median(r) for name, r in rates.items()}
        base = next(iter(medians.values()))
        rows = [[name, f"{m:,.0f}", f"{m / base:.2f}x"] for name, m in medians.items()]
        publish(
            f"loader, {args.processes} processes streaming the train split together (raw RGB batches of {args.batch}, "
            f"one thread each, second epochs), medians of {args.repeats}",
            f"python bench/processes.py --patches {args.patches} --processes {args.processes} --repeats {args.repeats}",
            "; samples/s of all processes together, from the common start to the last one's end",
            ["ben_hub", "samples/s", "against the baseline"],
            rows,
        )


if __name__ == "__main__":
    main()
