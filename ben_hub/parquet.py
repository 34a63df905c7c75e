"""A parquet writer for ben-hub's shards: fixed-shape pixel grids written as whole pages, the rest plainly.

Why: pyarrow spends about 8 ns per value building the repetition and definition levels of a nested
``list<list<uint16>>`` column (144 µs to encode a 120x120 band against 24 for the same values as a flat column,
about 0.67 ms per S2 patch of 80,000 values, ``bench/parts.py``), more than reading, decoding and compressing
the patch together.  A band of a fixed ``h x w`` grid with no nulls
has the same levels in every row, so this writer encodes them once per shape and repeats the bytes; the
values are a ``BYTE_STREAM_SPLIT`` of the stacked grids (vectorised shifts) compressed with zstd.

What it writes (Apache Parquet format 2.x, read back by pyarrow, ``datasets`` and any reader that knows
``BYTE_STREAM_SPLIT`` on integers, format 2.11, as for pyarrow's own files with these settings):

* one row group per :meth:`ParquetFile.write_row_group` call, one data page (v1, as pyarrow writes) per column
  chunk: RLE levels and values compressed together with zstd (grid levels repeat, so they cost almost nothing);
* grid columns (``list<list<uint16|float32>>``): ``BYTE_STREAM_SPLIT`` values, no statistics, no nulls
  allowed (a missing band is an error upstream);
* every other column: ``PLAIN`` values with exact min/max/null-count statistics;
* the footer: the parquet schema as pyarrow derives it from the Arrow schema, ``column_orders`` (type-defined),
  and ``ARROW:schema`` (the IPC-serialised Arrow schema) so readers restore ``uint16``, ``timestamp[ms]`` etc.

The bytes depend only on the rows and the settings (no clocks, no library versions), so builds are
byte-identical across runs and machines.  ``tests/test_parquet.py`` checks every column type, nulls, empty
lists and both grid dtypes against the table pyarrow reads back (``tests/test_build_real.py`` the real patches'
pixels against the GeoTIFFs).
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import __version__
from .errors import BenHubError

# Parquet enums (parquet.thrift).
BOOLEAN, INT32, INT64, FLOAT, DOUBLE, BYTE_ARRAY = 0, 1, 2, 4, 5, 6
OPTIONAL, REPEATED = 1, 2
UTF8, LIST, UINT_16 = 0, 3, 12
PLAIN, RLE, BYTE_STREAM_SPLIT = 0, 3, 9
ZSTD = 6
DATA_PAGE = 0

# Thrift compact protocol type codes.
T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_BINARY, T_LIST, T_STRUCT = 1, 2, 3, 4, 5, 6, 8, 9, 12

MAGIC = b"PAR1"


class ParquetWriteError(BenHubError):
    """Rows that this writer cannot store as asked (a null or misshapen grid, an unsupported type)."""


# --- Thrift compact protocol (encoder only) --------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


Field = tuple[int, int, Any]
"""``(field id, thrift type code, value)``; a ``None`` value leaves the (optional) field out."""


def thrift_struct(fields: Iterable[Field]) -> bytes:
    out, last = bytearray(), 0
    for fid, kind, value in fields:
        if value is None:
            continue
        code = (T_TRUE if value else T_FALSE) if kind == T_TRUE else kind
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | code)
        else:
            out.append(code)
            out += varint(zigzag(fid))
        if kind != T_TRUE:
            out += thrift_value(kind, value)
        last = fid
    out.append(0)
    return bytes(out)


def thrift_value(kind: int, value: Any) -> bytes:
    if kind in (T_I16, T_I32, T_I64):
        return varint(zigzag(value))
    if kind == T_BYTE:
        return bytes([value & 0xFF])
    if kind == T_BINARY:
        data = value.encode() if isinstance(value, str) else bytes(value)
        return varint(len(data)) + data
    if kind == T_STRUCT:
        return value if isinstance(value, bytes) else thrift_struct(value)
    if kind == T_LIST:
        element, items = value
        size = len(items)
        head = bytes([size << 4 | element]) if size < 15 else bytes([0xF0 | element]) + varint(size)
        return head + b"".join(thrift_value(element, item) for item in items)
    raise ValueError(f"thrift type {kind} is not used by this writer")


def empty() -> bytes:
    return b"\x00"


# --- Schema: Arrow -> parquet schema elements and leaf columns ------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One leaf column: where it is, how it is stored, and how deep its levels go."""

    name: str  # the top-level field
    path: tuple[str, ...]  # path_in_schema
    physical: int
    arrow: pa.DataType  # the leaf's Arrow type
    max_def: int
    max_rep: int
    grid: bool  # list<list<number>>: fixed-shape pixels, written as whole pages


