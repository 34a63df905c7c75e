"""Host memory of filling a ``DeviceCache``: chunk by chunk (ben-hub) against reading the whole split first.

    python bench/device_cache.py [--patches 20000] [--repeats 3]

Each variant runs in a fresh process that opens the train split of a synthetic repository (RGB, uint16) and
copies it to the "device" (the CPU here, which shows the host side of the copy: on a GPU the cache itself
leaves host memory).  Reported: peak RSS of the process minus its RSS before the copy, and that minus the
cache's own bytes (what the copy needs on top).  The baseline is the approach ben-hub used before: every row
group read into a list, concatenated, then copied, as a library without a chunked path would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import peak_rss_mb, rss_mb  # noqa: E402


def child(repo: Path, variant: str) -> dict[str, float]:
    import numpy as np
    import torch

    from ben_hub.loader import DeviceCache, LoaderConfig, SplitReader

    reader = SplitReader(repo, "train", LoaderConfig())
    before = rss_mb()
    if variant == "chunked":
        cache = DeviceCache(reader, "cpu")
        size = cache.x.nbytes + cache.y.nbytes
    else:  # the whole split in host memory first
        parts = [reader.read_unit(*unit) for unit in reader.units]
        raw = np.concatenate([p[0] for p in parts])
        targets = np.concatenate([p[1] for p in parts]).astype(np.uint8)
        x, y = torch.from_numpy(raw.view(np.int16)).clone(), torch.from_numpy(targets).clone()  # the device copy
        del parts, raw, targets
        size = x.nbytes + y.nbytes
    return {"peak_over_start_mb": peak_rss_mb() - before, "cache_mb": size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("REPO", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return
    from common import publish, scratch, synthetic_repo

    with scratch("ben-hub-device-cache-", args.work) as work:
        _, repo = synthetic_repo(work, args.patches)
        rows = []
        for variant, label in (("chunked", "ben-hub DeviceCache (chunks of 1,024 rows)"),
                               ("whole", "whole split read first, then copied")):  # fmt: skip
            runs = []
            for _ in range(args.repeats):
                done = subprocess.run([sys.executable, __file__, "--child", str(repo), variant],
                                      check=True, capture_output=True, text=True)  # fmt: skip
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            peak = statistics.median(r["peak_over_start_mb"] for r in runs)
            cache = runs[0]["cache_mb"]
            rows.append([label, f"{cache:,.0f}", f"{peak:,.0f}", f"{peak - cache:,.0f}"])
            print(rows[-1], flush=True)
        title = f"device_cache: host memory of filling a DeviceCache, {args.patches:,} patches, "
        title += f"medians of {args.repeats}"
        publish(title,
                f"python bench/device_cache.py --patches {args.patches} --repeats {args.repeats}",
                "; train split, RGB uint16, the CPU standing in for the device; MB",
                ["variant", "cache", "peak RSS over start", "needed beyond the cache"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
