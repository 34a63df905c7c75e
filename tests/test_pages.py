"""The loader's direct page reader against pyarrow, on shards of both writers; it declines what it cannot check."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ben_hub.bands import BANDS
from ben_hub.loader import LoaderConfig, SplitReader, grid_values, stack_bands
from ben_hub.pages import band_grid, leaf_columns, read_grid


def band_arrays(table: pa.Table, bands: tuple[str, ...]) -> np.ndarray:
    """The reference: ``(rows, bands, size, size)`` through pyarrow's nested lists, coarser grids repeated up."""
    return stack_bands({band: grid_values(table.column(band), BANDS[band].size) for band in bands}, bands)


def check_file(path: Path) -> int:
    """Every band of every row group equals pyarrow's values; returns how many chunks were compared."""
    parquet, compared = pq.ParquetFile(path), 0
    with path.open("rb") as handle:
        for group in range(parquet.num_row_groups):
            for band, column in leaf_columns(parquet).items():
                if band not in BANDS:
                    continue
                got = read_grid(parquet, handle, group, column, BANDS[band].shape, BANDS[band].dtype)
                want = parquet.read_row_group(group, columns=[band]).column(0).combine_chunks()
                values = want.flatten().flatten().to_numpy().reshape(got.shape if got is not None else (-1,))
                assert got is not None and got.dtype == values.dtype and np.array_equal(got, values), (path, band)
                compared += 1
    return compared


def test_pages_of_every_band_equal_pyarrows(built_v1: Path) -> None:
    shards = sorted((built_v1 / "data").rglob("*.parquet"))
    assert sum(check_file(p) for p in shards[:4]) >= 4 * 14  # 12 S2 bands (uint16) and VV, VH (float32)


def test_pyarrow_written_shards_read_alike(v1_copy: Path, tmp_path: Path) -> None:
    """Files of ``--writer pyarrow`` (several pages a chunk) take the same path and give the same values."""
    from ben_hub.archive import locate_archive
    from ben_hub.build import BuildConfig, build

    spec = locate_archive(v1_copy, with_s1=False)
    out = tmp_path / "repo"
    build(BuildConfig(spec=spec, lists_dir=v1_copy / "splits", method="fast", writer="pyarrow"), out, progress=False)
    assert check_file(next((out / "data").rglob("*.parquet"))) > 0
    reader = SplitReader(out, "train", LoaderConfig(bands=("B02", "B8A", "B01")))
    path, group, rows = reader.units[0]
    x, _ = reader.read_unit(path, group, rows)
    table = pq.read_table(path).slice(0, 0)  # schema check only
    assert table.schema.field("B02").type == pa.list_(pa.list_(pa.uint16()))
    expected = band_arrays(pq.ParquetFile(path).read_row_group(group), ("B02", "B8A", "B01"))
    assert np.array_equal(x, expected)
    reader.close()


def test_chunks_it_cannot_check_are_left_to_pyarrow(tmp_path: Path) -> None:
    grids = np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4)
    plain = tmp_path / "plain.parquet"  # snappy, no BYTE_STREAM_SPLIT: declined
    pq.write_table(pa.table({"B02": [g.tolist() for g in grids]}), plain, compression="snappy")
    with_null = io.BytesIO()  # a null grid stores no values: declined
    schema = pa.schema([("B02", pa.list_(pa.list_(pa.uint16())))])
    table = pa.table({"B02": [grids[0].tolist(), None]}, schema=schema)
    pq.write_table(table, with_null, compression="zstd", use_byte_stream_split=True, use_dictionary=False)
    for source in (plain, with_null):
        parquet = pq.ParquetFile(source)
        handle = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
        assert read_grid(parquet, handle, 0, 0, (4, 4), "uint16") is None


def test_band_grid_takes_pyarrow_where_the_page_reader_declines(built_v1: Path, tmp_path: Path) -> None:
    """``band_grid`` (the audit's and the statistics' reader) gives pyarrow's values, from the pages or, where the
    page reader declines the chunk, through pyarrow (``verify`` holds its recount to ``stats.json`` in other tests)."""
    shard = next((built_v1 / "data").rglob("*.parquet"))
    parquet = pq.ParquetFile(shard)
    with shard.open("rb") as handle:
        for band in ("B01", "B8A", "VV"):
            got = band_grid(parquet, handle, 1, leaf_columns(parquet), band, BANDS[band].shape, BANDS[band].dtype)
            want = parquet.read_row_group(1, columns=[band]).column(0).combine_chunks()
            assert got.dtype == BANDS[band].dtype and np.array_equal(got.reshape(-1), want.flatten().flatten())
    grids = np.arange(3 * 4 * 4, dtype=np.uint16).reshape(3, 4, 4)
    plain = tmp_path / "plain.parquet"  # snappy: the page reader declines it
    schema = pa.schema([("B02", pa.list_(pa.list_(pa.uint16())))])
    pq.write_table(pa.table({"B02": [g.tolist() for g in grids]}, schema=schema), plain, compression="snappy")
    parquet = pq.ParquetFile(plain)
    with plain.open("rb") as handle:
        got = band_grid(parquet, handle, 0, leaf_columns(parquet), "B02", (4, 4), "uint16")
    assert got.dtype == np.uint16 and np.array_equal(got, grids)