PHYSICAL: dict[pa.DataType, int] = {
    pa.bool_(): BOOLEAN, pa.int32(): INT32, pa.int64(): INT64, pa.uint16(): INT32, pa.float32(): FLOAT,
    pa.float64(): DOUBLE, pa.string(): BYTE_ARRAY, pa.timestamp("ms"): INT64, pa.timestamp("us"): INT64,
    pa.timestamp("ns"): INT64,
}  # fmt: skip


def logical(kind: pa.DataType) -> tuple[int | None, bytes | None]:
    """(converted type, logical type union) as pyarrow writes them for an Arrow leaf type."""
    if kind == pa.string():
        return UTF8, thrift_struct([(1, T_STRUCT, empty())])
    if kind == pa.uint16():
        return UINT_16, thrift_struct([(10, T_STRUCT, [(1, T_BYTE, 16), (2, T_TRUE, False)])])
    if pa.types.is_timestamp(kind):
        unit = {"ms": 1, "us": 2, "ns": 3}.get(kind.unit)
        if unit is None or kind.tz is not None:
            raise ParquetWriteError(f"timestamp[{kind.unit}, tz={kind.tz}] is not supported: use ms, us or ns, naive")
        return None, thrift_struct([(8, T_STRUCT, [(1, T_TRUE, False), (2, T_STRUCT, [(unit, T_STRUCT, empty())])])])
    return None, None


def schema_elements(schema: pa.Schema) -> tuple[list[bytes], list[Leaf]]:
    """The flattened parquet schema (depth first, root first) and the leaf columns in order."""
    elements = [thrift_struct([(4, T_BINARY, "schema"), (5, T_I32, len(schema))])]
    leaves: list[Leaf] = []
    for field in schema:
        add_field(field.name, field.type, field.name, (), 0, 0, 0, elements, leaves)
    return elements, leaves


def add_field(name: str, kind: pa.DataType, top: str, path: tuple[str, ...], defs: int, reps: int, lists: int,
              elements: list[bytes], leaves: list[Leaf]) -> None:  # fmt: skip
    path, defs = (*path, name), defs + 1  # every Arrow field is nullable: OPTIONAL
    if pa.types.is_list(kind):
        elements.append(thrift_struct([(3, T_I32, OPTIONAL), (4, T_BINARY, name), (5, T_I32, 1), (6, T_I32, LIST),
                                       (10, T_STRUCT, [(3, T_STRUCT, empty())])]))  # fmt: skip
        elements.append(thrift_struct([(3, T_I32, REPEATED), (4, T_BINARY, "list"), (5, T_I32, 1)]))
        add_field("element", kind.value_type, top, (*path, "list"), defs + 1, reps + 1, lists + 1, elements, leaves)
        return
    if kind not in PHYSICAL:
        raise ParquetWriteError(f"column {top!r}: Arrow type {kind} is not supported by ben-hub's parquet writer")
    converted, logical_type = logical(kind)
    elements.append(thrift_struct([(1, T_I32, PHYSICAL[kind]), (3, T_I32, OPTIONAL), (4, T_BINARY, name),
                                   (6, T_I32, converted), (10, T_STRUCT, logical_type)]))  # fmt: skip
    grid = lists == 2 and kind in (pa.uint16(), pa.float32())
    leaves.append(Leaf(top, path, PHYSICAL[kind], kind, defs, reps, grid))


# --- Levels and values -----------------------------------------------------------------------------------------


def rle_runs(levels: Sequence[int], max_level: int) -> bytes:
    """Levels in the RLE/bit-packed hybrid, as RLE runs only (valid for any sequence)."""
    width = (max_level.bit_length() + 7) // 8
    out, i, n = bytearray(), 0, len(levels)
    while i < n:
        j = i
        while j < n and levels[j] == levels[i]:
            j += 1
        out += varint((j - i) << 1) + levels[i].to_bytes(width, "little")
        i = j
    return bytes(out)


