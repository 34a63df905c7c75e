"""Benchmark: where a build's time goes, phase by phase (imports, label scan, resampled split, shards, card).

Each build runs in a fresh process on the synthetic archive that ``bench/convert.py`` made (page cache warmed
first); ``ben_hub.build``'s phase functions are wrapped with timers, so the figures are the real build's.
Reports medians over ``--repeats`` for 1 and 2 worker processes, and the shard writers' rate per process.

    python bench/phases.py --patches 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import publish, warm_cache

PHASES = ("scan_official", "resampled_assignment", "run_tasks", "finalize")
LABELS = {
    "imports": "import ben_hub.build (datasets, pyarrow, ...)",
    "scan_official": "label scan + official lists",
    "resampled_assignment": "resampled split (iterstrat, with its sklearn import)",
    "run_tasks": "writing the shards",
    "finalize": "manifest, statistics, plot, card",
    "other": "other (plan of shards, pool start)",
    "total": "total",
}

CHILD = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
import ben_hub.build as b
from ben_hub.archive import locate_archive
seconds = {"imports": time.perf_counter() - start}
for name in sys.argv[4].split(","):
    def timed(*args, _name=name, _inner=getattr(b, name), **kwargs):
        began = time.perf_counter()
        try:
            return _inner(*args, **kwargs)
        finally:
            seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - began
    setattr(b, name, timed)
archive, out, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
config = b.BuildConfig(spec=locate_archive(archive, with_s1=False), lists_dir=archive / "splits", workers=workers)
b.build(config, out, progress=False)
seconds["total"] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def run(archive: Path, workers: int, work: Path) -> dict[str, float]:
    warm_cache(archive)
    out = Path(tempfile.mkdtemp(dir=work))
    done = subprocess.run([sys.executable, "-c", CHILD, str(archive), str(out / "repo"), str(workers),
                           ",".join(PHASES)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    shutil.rmtree(out)
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    seconds["other"] = seconds["total"] - sum(v for k, v in seconds.items() if k != "total")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ben-hub-bench")
    args = parser.parse_args()
    archive = args.work / f"archive-{args.patches}"
    if not archive.exists():
        from ben_hub.archive.synth import synth_archive

        synth_archive(archive, args.patches, "v1", seed=0, with_s1=False)
    runs = {w: [run(archive, w, args.work) for _ in range(args.repeats)] for w in (1, 2)}
    median = {w: {k: statistics.median(r[k] for r in rs) for k in LABELS} for w, rs in runs.items()}
    rows = [[LABELS[k], f"{median[1][k]:.2f}", f"{median[2][k]:.2f}"] for k in LABELS]
    rows.append(["shard writers, patches/s per process",
                 *(f"{args.patches / median[w]['run_tasks'] / w:,.0f}" for w in (1, 2))])  # fmt: skip
    publish(f"phases: one build of {args.patches:,} synthetic v1 patches, seconds, medians of {args.repeats}",
            f"python bench/phases.py --patches {args.patches} --repeats {args.repeats}",
            "; page cache warmed before each build; default settings (iterstrat, zstd -1)",
            ["phase", "1 process", "2 processes"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
