"""A small, strict reader and writer for BigEarthNet's GeoTIFFs.

BigEarthNet patches are single-band, uncompressed, strip-organised, little-endian classic TIFFs
(uint16 for Sentinel-2, float32 for Sentinel-1) carrying GeoTIFF tags.  Decoding one is a header walk and
one ``numpy.frombuffer`` over the strip bytes: 4 µs per band against about 230 µs for ``tifffile.imread``
(``bench/parts.py``).  Anything else (compression, tiles, several samples, BigTIFF, a truncated file) is
rejected with a :class:`~ben_hub.errors.TiffError` rather than guessed at.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .errors import TiffError

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_TYPE_CODES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d"}
_SAMPLE_FORMATS = {
    (1, 8): "u1",
    (1, 16): "u2",
    (1, 32): "u4",
    (2, 16): "i2",
    (2, 32): "i4",
    (3, 32): "f4",
    (3, 64): "f8",
}

WIDTH, HEIGHT, BITS, COMPRESSION, PHOTOMETRIC = 256, 257, 258, 259, 262
STRIP_OFFSETS, SAMPLES, ROWS_PER_STRIP, STRIP_COUNTS, PLANAR, SAMPLE_FORMAT = 273, 277, 278, 279, 284, 339
TILE_WIDTH = 322
PIXEL_SCALE, TIEPOINT, GEOKEYS = 33550, 33922, 34735
_PROJECTED_CS_KEY, _GEOGRAPHIC_KEY = 3072, 2048


@dataclass(frozen=True)
class GeoInfo:
    """Georeferencing of a north-up raster: upper-left corner, pixel size, EPSG code (None if absent)."""

    ulx: float
    uly: float
    pixel_x: float
    pixel_y: float
    epsg: int | None


def _tags(buf: bytes) -> tuple[str, dict[int, tuple[int, int, int]]]:
    if len(buf) < 8:
        raise TiffError(f"file is {len(buf)} bytes long, too short for a TIFF header (truncated download?)")
    order = {b"II": "<", b"MM": ">"}.get(buf[:2])
    if order is None:
        raise TiffError("not a TIFF file (bad byte-order mark)")
    magic, ifd = struct.unpack_from(order + "HI", buf, 2)
    if magic == 43:
        raise TiffError("BigTIFF is not used by BigEarthNet and not supported")
    if magic != 42 or ifd + 2 > len(buf):
        raise TiffError("not a classic TIFF or the first directory lies past the end of the file (truncated?)")
    (count,) = struct.unpack_from(order + "H", buf, ifd)
    if ifd + 2 + 12 * count > len(buf):
        raise TiffError("the tag directory runs past the end of the file (truncated?)")
    tags = {}
    for i in range(count):
        tag, typ, n, _ = struct.unpack_from(order + "HHII", buf, ifd + 2 + 12 * i)
        tags[tag] = (typ, n, ifd + 2 + 12 * i + 8)
    return order, tags


def _values(buf: bytes, order: str, entry: tuple[int, int, int]) -> tuple:
    typ, n, field = entry
    if typ not in _TYPE_CODES:
        raise TiffError(f"unsupported tag type {typ}")
    size = _TYPE_SIZES[typ] * n
    where = field if size <= 4 else struct.unpack_from(order + "I", buf, field)[0]
    if where + size > len(buf):
        raise TiffError("a tag's values lie past the end of the file (truncated?)")
    return struct.unpack_from(f"{order}{n * len(_TYPE_CODES[typ])}{_TYPE_CODES[typ][0]}", buf, where)


def _scalar(buf: bytes, order: str, tags: dict, tag: int, default: int | None = None) -> int:
    if tag not in tags:
        if default is None:
            raise TiffError(f"required TIFF tag {tag} is missing")
        return default
    return int(_values(buf, order, tags[tag])[0])


@dataclass(frozen=True)
class _Layout:
    """What a parsed header says about where the pixels are; reused for files with the same tag table."""

    table: bytes
    checks: tuple[tuple[int, bytes], ...]
    dtype: np.dtype
    shape: tuple[int, int]
    offset: int
    end: int


_LAYOUTS: dict[bytes, _Layout] = {}


def _cached(buf: bytes) -> _Layout | None:
    """A known layout whose tag table and strip table equal this file's (same pixel placement)."""
    if len(buf) < 10 or buf[:4] != b"II*\0":
        return None
    ifd = int.from_bytes(buf[4:8], "little")
    count = int.from_bytes(buf[ifd : ifd + 2], "little")
    layout = _LAYOUTS.get(buf[ifd : ifd + 2 + 12 * count])
    if layout is None or len(buf) < layout.end:
        return None
    return layout if all(buf[at : at + len(data)] == data for at, data in layout.checks) else None


