"""``verify`` of a local repository: its statistics recounted with the bands read from their pages, against pyarrow.

    python bench/verify.py [--patches 3000] [--repeats 5]

A synthetic v1 repository (``bench/common.py: synthetic_repo``, S2 only, ``fast`` split), in the page cache before
each run; one process; alternated, medians of ``--repeats``:
  - ``ben_hub.verify.verify`` as it is: files, manifest, shards, each patch stored once, the card, and ``stats.json``
    recounted from every shard (``ben_hub.stats.shard_stats``), each band decoded from its parquet pages by
    ``ben_hub.pages.band_grid``;
  - the same with ``shard_stats`` as of b3c9202 (:func:`shard_stats_before`: each row group read whole through
    pyarrow, its bands flattened from the nested lists; the way before);
  - the recount alone (``shard_stats`` of every shard), both ways.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def shard_stats_before(path: str) -> dict:
    """``ben_hub.stats.shard_stats`` as of b3c9202 (the way before): each row group read whole through pyarrow, its
    bands flattened from the nested lists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ben_hub.archive.base import FLAG_COLUMNS
    from ben_hub.stats import _empty, accumulate

    parquet = pq.ParquetFile(path, pre_buffer=False)
    out = _empty(parquet.schema_arrow.names)
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group).combine_chunks()
        if table.num_rows == 0:
            continue
        batch = table.to_batches()[0]
        accumulate(
            out,
            batch.num_rows,
            {c: batch.column(c).flatten().to_numpy() for c in out["labels"]},
            {f: int(pa.compute.sum(batch.column(f)).as_py() or 0) for f in FLAG_COLUMNS},
            {b: batch.column(b).flatten().flatten().to_numpy() for b in out["bands"]},
        )
    return out


def switched(before: bool, work: Callable[[], object]) -> Callable[[], object]:
    """``work`` with ``ben_hub.stats.shard_stats`` as it is, or (``before``) as it was."""
    from common import with_values

    from ben_hub import stats

    return with_values(stats, {"shard_stats": shard_stats_before}, work) if before else work


def main() -> None:
    from common import (
        RATE_HEADER,
        alternated_medians,
        arguments,
        publish,
        rate_rows,
        scratch,
        synthetic_repo,
        warm_cache,
    )

    from ben_hub.repo import load_manifest
    from ben_hub.stats import merge
    from ben_hub.verify import verify

    args = arguments(__doc__, repeats=5)
    with scratch("ben-hub-verify-", args.work) as work:
        _, repo = synthetic_repo(work, args.patches)
        paths = [str(repo / shard["path"]) for shard in load_manifest(repo)["shards"]]
        recounts: dict[bool, dict] = {}

        def recount(before: bool) -> Callable[[], object]:
            from ben_hub import stats

            return switched(before, lambda: recounts.__setitem__(before, merge(stats.shard_stats(p) for p in paths)))

        ways: dict[str, Callable[[], object]] = {
            "verify, bands from their pages (now)": switched(False, lambda: verify(repo)),
            "verify, row groups read whole through pyarrow (the way before)": switched(True, lambda: verify(repo)),
            "statistics recount alone, bands from their pages (now)": recount(False),
            "statistics recount alone, row groups through pyarrow (the way before)": recount(True),
        }
        median = alternated_medians(ways, args.repeats, lambda: warm_cache(repo))
        assert recounts[True] == recounts[False]
        size = sum(Path(p).stat().st_size for p in paths) / 2**20
    publish(
        f"verify of a local repository: {args.patches:,} synthetic patches, medians of {args.repeats}",
        f"python bench/verify.py --patches {args.patches} --repeats {args.repeats}",
        f"; 12 S2 bands, {size:.0f} MiB of shards in the page cache; one process; both recounts equal",
        RATE_HEADER,
        rate_rows(median, args.patches),
    )


if __name__ == "__main__":
    main()
