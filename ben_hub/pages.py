"""Read pixel columns of a shard straight from their parquet pages (the loader's fast path).

pyarrow rebuilds the nested ``list<list<uint16>>`` structure of every band from its repetition and definition
levels, 64-69 µs per 120x120 band against 28 for this reader (``bench/parts.py``), although a built band is
a full ``h x w`` grid in every row. This reader takes the column chunk's byte range from the footer (read by
pyarrow), walks its data pages (thrift compact headers), decompresses each with zstd, skips the levels and
joins the ``BYTE_STREAM_SPLIT`` streams back into values.

It accepts only what it can check: zstd, v1 data pages (what both ben-hub's and pyarrow's writers write),
``BYTE_STREAM_SPLIT`` values of a leaf of the expected type (uint16 stored as INT32, or float32), and exactly
``rows * h * w`` stored values (so no null or short grid). Anything else makes :func:`read_grid` return
``None`` and the caller reads the column with pyarrow. ``tests/test_pages.py`` checks it against pyarrow on
files from both writers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .parquet import BYTE_STREAM_SPLIT, DATA_PAGE

WIDTH = 4  # bytes a stored value: INT32 (holding uint16) or FLOAT


class NotAGrid(Exception):
    """The column chunk is not one this reader handles; read it with pyarrow."""


def _varint(buf: memoryview, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def read_struct(buf: memoryview, at: int) -> tuple[dict[int, Any], int]:
    """A thrift compact struct: ``{field id: value}`` (nested structs as dicts, lists as lists)."""
    fields: dict[int, Any] = {}
    last = 0
    while True:
        head = buf[at]
        at += 1
        if head == 0:
            return fields, at
        kind, delta = head & 0x0F, head >> 4
        if delta:
            fid = last + delta
        else:
            raw, at = _varint(buf, at)
            fid = _zigzag(raw)
        fields[fid], at = _read_value(buf, at, kind)
        last = fid


def _read_value(buf: memoryview, at: int, kind: int) -> tuple[Any, int]:
    if kind in (1, 2):  # booleans live in the type nibble
        return kind == 1, at
    if kind == 3:
        return buf[at], at + 1
    if kind in (4, 5, 6):
        raw, at = _varint(buf, at)
        return _zigzag(raw), at
    if kind == 7:
        return bytes(buf[at : at + 8]), at + 8
    if kind == 8:
        size, at = _varint(buf, at)
        return bytes(buf[at : at + size]), at + size
    if kind in (9, 10):
        head = buf[at]
        at += 1
        size, element = head >> 4, head & 0x0F
        if size == 15:
            size, at = _varint(buf, at)
        items = []
        for _ in range(size):
            item, at = _read_value(buf, at, element)
            items.append(item)
        return items, at
    if kind == 12:
        return read_struct(buf, at)
    raise NotAGrid(f"thrift type {kind} in a page header")


def _page_values(header: dict[int, Any], payload: memoryview, decompress: Any) -> tuple[memoryview, int]:
    """The BSS value bytes of one v1 data page and its value count."""
    if header[1] != DATA_PAGE or header[5][2] != BYTE_STREAM_SPLIT:
        raise NotAGrid("not a BYTE_STREAM_SPLIT data page v1")
    data = memoryview(decompress(payload, header[2]))
    at = 0
    for _ in range(2):  # repetition, then definition levels: a 4-byte length each (both present in a grid)
        at += 4 + int.from_bytes(data[at : at + 4], "little")
    return data[at:], header[5][1]


def read_grid(
    parquet: pq.ParquetFile,
    handle: Any,
    group: int,
    column: int,
    shape: tuple[int, int],
    dtype: str,
    out: np.ndarray | None = None,
    schema: pa.Schema | None = None,
) -> np.ndarray | None:
    """``(rows, h, w)`` values (``dtype``: ``uint16`` or ``float32``) of one grid column chunk, or ``None`` when
    it is not a chunk this reader handles.

    ``out``: a C-contiguous ``(rows, h, w)`` array of ``dtype`` to decode into (it may be partly written when
    ``None`` is returned).  ``schema``: the file's Arrow schema, when the caller keeps it (pyarrow builds it
    again on every access, about 90 µs).
    """
    import zstandard

    meta = parquet.metadata.row_group(group)
    chunk = meta.column(column)
    name = chunk.path_in_schema.split(".")[0]
    leaf = (schema if schema is not None else parquet.schema_arrow).field(name).type
    while pa.types.is_list(leaf):
        leaf = leaf.value_type
    if dtype not in ("uint16", "float32") or leaf != pa.from_numpy_dtype(np.dtype(dtype)):
        return None  # the stored type is not the one the caller expects
    if chunk.compression != "ZSTD" or "BYTE_STREAM_SPLIT" not in chunk.encodings:
        return None
    if chunk.dictionary_page_offset is not None:
        return None
    rows, expected = meta.num_rows, meta.num_rows * shape[0] * shape[1]
    handle.seek(chunk.data_page_offset)
    buf = memoryview(handle.read(chunk.total_compressed_size))
    decompressor = zstandard.ZstdDecompressor()

    def decompress(data: Any, size: int) -> bytes:
        return decompressor.decompress(data, max_output_size=size)

    parts, seen, at = [], 0, 0
    try:
        while at < len(buf):
            header, at = read_struct(buf, at)
            size = header[3]
            values, count = _page_values(header, buf[at : at + size], decompress)
            at += size
            if len(values) != WIDTH * count:  # a null or empty grid stores no value: not a full grid
                return None
            parts.append((values, count))
            seen += count
    except (NotAGrid, KeyError, IndexError):
        return None
    if seen != expected:
        return None
    unsigned = dtype == "uint16"
    if out is None:
        out = np.empty((rows, *shape), dtype=dtype)
    if out.shape != (rows, *shape) or out.dtype != np.dtype(dtype) or not out.flags.c_contiguous:
        raise ValueError(f"read_grid: out must be a C-contiguous {(rows, *shape)} {dtype} array")
    flat = out.reshape(-1).view(np.uint16 if unsigned else np.uint32)
    at = 0
    for values, count in parts:
        streams = np.frombuffer(values, dtype=np.uint8).reshape(WIDTH, count)
        target = flat[at : at + count]
        kept = 2 if unsigned else 4  # uint16 keeps the two low streams; the high ones hold zeros
        np.copyto(target, streams[kept - 1])
        for k in range(kept - 2, -1, -1):  # shifts and ors vectorise; a strided byte copy does not
            np.left_shift(target, 8, out=target)
            np.bitwise_or(target, streams[k], out=target)
        at += count
    return out


def leaf_columns(parquet: pq.ParquetFile) -> dict[str, int]:
    """The parquet leaf column index of each top-level field (a band's ``B02.list.element.list.element``)."""
    return {parquet.schema.column(i).path.split(".")[0]: i for i in range(parquet.metadata.num_columns)}


def band_grid(
    parquet: pq.ParquetFile,
    handle: Any,
    group: int,
    leaves: dict[str, int],
    name: str,
    shape: tuple[int, int],
    dtype: str,
    schema: pa.Schema | None = None,
) -> np.ndarray:
    """``(rows, h, w)`` values of the grid column ``name`` in row group ``group``: from its pages
    (:func:`read_grid`), or, for a chunk that reader does not handle, through pyarrow's nested lists, in the
    stored type."""
    grid = read_grid(parquet, handle, group, leaves[name], shape, dtype, schema=schema)
    if grid is not None:
        return grid
    column = parquet.read_row_group(group, columns=[name]).column(name)
    return pc.list_flatten(pc.list_flatten(column)).to_numpy().reshape(len(column), *shape)
