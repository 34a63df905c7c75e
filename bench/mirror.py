"""Reading a published split for RGB training: a column mirror of its shards, against downloading them whole.

    python bench/mirror.py [--patches 3000] [--repeats 3]

A synthetic v1 archive with S1 (``ben-hub synth``, seed 0) built with the ``fast`` split and pushed to the tests'
local stand-in for the Hub (``tests/hub_server.py``: the Hub's HTTP requests, LFS files from a second origin, on
this machine).  Alternated, medians of ``--repeats``, each into an empty cache, then every RGB batch of
``resampled`` train read once (``SplitReader``, one thread):
  - whole shards (``huggingface_hub.snapshot_download`` of the split's files, as ben-hub did before);
  - a column mirror (``ben_hub.mirror``): of each shard its footer, and the byte ranges of B02-B04, the ids, labels
    and flags, written into sparse files.
Reported: the bytes the stand-in sent, the requests, the disk blocks the shards take, and the seconds (no network:
over a real connection the bytes set the time).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
REPO_ID = "bench/mirror"


def disk_bytes(folder: Path) -> int:
    """Bytes of disk blocks the parquet files below ``folder`` hold (holes take none)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*.parquet"))


def main() -> None:
    import huggingface_hub
    from common import arguments, publish, scratch

    from ben_hub.archive import locate_archive
    from ben_hub.archive.synth import synth_archive
    from ben_hub.build import BuildConfig, build
    from ben_hub.hub import PushConfig, push, resolve_repo
    from ben_hub.loader import LoaderConfig, SplitReader
    from ben_hub.repo import split_patterns
    from tests.hub_server import FakeHub

    args = arguments(__doc__)
    os.environ.setdefault("HF_TOKEN", "hf_bench_token")
    huggingface_hub.constants.HF_HUB_DISABLE_XET = True
    config = LoaderConfig(config="resampled", batch_size=256)
    ways = ("whole shards", "column mirror")
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    sent: dict[str, list[int]] = {w: [] for w in ways}
    asked: dict[str, list[int]] = {w: [] for w in ways}
    disk: dict[str, list[int]] = {w: [] for w in ways}
    with scratch("mirror", args.work) as work, FakeHub() as hub:
        archive, repo = work / f"archive-s1-{args.patches}", work / f"repo-s1-{args.patches}"
        if not archive.exists():
            synth_archive(archive, args.patches, "v1", seed=0, with_s1=True)
        if not (repo / "README.md").exists():
            build(BuildConfig(spec=locate_archive(archive), lists_dir=archive / "splits", method="fast", workers=2),
                  repo, progress=False)  # fmt: skip
        push(repo, PushConfig(REPO_ID, endpoint=hub.url, backoff_s=0), progress=False)
        huggingface_hub.constants.ENDPOINT = hub.url  # as HF_ENDPOINT sets them at import
        huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        cache = work / "cache"
        patterns = split_patterns("resampled", ["train"])

        def fetch(way: str) -> Path:
            if way == "whole shards":
                return resolve_repo(REPO_ID, patterns=patterns, progress=False)[0]
            return resolve_repo(REPO_ID, patterns=patterns, progress=False, columns=[*config.bands, config.labels])[0]

        for _ in range(args.repeats):
            for way in ways:
                shutil.rmtree(cache, ignore_errors=True)
                huggingface_hub.constants.HF_HUB_CACHE = str(cache / "hub")
                os.environ["BEN_HUB_CACHE"] = str(cache / "ben-hub")
                start, before, requests = time.perf_counter(), hub.sent, len(hub.gets) + len(hub.storage_gets)
                root = fetch(way)
                reader = SplitReader(root, "train", config)
                rows = sum(len(y) for _, y in reader.batches())
                seconds[way].append(time.perf_counter() - start)
                sent[way].append(hub.sent - before)
                asked[way].append(len(hub.gets) + len(hub.storage_gets) - requests)
                disk[way].append(disk_bytes(root if way == "column mirror" else cache / "hub"))
                assert rows == reader.rows
        shards = sum(s.stat().st_size for s in repo.rglob("data/*-train/*.parquet"))
    rows_out = [[w, f"{statistics.median(seconds[w]):.2f}", f"{statistics.median(sent[w]) / 1e6:,.1f}",
                 f"{statistics.median(asked[w]):,.0f}", f"{statistics.median(disk[w]) / 1e6:,.1f}"]
                for w in ways]  # fmt: skip
    publish(
        f"a published split read for RGB training: {args.patches:,} synthetic v1 patches with S1, "
        f"resampled train ({shards / 1e6:,.0f} MB of shards), medians of {args.repeats}",
        f"python bench/mirror.py --patches {args.patches} --repeats {args.repeats}",
        "; the Hub is the tests' local stand-in on this machine, so the seconds leave out the network; each way "
        "starts from an empty cache and reads every batch once",
        ["way", "seconds", "MB sent", "file GETs", "MB on disk"],
        rows_out,
    )


if __name__ == "__main__":
    main()
