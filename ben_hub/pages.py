"""Read pixel columns of a shard straight from their parquet pages (the loader's fast path).

pyarrow rebuilds the nested ``list<list<uint16>>`` structure of every band from its repetition and definition
levels, about 87 µs per 120x120 band (``bench/parts.py``), although a built band is a full ``h x w`` grid in
every row. This reader takes the column chunk's byte range from the footer (read by pyarrow), walks its data
pages (thrift compact headers), decompresses each with zstd, skips the levels and joins the
``BYTE_STREAM_SPLIT`` streams back into values.

It accepts only what it can check: zstd, data pages v1 or v2, ``BYTE_STREAM_SPLIT`` values of a uint16
(INT32) or float32 leaf, and exactly ``rows * h * w`` stored values (so no null or short grid). Anything else,
pyarrow's own files with other settings included, makes :func:`read_grid` return ``None`` and the caller reads
the column with pyarrow. ``tests/test_pages.py`` checks it against pyarrow on files from both writers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.parquet as pq

BSS, DATA_PAGE, DATA_PAGE_V2 = 9, 0, 3
PHYSICAL_WIDTH = {"INT32": 4, "FLOAT": 4}


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


def _page_values(header: dict[int, Any], payload: bytes | memoryview, decompress: Any) -> tuple[memoryview, int]:
    """The BSS value bytes of one data page and its value count."""
    kind, raw_size = header[1], header[2]
    if kind == DATA_PAGE:
        page = header[5]
        if page[2] != BSS:
            raise NotAGrid("page is not BYTE_STREAM_SPLIT")
        data = memoryview(decompress(payload, raw_size))
        at = 0
        for _ in range(2):  # repetition, then definition levels: a 4-byte length each (both present in a grid)
            at += 4 + int.from_bytes(data[at : at + 4], "little")
        return data[at:], page[1]
    if kind == DATA_PAGE_V2:
        page = header[8]
        if page[4] != BSS or page[2] != 0:
            raise NotAGrid("page is not BYTE_STREAM_SPLIT without nulls")
        levels = page[5] + page[6]
        values = payload[levels:]
        if page.get(7, True):
            values = decompress(values, raw_size - levels)
        return memoryview(values), page[1]
    raise NotAGrid(f"page type {kind}")


def read_grid(
    parquet: pq.ParquetFile, handle: Any, group: int, column: int, shape: tuple[int, int]
) -> np.ndarray | None:
    """``(rows, h, w)`` values of one grid column chunk, or ``None`` when it is not a chunk this reader handles."""
    import zstandard

    meta = parquet.metadata.row_group(group)
    chunk = meta.column(column)
    width = PHYSICAL_WIDTH.get(chunk.physical_type)
    if width is None or chunk.compression != "ZSTD" or "BYTE_STREAM_SPLIT" not in chunk.encodings:
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
            if len(values) != width * count:  # a null or empty grid stores no value: not a full grid
                return None
            parts.append((values, count))
            seen += count
    except (NotAGrid, KeyError, IndexError):
        return None
    if seen != expected:
        return None
    unsigned = chunk.physical_type == "INT32"  # ben-hub's INT32 grids are uint16; FLOAT grids are float32
    out = np.empty(expected, dtype=np.uint16 if unsigned else np.uint32)
    at = 0
    for values, count in parts:
        streams = np.frombuffer(values, dtype=np.uint8).reshape(width, count)
        target = out[at : at + count]
        kept = 2 if unsigned else 4  # uint16 keeps the two low streams; the high ones hold zeros
        np.copyto(target, streams[kept - 1])
        for k in range(kept - 2, -1, -1):  # shifts and ors vectorise; a strided byte copy does not
            np.left_shift(target, 8, out=target)
            np.bitwise_or(target, streams[k], out=target)
        at += count
    return (out if unsigned else out.view(np.float32)).reshape(rows, *shape)
