"""Benchmark: where a patch's conversion time goes (the figures quoted in BENCHMARKS.md and the README).

1. decoding one 120x120 band: ``ben_hub.tiff.read_tiff`` vs ``tifffile.imread`` on the real example files
   (both from bytes / path in page cache);
2. pyarrow parquet, one 120x120 uint16 band of realistic content (the real example bands, tiled) as
   ``list<list<uint16>>``: encoding (uncompressed, and zstd + BYTE_STREAM_SPLIT as ben-hub writes it) and
   decoding, per band; the same values as a flat column without levels, and the levels' cost per S2 patch;
3. ben-hub's own writer (``ben_hub.parquet``) on the same bands at zstd levels -1, 1 and 3: time and bytes;
4. the exact statistics ben-hub keeps per patch (12 bands: sums and sums of squares).

    python bench/parts.py
"""

from __future__ import annotations

import functools
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import ROOT, publish

EXAMPLE = ROOT.parent / "shared" / "bigearthnet" / "example" / "BigEarthNet-S2-Example"


def read_back(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data), use_threads=False)


def per_call_us(action: Callable[[], object], calls: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            action()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def benhub_writer_rows(stack: np.ndarray) -> list[list[str]]:
    """ben-hub's own writer (``ben_hub.parquet``) on the same bands, 32 rows a page, at several zstd levels."""
    from ben_hub.parquet import ParquetFile

    schema = pa.schema([("b", pa.list_(pa.list_(pa.uint16())))])
    rows = []
    for level in (1, 3, -1):  # the default, -1, last: its file is the one read back below

        def write(level: int = level) -> bytes:
            sink = io.BytesIO()
            writer = ParquetFile(sink, schema, level)
            for start in range(0, len(stack), 32):
                writer.write_row_group({}, {"b": stack[start : start + 32]})
            writer.close()
            return sink.getvalue()

        data = write()
        label = (
            f"ben-hub writer, encode one band, zstd level {level} + BYTE_STREAM_SPLIT ({len(data) / len(stack):,.0f}"
        )
        rows.append([f"{label} bytes a band)", f"{per_call_us(write, 3) / len(stack):.1f}"])
    rows.append(["ben_hub.pages.read_grid, decode one band of the level -1 file", f"{page_read_us(data):.1f}"])
    return rows


def page_read_us(data: bytes) -> float:
    """Microseconds a band for the loader's direct page reader over every row group of ``data``."""
    from ben_hub.pages import read_grid

    parquet, handle = pq.ParquetFile(io.BytesIO(data)), io.BytesIO(data)
    groups = parquet.num_row_groups

    def read_all() -> None:
        for group in range(groups):
            read_grid(parquet, handle, group, 0, (120, 120), "uint16")

    return per_call_us(read_all, 3) / parquet.metadata.num_rows


def levels_rows(stack: np.ndarray, rows: list[list[str]]) -> list[list[str]]:
    """pyarrow encoding the same values as one flat, required uint16 column (no repetition or definition
    levels), and what the levels of ``list<list<uint16>>`` cost: the nested row's time (uncompressed, already
    in ``rows``) minus the flat one's, per value, times the values of one S2 patch (4 x 120², 6 x 60², 2 x 20²).
    """
    from ben_hub.bands import S2_BANDS

    values = stack.shape[1] * stack.shape[2]
    schema = pa.schema([pa.field("b", pa.uint16(), nullable=False)])
    flat = pa.table({"b": pa.array(stack.reshape(-1))}, schema=schema)

    def write() -> bytes:
        sink = io.BytesIO()
        pq.write_table(flat, sink, row_group_size=32 * values, use_dictionary=False, write_statistics=False,
                       compression="none")  # fmt: skip
        return sink.getvalue()

    plain = per_call_us(write, 3) / len(stack)
    nested = float(next(r[1] for r in rows if r[0].startswith("parquet encode one band, list<list<uint16>>, unc")))
    patch = sum(b.size * b.size for b in S2_BANDS)
    return [
        ["parquet encode one band's values as a flat required uint16 column (no levels), uncompressed", f"{plain:.1f}"],
        [f"pyarrow's nested levels alone, one S2 patch ({patch:,} values; nested minus flat, per value)",
         f"{(nested - plain) / values * patch:.1f}"],
    ]  # fmt: skip


def main() -> None:
    import tifffile

    from ben_hub import stats
    from ben_hub.shards import band_array
    from ben_hub.tiff import read_tiff

    files = sorted(EXAMPLE.glob("*/*_B02.tif"))
    blobs = [f.read_bytes() for f in files]
    ours = per_call_us(lambda: [read_tiff(b) for b in blobs], 500) / len(blobs)
    theirs = per_call_us(lambda: [tifffile.imread(f) for f in files], 50) / len(files)
    rows = [["decode one 120x120 band, ben_hub.tiff.read_tiff", f"{ours:.1f}"],
            ["decode one 120x120 band, tifffile.imread", f"{theirs:.1f}"]]  # fmt: skip
    bands = np.stack([tifffile.imread(f) for f in sorted(EXAMPLE.glob("*/*_B0[2348].tif"))])
    stack = np.concatenate([np.roll(bands, k, axis=2) for k in range(11)])[:256]  # 256 distinct real-like bands
    table = pa.table({"b": band_array(stack)})
    for label, options in (
        ("uncompressed", {"compression": "none"}),
        ("zstd + BYTE_STREAM_SPLIT", {"compression": "zstd", "use_byte_stream_split": True}),
    ):

        def write(options: dict = options) -> bytes:
            sink = io.BytesIO()
            pq.write_table(table, sink, row_group_size=32, use_dictionary=False, write_statistics=False, **options)
            return sink.getvalue()

        data = write()
        rows.append(
            [f"parquet encode one band, list<list<uint16>>, {label}", f"{per_call_us(write, 3) / len(stack):.1f}"]
        )
        decode = per_call_us(functools.partial(read_back, data), 3) / len(stack)
        rows.append([f"parquet decode one band, list<list<uint16>>, {label}", f"{decode:.1f}"])
        rows[-2][0] += f" ({len(data) / len(stack):,.0f} bytes a band)"
    rows += levels_rows(stack, rows)
    rows += benhub_writer_rows(stack)
    patch = {f"b{i}": np.asarray(stack[:32], dtype=np.uint16) for i in range(4)}
    acc = {"sum": 0, "sumsq": 0, "pixels": 0}

    def add_all() -> None:
        for values in patch.values():
            stats.add_pixels(acc, values.reshape(-1), "uint16")

    per_group = per_call_us(add_all, 20)
    rows.append(["exact statistics of the four 10 m bands of one patch", f"{per_group / 32:.1f}"])
    publish(
        "parts: per-band and per-patch costs",
        "python bench/parts.py",
        "; microseconds, medians of 5",
        ["what", "µs"],
        rows,
    )


if __name__ == "__main__":
    main()
