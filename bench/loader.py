"""Benchmark: RGB float batches per second, ben-hub's Arrow loader against two common baselines.

(a) ``datasets``: ``load_dataset(repo, config, split="train").with_format("torch", columns=[B04, B03, B02,
    labels])`` + ``torch.utils.data.DataLoader`` (batch 256, single process), stacking and normalising the bands;
(b) per-sample GeoTIFF: a DataLoader over the raw archive reading three band files per sample with tifffile.
ben-hub: ``SplitReader.batches(shuffle=True)`` streaming the parquet, and with ``cache_dir`` (the split decoded
once to a memory-mapped ``.npy``; timed over a later epoch); both also with ``raw=True``, the CPU's share when
the harness normalises on the accelerator (``DeviceBatches``); cached and streaming once more with two threads
(``threads=2``: decoding and gathering split between them; the only rows not on one thread); and
``ben_hub.dataset.PatchDataset``, items by index from the same cache, through a standard DataLoader.  Each pipeline
runs ``--repeats`` times over the same split (page cache warm, one process), timing its second epoch (the first
warms what each caches: ben-hub's decoded cache and buffers, ``datasets``' Arrow cache), reporting medians.

    python bench/loader.py --patches 4000 --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from common import publish, scratch, synthetic_repo, warm_cache

BANDS = ("B04", "B03", "B02")


def ben_hub(
    repo: Path, archive: Path, batch: int, cached: bool = False, raw: bool = False, threads: int = 1
) -> tuple[int, float]:
    """ben-hub's loader over the train split: epoch 0 untimed (it decodes the cache, sizes the buffers and opens
    the shards, once per training run), epoch 1 timed."""
    from ben_hub.loader import LoaderConfig, SplitReader

    cache = str(repo.parent / "loader-cache") if cached else None
    reader = SplitReader(repo, "train", LoaderConfig(batch_size=batch, cache_dir=cache, raw=raw, threads=threads))
    for _ in reader.batches(epoch=0, shuffle=True, seed=0):
        pass
    start = time.perf_counter()
    seen = sum(len(x) for x, _ in reader.batches(epoch=1, shuffle=True, seed=0))
    elapsed = time.perf_counter() - start
    reader.close()
    return seen, elapsed


def later_epoch(epoch: Callable[[], Iterator[Any]]) -> tuple[int, float]:
    """Samples of a second pass of ``epoch`` (batches) and its seconds; the first pass, untimed, warms what the
    pipeline caches, as ben-hub's epoch 0 does."""
    for _ in epoch():
        pass
    start = time.perf_counter()
    seen = sum(len(x) for x in epoch())
    return seen, time.perf_counter() - start


def datasets_torch(repo: Path, archive: Path, batch: int) -> tuple[int, float]:
    import datasets
    import torch

    cache = str(repo.parent / "datasets-cache")  # inside the scratch folder, not ~/.cache (2.5 GB at 6,000 patches)
    ds = datasets.load_dataset(str(repo), "resampled", split="train", cache_dir=cache)
    ds = ds.with_format("torch", columns=[*BANDS, "labels"])

    def batches() -> Iterator[torch.Tensor]:
        for item in torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, collate_fn=lambda rows: rows):
            x = torch.stack([torch.stack([row[b].float() for b in BANDS]) for row in item])
            yield (x - x.mean()) / x.std()

    return later_epoch(batches)


def patch_dataset(repo: Path, archive: Path, batch: int) -> tuple[int, float]:
    """ben-hub's map-style ``PatchDataset`` (items from the decoded cache) through a standard DataLoader."""
    import torch

    from ben_hub.dataset import PatchDataset
    from ben_hub.loader import LoaderConfig

    ds = PatchDataset(repo, "train", LoaderConfig(cache_dir=str(repo.parent / "loader-cache")))

    def batches() -> Iterator[torch.Tensor]:
        for item in torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True):
            yield item["image"]

    return later_epoch(batches)


def geotiff_per_sample(repo: Path, archive: Path, batch: int) -> tuple[int, float]:
    import tifffile
    import torch

    folders = sorted((archive / "BigEarthNet-v1.0").iterdir())

    class Patches(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(folders)

        def __getitem__(self, i: int) -> torch.Tensor:
            f = folders[i]
            return torch.from_numpy(
                np.stack([tifffile.imread(f / f"{f.name}_{b}.tif") for b in BANDS]).astype(np.float32)
            )

    def batches() -> Iterator[torch.Tensor]:
        for x in torch.utils.data.DataLoader(Patches(), batch_size=batch, shuffle=True):
            yield (x - x.mean()) / x.std()

    return later_epoch(batches)


PIPELINES: dict[str, Callable[[Path, Path, int], tuple[int, float]]] = {
    "ben-hub SplitReader, cached epochs (cache_dir)": functools.partial(ben_hub, cached=True),
    "ben-hub SplitReader, streaming parquet": ben_hub,
    "ben-hub SplitReader, cached epochs, 2 threads": functools.partial(ben_hub, cached=True, threads=2),
    "ben-hub SplitReader, streaming parquet, 2 threads": functools.partial(ben_hub, threads=2),
    "ben-hub raw uint16 batches, cached (normalised on the accelerator, not timed)": functools.partial(
        ben_hub, cached=True, raw=True
    ),
    "ben-hub raw uint16 batches, streaming (normalised on the accelerator, not timed)": functools.partial(
        ben_hub, raw=True
    ),
    "ben-hub PatchDataset (one item at a time, from the cache) + DataLoader": patch_dataset,
    "(a) datasets with_format('torch') + DataLoader": datasets_torch,
    "(b) per-sample GeoTIFF + DataLoader": geotiff_per_sample,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with scratch("ben-hub-loader-", args.work) as work:
        archive, repo = synthetic_repo(work, args.patches)
        rows = []
        for name, pipeline in PIPELINES.items():
            rates = []
            for _ in range(args.repeats):
                reads = (archive,) if pipeline is geotiff_per_sample else (repo, work / "loader-cache")
                warm_cache(*[f for f in reads if f.exists()])  # what this pipeline reads, nothing else
                seen, seconds = pipeline(repo, archive, args.batch)
                rates.append(seen / seconds)
                print(name, f"{rates[-1]:,.0f} samples/s", flush=True)
            rows.append([name, f"{statistics.median(rates):,.0f}"])
        base = float(rows[0][1].replace(",", ""))
        for row in rows:
            row.append(f"{base / float(row[1].replace(',', '')):.1f}x")
        publish(
            f"loader: RGB batches of {args.batch}, one process, one thread unless named, second epochs, "
            f"medians of {args.repeats}",
            f"python bench/loader.py --patches {args.patches} --repeats {args.repeats}",
            "; (a) and (b) read the train split / whole archive, ben-hub the train split",
            ["pipeline", "samples/s", "ben-hub speed-up"],
            rows,
        )


if __name__ == "__main__":
    main()
