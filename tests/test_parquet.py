"""ben-hub's parquet writer against pyarrow's: same Arrow table back, same statistics, deterministic bytes."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ben_hub.parquet import ParquetFile, ParquetWriteError

SCHEMA = pa.schema([
    ("patch_id", pa.string()), ("B02", pa.list_(pa.list_(pa.uint16()))), ("VV", pa.list_(pa.list_(pa.float32()))),
    ("labels", pa.list_(pa.int64())), ("epsg", pa.int32()), ("lon", pa.float64()),
    ("acquisition_time", pa.timestamp("s")), ("seasonal_snow", pa.bool_()), ("country", pa.string()),
])  # fmt: skip
GRIDS = ("B02", "VV")


def rows(n: int, seed: int = 0, h: int = 6, w: int = 4) -> tuple[dict[str, list], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pick = lambda values: [values[i] for i in rng.integers(0, len(values), n)]  # noqa: E731
    columns = {
        "patch_id": [f"S2A_{seed}_{i}" for i in range(n)],
        "labels": pick([[1, 2], [], None, [3], [0, 42, 7], [None, 5]]),
        "epsg": pick([32632, None, 32634, -1]),
        "lon": pick([1.5, float("nan"), None, -2.25, 3e300]),
        "acquisition_time": pick([dt.datetime(2017, 6, 13, 10, 10, 31), None, dt.datetime(2018, 5, 29, 9, 0, 0)]),
        "seasonal_snow": pick([True, False, None]),
        "country": pick([None, "Portugal", "Österreich", "Serbia"]),
    }
    grids: dict[str, np.ndarray] = {
        "B02": rng.integers(0, 65536, (n, h, w)).astype(np.uint16),  # the full range: high byte and sign bit
        "VV": rng.normal(size=(n, h, w)).astype(np.float32),
    }
    return columns, grids


def ours(groups: list[tuple[dict[str, list], dict[str, np.ndarray]]], level: int = 3) -> bytes:
    sink = io.BytesIO()
    writer = ParquetFile(sink, SCHEMA, level)
    for columns, grids in groups:
        writer.write_row_group(columns, grids)
    writer.close()
    return sink.getvalue()


def reference(groups: list[tuple[dict[str, list], dict[str, np.ndarray]]]) -> bytes:
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, SCHEMA, compression="zstd") as writer:
        for columns, grids in groups:
            data = {**columns, **{k: [g.tolist() for g in v] for k, v in grids.items()}}
            writer.write_table(pa.table(data, schema=SCHEMA))
    return sink.getvalue()


def same_tables(a: pa.Table, b: pa.Table) -> None:
    assert a.schema == b.schema
    for name in a.column_names:  # repr: NaN equals NaN
        assert repr(a.column(name).to_pylist()) == repr(b.column(name).to_pylist()), name


def test_every_column_type_reads_back_as_pyarrow_writes_it() -> None:
    groups = [rows(7, 0), rows(1, 1), rows(32, 2)]
    mine, theirs = pq.ParquetFile(io.BytesIO(ours(groups))), pq.ParquetFile(io.BytesIO(reference(groups)))
    same_tables(mine.read(), theirs.read())
    text = lambda f: str(f.schema).split("\n", 1)[1]  # noqa: E731  (the first line has an address)
    assert text(mine) == text(theirs)  # the same parquet schema, logical types included
    assert mine.metadata.num_row_groups == 3 and [mine.metadata.row_group(i).num_rows for i in range(3)] == [7, 1, 32]
    table = mine.read()
    assert table.column("acquisition_time").type == pa.timestamp("ms")  # parquet has no seconds, as with pyarrow
    stacked = np.concatenate([g["B02"] for _, g in groups])
    assert np.array_equal(np.asarray(table.column("B02").to_pylist(), dtype=np.uint16), stacked)
    assert table.column("VV").to_pylist()[0] == groups[0][1]["VV"][0].tolist()  # float32 bits unchanged


def test_statistics_equal_pyarrows_and_grids_carry_none() -> None:
    groups = [rows(20, 3)]
    mine = pq.ParquetFile(io.BytesIO(ours(groups))).metadata
    theirs = pq.ParquetFile(io.BytesIO(reference(groups))).metadata
    for i in range(mine.num_columns):
        a, b = mine.row_group(0).column(i), theirs.row_group(0).column(i)
        assert a.path_in_schema == b.path_in_schema and a.num_values == b.num_values
        if a.path_in_schema.startswith(GRIDS):
            assert a.statistics is None and "BYTE_STREAM_SPLIT" in a.encodings
            continue
        assert a.statistics.null_count == b.statistics.null_count, a.path_in_schema
        assert (a.statistics.min, a.statistics.max) == (b.statistics.min, b.statistics.max), a.path_in_schema


def test_bytes_are_deterministic_and_the_level_sets_the_size() -> None:
    groups = [rows(16, 4, 30, 30), rows(5, 5, 30, 30)]
    assert ours(groups) == ours(groups)
    assert len(ours(groups, 19)) < len(ours(groups, 1))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(0, 10**6)), min_size=1, max_size=3),
       st.integers(1, 12), st.integers(1, 12))  # fmt: skip
def test_any_shapes_and_row_groups_read_back_exactly(groups: list[tuple[int, int]], h: int, w: int) -> None:
    data = [rows(n, seed, h, w) for n, seed in groups]
    same_tables(pq.read_table(io.BytesIO(ours(data))), pq.read_table(io.BytesIO(reference(data))))


def test_an_empty_file_is_a_valid_parquet_file() -> None:
    table = pq.read_table(io.BytesIO(ours([])))
    assert table.num_rows == 0 and table.schema == pq.read_table(io.BytesIO(reference([]))).schema


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c, g: g.update(B02=g["B02"].astype(np.int32)), "expected \\(rows, h, w\\) uint16"),
        (lambda c, g: g.pop("VV"), "no pixels given for grid column 'VV'"),
        (lambda c, g: c.update(epsg=c["epsg"][:-1]), "differ in length"),
    ],
)
def test_rows_it_cannot_store_are_refused_by_name(change: Callable[[dict, dict], object], message: str) -> None:
    columns, grids = rows(4)
    change(columns, grids)
    with pytest.raises(ParquetWriteError, match=message):
        ours([(columns, grids)])


def test_unsupported_arrow_types_are_refused_by_column() -> None:
    with pytest.raises(ParquetWriteError, match="column 'x': Arrow type int8"):
        ParquetFile(io.BytesIO(), pa.schema([("x", pa.int8())]))


def test_independent_readers_see_the_same_values(built_v1: Path) -> None:
    """DuckDB (the Hub's SQL console) and Polars (a Rust reader) read a built shard exactly as pyarrow does.  The
    S2 bands are BYTE_STREAM_SPLIT integers (Parquet 2.11), which DuckDB reads from 2.0 on (Python 3.11+): 1.x
    refuses them, and reads every other column."""
    duckdb = pytest.importorskip("duckdb", minversion="2.0")
    polars = pytest.importorskip("polars")
    shard = next((built_v1 / "data").rglob("*.parquet"))
    expected = pq.read_table(shard)
    relation = duckdb.sql(f"select * from read_parquet('{shard}')").arrow()
    seen_by_duckdb = relation.read_all() if hasattr(relation, "read_all") else relation
    seen_by_polars = polars.read_parquet(shard, use_pyarrow=False)
    assert seen_by_duckdb.column_names == seen_by_polars.columns == expected.column_names
    for name in expected.column_names:
        want = expected.column(name).to_pylist()
        assert seen_by_duckdb.column(name).to_pylist() == want, f"duckdb: {name}"
        assert seen_by_polars[name].to_list() == want, f"polars: {name}"
