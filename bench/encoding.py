"""The size of the pixel columns' encoding: ``BYTE_STREAM_SPLIT`` (ben-hub's) against ``PLAIN``, which readers
without Parquet format 2.11 take (DuckDB 1.x refuses split integers).

    python bench/encoding.py [--archive DIR]

The six real BigEarthNet v1.0 patches (``../shared/bigearthnet/example``, S2 and S1; or ``--archive``) built
twice with the default settings (zstd level -1), grids split (``ben_hub.parquet.SPLIT_GRIDS``) and plain; sizes
are deterministic, so no repeats.  Both builds are read back through pyarrow and must hold the same table.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    import pyarrow.parquet as pq
    from common import publish, scratch, with_values

    from ben_hub import parquet
    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, build
    from ben_hub.repo import load_manifest

    shared = ROOT.parent / "shared" / "bigearthnet"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, default=shared / "example")
    parser.add_argument("--lists-dir", type=Path, default=shared / "splits")
    args = parser.parse_args()
    sizes, tables = {}, {}
    with scratch("ben-hub-encoding-", None) as work:
        for name, split in (("BYTE_STREAM_SPLIT (ben-hub)", True), ("PLAIN", False)):
            out = work / ("split" if split else "plain")
            config = BuildConfig(spec=locate_archive(args.archive), lists_dir=args.lists_dir, method="random",
                                 subset=True, workers=1)  # fmt: skip
            with_values(parquet, {"SPLIT_GRIDS": split}, functools.partial(build, config, out, progress=False))()
            shards = load_manifest(out)["shards"]
            sizes[name] = sum(shard["bytes"] for shard in shards)
            tables[name] = [pq.read_table(out / shard["path"]) for shard in shards]
        patches = sum(t.num_rows for t in tables["PLAIN"])
    assert all(a.equals(b) for a, b in zip(*tables.values(), strict=True)), "the two encodings read back differently"
    base = sizes["BYTE_STREAM_SPLIT (ben-hub)"]
    publish(
        "encoding of the pixel columns: shard bytes",
        f"python bench/encoding.py --archive {args.archive.name}",
        f"; {patches} patches (S2 + S1), zstd level -1, the same tables read back",
        ["encoding", "bytes", "KB/patch", "vs BYTE_STREAM_SPLIT"],
        [[n, f"{b:,}", f"{b / patches / 1000:.1f}", f"{b / base:.2f}x"] for n, b in sizes.items()],
    )


if __name__ == "__main__":
    main()