def read_tiff(buf: bytes, expect_shape: tuple[int, int] | None = None, expect_dtype: str | None = None) -> np.ndarray:
    """Decode a single-band uncompressed strip TIFF into a 2-D array in native byte order.

    Args:
        buf: the whole file's bytes.
        expect_shape, expect_dtype: when given, a mismatch raises :class:`TiffError`.

    Files whose tag table and strip table equal an earlier file's (every band file of one kind in
    BigEarthNet) skip the header walk.  The returned array owns its memory, so ``buf`` can be released.
    """
    layout = _cached(buf)
    if layout is None:
        return _read_full(buf, expect_shape, expect_dtype)
    if expect_shape is not None and layout.shape != tuple(expect_shape):
        raise TiffError(f"shape {layout.shape[0]}x{layout.shape[1]}, expected {expect_shape[0]}x{expect_shape[1]}")
    if expect_dtype is not None and layout.dtype.newbyteorder("=") != np.dtype(expect_dtype):
        raise TiffError(f"dtype {layout.dtype.name}, expected {expect_dtype}")
    count = layout.shape[0] * layout.shape[1]
    data = np.frombuffer(buf, dtype=layout.dtype, count=count, offset=layout.offset)
    return data.reshape(layout.shape).astype(layout.dtype.newbyteorder("="), copy=True)


def _read_full(buf: bytes, expect_shape: tuple[int, int] | None, expect_dtype: str | None) -> np.ndarray:
    order, tags = _tags(buf)
    width, height = _scalar(buf, order, tags, WIDTH), _scalar(buf, order, tags, HEIGHT)
    if _scalar(buf, order, tags, COMPRESSION, 1) != 1:
        raise TiffError("compressed TIFFs are not supported (BigEarthNet's are uncompressed)")
    if _scalar(buf, order, tags, SAMPLES, 1) != 1 or TILE_WIDTH in tags:
        raise TiffError("only single-band strip TIFFs are supported")
    bits = _scalar(buf, order, tags, BITS, 1)
    fmt = _SAMPLE_FORMATS.get((_scalar(buf, order, tags, SAMPLE_FORMAT, 1), bits))
    if fmt is None:
        raise TiffError(f"unsupported sample type ({bits} bits)")
    dtype = np.dtype(order + fmt)
    if expect_shape is not None and (height, width) != tuple(expect_shape):
        raise TiffError(f"shape {height}x{width}, expected {expect_shape[0]}x{expect_shape[1]}")
    if expect_dtype is not None and dtype.newbyteorder("=") != np.dtype(expect_dtype):
        raise TiffError(f"dtype {dtype.name}, expected {expect_dtype}")
    offsets = _values(buf, order, tags[STRIP_OFFSETS]) if STRIP_OFFSETS in tags else ()
    counts = _values(buf, order, tags[STRIP_COUNTS]) if STRIP_COUNTS in tags else ()
    need = width * height * dtype.itemsize
    if not offsets or len(offsets) != len(counts) or sum(counts) != need:
        raise TiffError(f"strip table does not describe {height}x{width} {dtype.name} pixels")
    if max(o + c for o, c in zip(offsets, counts, strict=True)) > len(buf):
        raise TiffError(f"pixel data runs past the end of the file ({len(buf)} bytes): the file is truncated")
    contiguous = all(offsets[i] + counts[i] == offsets[i + 1] for i in range(len(offsets) - 1))
    if contiguous and order == "<":
        _remember(buf, tags, dtype, (height, width), offsets[0], need)
    if contiguous:
        data = np.frombuffer(buf, dtype=dtype, count=width * height, offset=offsets[0])
    else:
        data = np.frombuffer(b"".join(buf[o : o + c] for o, c in zip(offsets, counts, strict=True)), dtype=dtype)
    return data.reshape(height, width).astype(dtype.newbyteorder("="), copy=True)


def _remember(buf: bytes, tags: dict, dtype: np.dtype, shape: tuple[int, int], offset: int, size: int) -> None:
    ifd = int.from_bytes(buf[4:8], "little")
    count = int.from_bytes(buf[ifd : ifd + 2], "little")
    checks = []
    for tag in (STRIP_OFFSETS, STRIP_COUNTS):  # the strip tables may lie outside the tag table
        typ, n, field = tags[tag]
        at = field if _TYPE_SIZES[typ] * n <= 4 else int.from_bytes(buf[field : field + 4], "little")
        checks.append((at, buf[at : at + _TYPE_SIZES[typ] * n]))
    table = buf[ifd : ifd + 2 + 12 * count]
    if len(_LAYOUTS) < 64:
        _LAYOUTS[table] = _Layout(table, tuple(checks), dtype, shape, offset, offset + size)


