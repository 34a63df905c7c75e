"""Forming batches from a held split: ``DeviceCache``'s one compiled kernel against the six eager ones.

    python bench/batch_forming.py [--patches 6000] [--batch 300] [--repeats 5]

Both ways gather a shuffled batch of rows from the train split held as int16 (uint16 bit patterns), widen it,
normalise it with the card's statistics and turn its targets into float32 (``ben_hub.loader.gather_normalized``):
eagerly, one PyTorch kernel a step, as before, or as the one kernel ``torch.compile`` generates (``fuse=True``,
the default on CUDA).  Here the CPU stands in for the device (inductor's C++ kernel against ATen's), with torch's
default threads; the GPU's side is timed by ``bench/gpu_check.py`` (``device_cache_samples_per_s``).  Each repeat
times two shuffled epochs after an untimed one (compilation), the two ways alternated; medians of ``--repeats``.
The batches are checked equal bit for bit first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def epoch_rate(cache: object, epochs: tuple[int, ...]) -> float:
    """Samples/s of forming every batch of ``epochs`` (shuffled)."""
    start, seen = time.perf_counter(), 0
    for epoch in epochs:
        for x, _ in cache.batches(epoch, True, 0):  # type: ignore[attr-defined]
            seen += len(x)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    import torch
    from common import publish, scratch, synthetic_repo

    from ben_hub.loader import DeviceCache, LoaderConfig, SplitReader

    with scratch("ben-hub-batch-forming-", args.work) as work:
        _, repo = synthetic_repo(work, args.patches)
        reader = SplitReader(repo, "train", LoaderConfig(batch_size=args.batch))
        caches = {"eager": DeviceCache(reader, "cpu", fuse=False), "fused": DeviceCache(reader, "cpu", fuse=True)}
        pairs = zip(caches["eager"].batches(9, True, 0), caches["fused"].batches(9, True, 0), strict=True)
        assert all(torch.equal(a, b) and torch.equal(c, d) for (a, c), (b, d) in pairs), "fused batches differ"
        rates: dict[str, list[float]] = {name: [] for name in caches}
        for repeat in range(args.repeats):
            for name, cache in caches.items():
                epoch_rate(cache, (100 + repeat,))  # untimed: compilation of a new shape, allocator
                rates[name].append(epoch_rate(cache, (200 + repeat, 300 + repeat)))
        medians = {name: statistics.median(values) for name, values in rates.items()}
        rows = [
            ["eager: six ATen kernels (before)", f"{medians['eager']:,.0f}", "1.00x"],
            ["fused: one compiled kernel (DeviceCache fuse=True)", f"{medians['fused']:,.0f}",
             f"{medians['fused'] / medians['eager']:.2f}x"],
        ]  # fmt: skip
        note = (f"; the train split of a {args.patches:,}-patch synthetic repository ({len(reader.units)} row groups, "
                f"{reader.rows:,} rows, RGB), batches of {args.batch}, the CPU standing in for the device with "
                f"{torch.get_num_threads()} torch threads, alternated, medians of {args.repeats}; batches equal bit "
                "for bit; samples/s")  # fmt: skip
        publish(f"batch_forming: DeviceCache batches, eager against fused, medians of {args.repeats}",
                f"python bench/batch_forming.py --patches {args.patches} --batch {args.batch} "
                f"--repeats {args.repeats}", note, ["batch forming", "samples/s", "speed-up"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