def level_block(levels: bytes, present: bool) -> bytes:
    """Levels as a data page v1 holds them: a 4-byte length, then the RLE bytes (nothing when max level is 0)."""
    return struct.pack("<I", len(levels)) + levels if present else b""


def grid_levels(max_rep: int, max_def: int, rows: int, h: int, w: int) -> bytes:
    """The level section of a page of ``rows`` full ``h x w`` grids: one row's runs, repeated."""
    row = rle_runs([0] + [2] * (w - 1) + ([1] + [2] * (w - 1)) * (h - 1), max_rep)
    defs = varint((rows * h * w) << 1) + max_def.to_bytes((max_def.bit_length() + 7) // 8, "little")
    return level_block(row * rows, True) + level_block(defs, True)


SPLIT_GRIDS = True
"""Grid values as ``BYTE_STREAM_SPLIT`` streams; ``False``: ``PLAIN`` 4-byte values, the encoding readers without
Parquet format 2.11 take (``bench/encoding.py``'s baseline for the size it costs)."""


class GridPages:
    """Reused page buffers for grids: the levels (the same for every page of a shape) and then the
    ``BYTE_STREAM_SPLIT`` streams; for uint16 stored as INT32 the two high streams stay zero."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[int, int, int, int, int, int], tuple[np.ndarray, int]] = {}

    def page(self, leaf: Leaf, stack: np.ndarray) -> np.ndarray:
        rows, h, w = stack.shape
        key = (leaf.max_rep, leaf.max_def, rows, h, w, stack.itemsize)
        if key not in self.buffers:
            levels = grid_levels(leaf.max_rep, leaf.max_def, rows, h, w)
            buffer = np.zeros(len(levels) + 4 * stack.size, dtype=np.uint8)  # physical width 4 (INT32 / FLOAT)
            buffer[: len(levels)] = np.frombuffer(levels, dtype=np.uint8)
            self.buffers[key] = buffer, len(levels)
        buffer, start = self.buffers[key]
        if not SPLIT_GRIDS:  # uint16 widened to INT32, float32 as is: little-endian 4-byte words
            words = np.ascontiguousarray(stack).reshape(-1)
            plain = words.astype("<u4") if stack.itemsize == 2 else words.view("<u4")
            buffer[start : start + 4 * stack.size] = plain.view(np.uint8)
            return buffer
        streams = buffer[start : start + stack.itemsize * stack.size].reshape(stack.itemsize, stack.size)
        words = np.ascontiguousarray(stack).reshape(-1).view(f"<u{stack.itemsize}")
        for k, stream in enumerate(streams):  # byte k of each value; shifts vectorise, a strided copy does not
            np.right_shift(words, 8 * k, out=stream, casting="unsafe")  # the unsafe cast keeps the low byte
        return buffer


def plain(leaf: Leaf, values: pa.Array) -> bytes:
    """Non-null values in PLAIN encoding."""
    if leaf.physical == BYTE_ARRAY:
        return b"".join(struct.pack("<I", len(v)) + v for v in (s.encode() for s in values.to_pylist()))
    if leaf.physical == BOOLEAN:
        return np.packbits(values.to_numpy(zero_copy_only=False).astype(np.uint8), bitorder="little").tobytes()
    if pa.types.is_timestamp(values.type):
        values = values.view(pa.int64())
    dtype = {INT32: "<i4", INT64: "<i8", FLOAT: "<f4", DOUBLE: "<f8"}[leaf.physical]
    return values.to_numpy(zero_copy_only=False).astype(dtype).tobytes()


def statistic(leaf: Leaf, value: Any) -> bytes:
    """One min or max value, PLAIN-encoded without a length prefix."""
    if leaf.physical == BYTE_ARRAY:
        return str(value).encode()
    if leaf.physical == BOOLEAN:
        return bytes([int(value)])
    fmt = {INT32: "<i", INT64: "<q", FLOAT: "<f", DOUBLE: "<d"}[leaf.physical]
    return struct.pack(fmt, value)


def statistics(leaf: Leaf, values: pa.Array, nulls: int) -> bytes:
    fields: list[Field] = [(3, T_I64, nulls)]
    if len(values):
        if pa.types.is_timestamp(values.type):
            values = values.view(pa.int64())
        if pa.types.is_floating(values.type):
            values = pc.filter(values, pc.invert(pc.is_nan(values)))
        if len(values):
            bounds = pc.min_max(values)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            fields += [(5, T_BINARY, statistic(leaf, high)), (6, T_BINARY, statistic(leaf, low)),
                       (7, T_TRUE, True), (8, T_TRUE, True)]  # fmt: skip
    return thrift_struct(fields)


def flat_levels(leaf: Leaf, column: pa.Array) -> tuple[list[int], list[int], pa.Array]:
    """Repetition and definition levels and the non-null leaf values of a scalar or ``list<scalar>`` column."""
    if leaf.max_rep == 0:
        valid = column.is_valid().to_pylist()
        return [], [1 if v else 0 for v in valid], column.drop_null()
    reps: list[int] = []
    defs: list[int] = []
    flat = column.flatten()  # the elements of the non-null lists, slicing respected
    element_valid = flat.is_valid().to_pylist()
    at = 0
    for length in column.value_lengths().to_pylist():  # None for a null list
        if not length:
            reps.append(0)
            defs.append(leaf.max_def - 2 if length == 0 else 0)
            continue
        reps += [0] + [1] * (length - 1)
        defs += [leaf.max_def if v else leaf.max_def - 1 for v in element_valid[at : at + length]]
        at += length
    return reps, defs, flat.drop_null()


# --- The file --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """What the footer needs to describe one written column chunk."""

    leaf: Leaf
    offset: int
    compressed: int
    uncompressed: int
    values: int
    encoding: int
    stats: bytes | None


class ParquetFile:
    """Write a parquet file row group by row group; :meth:`close` writes the footer.

    ``write_row_group(columns, grids)``: ``columns`` maps each non-grid field to a list of Python values (or an
    Arrow array of the field's type); ``grids`` maps each grid field to its stacked ``(rows, h, w)`` array.
    """

    def __init__(self, sink: str | Path | BinaryIO, schema: pa.Schema, compression_level: int = -1) -> None:
        import zstandard

        self.schema = schema = storable(schema)
        self.elements, self.leaves = schema_elements(schema)
        self.zstd = zstandard.ZstdCompressor(level=compression_level)
        self.owned = isinstance(sink, str | os.PathLike)
        self.sink: BinaryIO = open(sink, "wb") if isinstance(sink, str | os.PathLike) else sink  # noqa: SIM115
        self.sink.write(MAGIC)
        self.position = len(MAGIC)
        self.row_groups: list[bytes] = []
        self.rows = 0
        self.grids = GridPages()

    def write(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        self.position += len(data)

    def page(self, payload: Any, count: int, encoding: int) -> tuple[int, int, int]:
        """Write one data page (v1: levels and values compressed together); returns (offset, compressed bytes,
        uncompressed bytes), its header included."""
        if len(payload) >= 2**31:  # page sizes are i32 in the format
            raise ParquetWriteError(f"a {len(payload):,}-byte page exceeds parquet's 2 GiB page limit; use fewer rows "
                                    "per row group (--row-group-size)")  # fmt: skip
        packed = self.zstd.compress(payload)
        header = thrift_struct([
            (1, T_I32, DATA_PAGE), (2, T_I32, len(payload)), (3, T_I32, len(packed)),
            (5, T_STRUCT, [(1, T_I32, count), (2, T_I32, encoding), (3, T_I32, RLE), (4, T_I32, RLE)]),
        ])  # fmt: skip
        offset = self.position
        self.write(header)
        self.write(packed)
        return offset, len(header) + len(packed), len(header) + len(payload)

    def grid_chunk(self, leaf: Leaf, stack: np.ndarray) -> Chunk:
        if stack.ndim != 3 or stack.dtype != np.dtype(leaf.arrow.to_pandas_dtype()):
            raise ParquetWriteError(f"column {leaf.name!r}: expected (rows, h, w) {leaf.arrow} grids, got "
                                    f"{stack.dtype} {stack.shape}")  # fmt: skip
        encoding = BYTE_STREAM_SPLIT if SPLIT_GRIDS else PLAIN
        offset, packed, raw = self.page(self.grids.page(leaf, stack), stack.size, encoding)
        return Chunk(leaf, offset, packed, raw, stack.size, encoding, None)

    def flat_chunk(self, leaf: Leaf, column: pa.Array) -> Chunk:
        reps, defs, values = flat_levels(leaf, column)
        nulls = len(defs) - len(values)
        payload = (level_block(rle_runs(reps, leaf.max_rep), leaf.max_rep > 0)
                   + level_block(rle_runs(defs, leaf.max_def), leaf.max_def > 0) + plain(leaf, values))  # fmt: skip
        offset, packed, raw = self.page(payload, len(defs), PLAIN)
        return Chunk(leaf, offset, packed, raw, len(defs), PLAIN, statistics(leaf, values, nulls))

    def write_row_group(self, columns: dict[str, Any], grids: dict[str, np.ndarray]) -> None:
        rows = {len(v) for v in (*columns.values(), *grids.values())}
        if len(rows) != 1:
            raise ParquetWriteError(f"row group columns differ in length: {sorted(rows)}")
        (n,) = rows
        start, chunks = self.position, []
        for leaf in self.leaves:
            if leaf.grid:
                if leaf.name not in grids:
                    raise ParquetWriteError(f"no pixels given for grid column {leaf.name!r}")
                chunks.append(self.grid_chunk(leaf, grids[leaf.name]))
                continue
            values = columns[leaf.name]
            kind = self.schema.field(leaf.name).type
            array = values.cast(kind) if isinstance(values, pa.Array) else pa.array(values, kind)
            chunks.append(self.flat_chunk(leaf, array))
        self.row_groups.append(row_group(chunks, n, start, len(self.row_groups)))
        self.rows += n

    def close(self) -> None:
        footer = thrift_struct([
            (1, T_I32, 2), (2, T_LIST, (T_STRUCT, self.elements)), (3, T_I64, self.rows),
            (4, T_LIST, (T_STRUCT, self.row_groups)),
            (5, T_LIST, (T_STRUCT, [[(1, T_BINARY, "ARROW:schema"), (2, T_BINARY, arrow_schema(self.schema))]])),
            (6, T_BINARY, f"ben-hub version {__version__}"),
            (7, T_LIST, (T_STRUCT, [thrift_struct([(1, T_STRUCT, empty())])] * len(self.leaves))),
        ])  # fmt: skip
        self.write(footer)
        self.write(struct.pack("<I", len(footer)) + MAGIC)
        if self.owned:
            self.sink.close()

    def discard(self) -> None:
        """Stop without a footer (the file is incomplete; its owner deletes it): after an error."""
        if self.owned:
            self.sink.close()


def row_group(chunks: list[Chunk], rows: int, start: int, ordinal: int) -> bytes:
    described = [thrift_struct([(2, T_I64, 0), (3, T_STRUCT, column_meta(c))]) for c in chunks]
    return thrift_struct([
        (1, T_LIST, (T_STRUCT, described)), (2, T_I64, sum(c.uncompressed for c in chunks)), (3, T_I64, rows),
        (5, T_I64, start), (6, T_I64, sum(c.compressed for c in chunks)), (7, T_I16, ordinal),
    ])  # fmt: skip


def column_meta(chunk: Chunk) -> list[Field]:
    encodings = sorted({RLE, chunk.encoding})
    return [
        (1, T_I32, chunk.leaf.physical), (2, T_LIST, (T_I32, encodings)),
        (3, T_LIST, (T_BINARY, list(chunk.leaf.path))),
        (4, T_I32, ZSTD), (5, T_I64, chunk.values), (6, T_I64, chunk.uncompressed), (7, T_I64, chunk.compressed),
        (9, T_I64, chunk.offset), (12, T_STRUCT, chunk.stats),
    ]  # fmt: skip


def storable(schema: pa.Schema) -> pa.Schema:
    """Parquet has no seconds: ``timestamp[s]`` is stored (and read back) as ``timestamp[ms]``, as pyarrow does."""
    fields = [f.with_type(pa.timestamp("ms")) if f.type == pa.timestamp("s") else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def arrow_schema(schema: pa.Schema) -> str:
    """The ``ARROW:schema`` footer value: the IPC-serialised schema, base64 (what pyarrow writes and reads)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode()