def read_geoinfo(buf: bytes) -> GeoInfo | None:
    """The GeoTIFF georeferencing of a file, or ``None`` when it has no tie point and pixel scale."""
    order, tags = _tags(buf)
    if PIXEL_SCALE not in tags or TIEPOINT not in tags:
        return None
    scale = _values(buf, order, tags[PIXEL_SCALE])
    tie = _values(buf, order, tags[TIEPOINT])
    epsg = None
    if GEOKEYS in tags:
        keys = _values(buf, order, tags[GEOKEYS])
        for k in range(4, len(keys) - 3, 4):
            key, location, _, value = keys[k : k + 4]
            if location == 0 and key in (_PROJECTED_CS_KEY, _GEOGRAPHIC_KEY):
                epsg = int(value)
                break
    return GeoInfo(
        ulx=tie[3] - tie[0] * scale[0], uly=tie[4] + tie[1] * scale[1], pixel_x=scale[0], pixel_y=scale[1], epsg=epsg
    )


def write_tiff(array: np.ndarray, geo: GeoInfo | None = None, rows_per_strip: int | None = None) -> bytes:
    """Encode a 2-D array as BigEarthNet does: little-endian, uncompressed, strips, GeoTIFF tags.

    Used by the synthetic archive generator; ``tifffile`` and GDAL read the result.
    """
    if array.ndim != 2:
        raise TiffError(f"write_tiff takes a 2-D array, got shape {array.shape}")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    height, width = data.shape
    kind = {"u": 1, "i": 2, "f": 3}[data.dtype.kind]
    rps = rows_per_strip or max(1, 8192 // (width * data.dtype.itemsize))
    n_strips = -(-height // rps)
    strip_bytes = [min(rps, height - s * rps) * width * data.dtype.itemsize for s in range(n_strips)]
    entries: list[tuple[int, int, list]] = [
        (WIDTH, 3, [width]), (HEIGHT, 3, [height]), (BITS, 3, [data.dtype.itemsize * 8]), (COMPRESSION, 3, [1]),
        (PHOTOMETRIC, 3, [1]), (STRIP_OFFSETS, 4, [0] * n_strips), (SAMPLES, 3, [1]), (ROWS_PER_STRIP, 3, [rps]),
        (STRIP_COUNTS, 4, strip_bytes), (PLANAR, 3, [1]), (SAMPLE_FORMAT, 3, [kind]),
    ]  # fmt: skip
    if geo is not None:
        entries += [
            (PIXEL_SCALE, 12, [geo.pixel_x, geo.pixel_y, 0.0]),
            (TIEPOINT, 12, [0.0, 0.0, 0.0, geo.ulx, geo.uly, 0.0]),
        ]
        if geo.epsg is not None:
            entries.append((GEOKEYS, 3, [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, _PROJECTED_CS_KEY, 0, 1, geo.epsg]))
    return _assemble(entries, data.tobytes(), strip_bytes)


def _assemble(entries: list[tuple[int, int, list]], pixels: bytes, strip_bytes: list[int]) -> bytes:
    ifd_size = 2 + 12 * len(entries) + 4
    extra = bytearray()
    extra_base = 8 + ifd_size
    fields = []
    for tag, typ, vals in entries:
        packed = struct.pack(f"<{len(vals)}{_TYPE_CODES[typ]}", *vals)
        if len(packed) <= 4:
            fields.append((tag, typ, len(vals), packed.ljust(4, b"\0")))
        else:
            fields.append((tag, typ, len(vals), struct.pack("<I", extra_base + len(extra))))
            extra += packed + (b"\0" if len(packed) % 2 else b"")
    data_start = extra_base + len(extra)
    offsets = [data_start + sum(strip_bytes[:i]) for i in range(len(strip_bytes))]
    out = bytearray(b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", len(entries)))
    for tag, typ, n, value in fields:
        if tag == STRIP_OFFSETS:
            packed = struct.pack(f"<{n}I", *offsets)
            value = packed if len(packed) <= 4 else value
            if len(packed) > 4:
                where = struct.unpack("<I", value)[0] - extra_base
                extra[where : where + len(packed)] = packed
        out += struct.pack("<HHI", tag, typ, n) + value
    out += struct.pack("<I", 0) + extra + pixels
    return bytes(out)