def test_a_grid_of_another_type_than_expected_is_left_to_pyarrow(built_v1: Path) -> None:
    shard = next((built_v1 / "data").rglob("*.parquet"))
    parquet = pq.ParquetFile(shard)
    with shard.open("rb") as handle:
        assert read_grid(parquet, handle, 0, leaf_columns(parquet)["B02"], (120, 120), "uint16") is not None
        assert read_grid(parquet, handle, 0, leaf_columns(parquet)["B02"], (120, 120), "float32") is None
        assert read_grid(parquet, handle, 0, leaf_columns(parquet)["VV"], (120, 120), "uint16") is None


def test_streamed_batches_of_mixed_grids_match_the_cache_and_pyarrow(built_v1: Path, tmp_path: Path) -> None:
    """Streaming gathers 10, 20 and 60 m bands per band and repeats the coarser ones up; it must give what the
    decoded cache (stacked by ``stack_bands``) gives, also when every chunk goes through pyarrow instead."""
    import shutil

    bands = ("B02", "B8A", "B01")
    repo = Path(shutil.copytree(built_v1, tmp_path / "repo"))
    for shard in (repo / "data").rglob("*.parquet"):  # snappy, no BYTE_STREAM_SPLIT: the page reader declines
        pq.write_table(pq.read_table(shard), shard, compression="snappy", row_group_size=7)
    cache: dict[str, Any] = {"cache_dir": str(tmp_path / "cache"), "threads": 3}
    readers = [SplitReader(root, "train", LoaderConfig(bands=bands, batch_size=10, shuffle_buffer=2, **extra))
               for root, extra in ((built_v1, {}), (repo, {"threads": 2}), (built_v1, cache),
                                   (built_v1, {"threads": 3}))]  # fmt: skip
    plain = [[(x.copy(), y.copy()) for x, y in r.batches()] for r in readers]
    for other in plain[1:]:
        assert np.array_equal(np.concatenate([x for x, _ in other]), np.concatenate([x for x, _ in plain[0]]))
        assert np.array_equal(np.concatenate([y for _, y in other]), np.concatenate([y for _, y in plain[0]]))
    assert plain[0][0][0].shape[1:] == (3, 120, 120)
    shuffled = [np.concatenate([x for x, _ in r.batches(epoch=3, shuffle=True, seed=1)]) for r in readers[:2]]
    threaded = np.concatenate([x for x, _ in readers[3].batches(epoch=3, shuffle=True, seed=1)])
    assert np.array_equal(threaded, shuffled[0])  # threads decode the same rows into the same places
    for reader in readers:
        reader.close()
        assert not reader.handles
    everything = np.concatenate([x for x, _ in plain[0]])
    rows = [sorted(map(bytes, a.reshape(len(a), -1))) for a in (*shuffled, everything)]  # same rows, any order
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == readers[0].rows


def test_s1_and_s2_bands_together_reach_every_consumer_alike(built_v1: Path, tmp_path: Path) -> None:
    """float32 S1 (VV, VH) beside uint16 S2 at 10 and 20 m: raw batches are float32, and the device sources and
    PatchDataset give what SplitReader normalises on the CPU."""
    import pytest

    torch = pytest.importorskip("torch")
    from ben_hub.dataset import PatchDataset
    from ben_hub.loader import DeviceBatches, DeviceCache

    config = LoaderConfig(bands=("B04", "VV", "VH", "B11"), batch_size=16)
    reader = SplitReader(built_v1, "train", config)
    want = np.concatenate([x for x, _ in reader.batches()])
    assert want.shape[1:] == (4, 120, 120) and np.isfinite(want).all()
    raw = SplitReader(built_v1, "train", LoaderConfig(bands=config.bands, batch_size=16, raw=True))
    assert next(raw.batches())[0].dtype == np.float32  # uint16 and float32 bands: float32 raw values
    streamed = torch.cat([x for x, _ in DeviceBatches(raw, "cpu").batches()]).numpy()
    held = torch.cat([x for x, _ in DeviceCache(reader, "cpu").batches()]).numpy()
    items = PatchDataset(built_v1, "train", LoaderConfig(bands=config.bands, cache_dir=str(tmp_path)))
    assert np.allclose(streamed, want, atol=1e-5) and np.allclose(held, want, atol=1e-5)
    assert np.allclose(np.stack([items[i]["image"] for i in range(len(items))]), want, atol=1e-5)
