"""Reading an archive straight from its download (``.tar``, ``.tar.gz``, ``.tar.zst``) without unpacking.

The unpacked v1 tree is about 98 GB in 7.7 million files; streaming the tarball avoids both.  Members are
read in archive order from one sequential decompressor that runs in a thread of its own (:class:`AheadReader`),
by a small tar reader (:func:`members`: ustar, GNU and pax headers) that passes over unwanted files without
copying them: builds from v1's ``.tar.gz`` run at 2.25x the rate they had with ``tarfile`` and inline inflation
(``bench/tarball.py``).  A patch is complete when all its band files have been seen (the archives group them by
folder).  ``.tar.zst`` needs the ``zstandard`` package; gzip is inflated by ISA-L when ``isal`` is installed (a
dependency), else by zlib.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import queue
import tarfile
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol, cast

from ..errors import ArchiveError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd")
MAX_OPEN_PATCHES = 256
"""Patches whose files may interleave in the stream before the archive is judged not grouped by folder."""


def is_zstd(path: Path) -> bool:
    """A ``.tar.zst`` download (reBEN's), named so: zstd is told by the suffix, the others by magic numbers."""
    return path.name.endswith((".tar.zst", ".tar.zstd"))


def is_tar(path: Path) -> bool:
    return path.is_file() and path.name.endswith(TAR_SUFFIXES)


READ_AHEAD = True
"""Read members with :func:`members` from a stream decompressed in a second thread (:class:`AheadReader`);
``False``: with ``tarfile``, decompressing inline (the way before, kept as ``bench/tarball.py``'s baseline)."""
AHEAD_BLOCKS, BLOCK_BYTES = 16, 1 << 20
"""How far the decompressing thread may run ahead of the tar reader: 16 blocks of about 1 MiB."""
RECORD = 512
"""A tar header, and the unit its members' data are padded to."""


class Source(Protocol):
    """What the decompressing thread reads from: a decompressing stream."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def inflate_module() -> Any:
    """ISA-L's zlib (``isal``; 2.2-2.3x zlib's inflate speed on this machine, ``bench/tarball.py``), else zlib."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:
        return zlib


class GzipChunks:
    """The uncompressed bytes of gzip members (one or several, zero padding allowed between and after), inflated
    ``BLOCK_BYTES`` of input at a time: one release of the GIL each, where ``gzip.GzipFile`` inflates 8 KiB per call
    (read in a second thread it made builds no faster here; our reading: it waited for the GIL between calls)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.module = raw, inflate_module()
        self.inflate, self.input, self.started = self.module.decompressobj(31), b"", False

    def read(self, size: int = -1, /) -> bytes:
        limit = size if size > 0 else 4 * BLOCK_BYTES
        while True:
            if not self.input:
                self.input = self.raw.read(BLOCK_BYTES)
                if not self.input:
                    if self.started and not self.inflate.eof:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    return b""
            if self.inflate.eof:  # a member ended: zero padding, or another member
                self.input = self.input.lstrip(b"\0")
                if not self.input:
                    continue
                self.inflate, self.started = self.module.decompressobj(31), False
            out = self.inflate.decompress(self.input, limit)
            self.started = True
            self.input = self.inflate.unused_data if self.inflate.eof else self.inflate.unconsumed_tail
            if out:
                return out

    def close(self) -> None:
        self.input = b""


MAGIC: dict[bytes, Callable[[IO[bytes]], Source]] = {
    b"\x1f\x8b": GzipChunks,
    b"BZh": lambda raw: bz2.BZ2File(raw),
    b"\xfd7zXZ\x00": lambda raw: lzma.LZMAFile(raw),  # noqa: SIM115
}


def decompressed(path: Path, raw: io.BufferedReader) -> Source:
    """The tarball's uncompressed bytes: zstd by suffix; gzip, bzip2 and xz by their magic numbers; else as is."""
    if is_zstd(path):
        try:
            import zstandard
        except ImportError:
            raise ArchiveError(f"{path} is zstd-compressed: pip install zstandard") from None
        return zstandard.ZstdDecompressor().stream_reader(raw, read_size=BLOCK_BYTES)
    magic = raw.peek(6)[:6]
    opener = next((o for prefix, o in MAGIC.items() if magic.startswith(prefix)), None)
    return opener(raw) if opener is not None else raw


class AheadReader:
    """The bytes of ``source``, read by a background thread up to ``AHEAD_BLOCKS`` blocks ahead of the reader.

    zlib (ISA-L), bz2, lzma and zstandard release the GIL while they decompress, so a tarball's decompression
    runs on a second core while this one parses members and decodes or writes them.  An error in the thread (a
    truncated or corrupt download) is raised by the next read as an ``OSError`` naming it.
    """

    def __init__(self, source: Source) -> None:
        self.blocks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=AHEAD_BLOCKS)
        self.stop = threading.Event()
        self.block, self.at, self.ended = memoryview(b""), 0, False
        self.thread = threading.Thread(target=self.fill, args=(source,), daemon=True, name="tar-decompress")
        self.thread.start()

    def fill(self, source: Source) -> None:
        item: bytes | BaseException
        while not self.stop.is_set():
            try:
                item = source.read(BLOCK_BYTES)
            except Exception as err:
                item = OSError(f"{type(err).__name__}: {err}")
            while not self.stop.is_set():
                try:
                    self.blocks.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def next_block(self) -> bool:
        """Move to the next block; ``False`` at the end of the stream."""
        if self.ended:
            return False
        item = self.blocks.get()
        if isinstance(item, BaseException):
            self.ended = True
            raise item
        self.block, self.at, self.ended = memoryview(item), 0, not item
        return bool(item)

    def read_exact(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer only at the end of the stream)."""
        if self.at + size <= len(self.block):  # most headers and many files: within one block
            self.at += size
            return bytes(self.block[self.at - size : self.at])
        parts = []
        while size and (self.at < len(self.block) or self.next_block()):
            take = min(size, len(self.block) - self.at)
            parts.append(self.block[self.at : self.at + take])
            self.at, size = self.at + take, size - take
        return b"".join(parts)

    def skip(self, size: int) -> int:
        """Pass over the next ``size`` bytes without copying them; returns how many there were."""
        skipped = 0
        while size and (self.at < len(self.block) or self.next_block()):
            take = min(size, len(self.block) - self.at)
            self.at, size, skipped = self.at + take, size - take, skipped + take
        return skipped

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class TarFormatError(Exception):
    """The stream is not a readable tar archive (truncated, or a damaged header)."""


def header_size(header: bytes) -> int:
    field = header[124:136]
    if field[0] & 0x80:  # GNU base-256, for members over 8 GiB
        return int.from_bytes(field[1:], "big")
    return int(field.strip(b" \0") or b"0", 8)


def check_sum(header: bytes) -> None:
    """The header's checksum: its bytes summed with the checksum field as 8 spaces, as unsigned bytes (POSIX) or
    as signed ones (some old tar programs)."""
    stored = int(header[148:156].strip(b" \0") or b"0", 8)
    rest = header[:148] + header[156:]
    unsigned = sum(rest) + 8 * 32
    if stored != unsigned and stored != unsigned - 256 * sum(b > 127 for b in rest):
        raise TarFormatError("a member header's checksum does not match")


def header_name(header: bytes) -> str:
    name = header[:100].split(b"\0", 1)[0]
    if header[257:263] == b"ustar\x00":  # POSIX ustar (and pax): a prefix of up to 155 bytes
        prefix = header[345:500].split(b"\0", 1)[0]
        name = prefix + b"/" + name if prefix else name
    return name.decode("utf-8", "surrogateescape")


def pax_records(data: bytes) -> dict[str, str]:
    """A pax extended header's ``length key=value\\n`` records."""
    out, at = {}, 0
    while at < len(data) and data[at] != 0:
        space = data.index(b" ", at)
        length = int(data[at:space])
        key, value = data[space + 1 : at + length - 1].split(b"=", 1)
        out[key.decode()] = value.decode("utf-8", "surrogateescape")
        at += length
    return out


def padded(size: int) -> int:
    return -(-size // RECORD) * RECORD


NO_DATA_TYPES = frozenset(b"123456")
"""Hard and symbolic links, devices, folders and FIFOs: no content of their own."""


def members(reader: AheadReader, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of the wanted regular files of an uncompressed tar stream (ustar, GNU and pax headers).

    The files not wanted are passed over without being copied; a name from a GNU long-name or a pax header
    applies to the next member, a pax ``size`` too.
    """
    extended: dict[str, str] = {}
    first = True
    while True:
        header = reader.read_exact(RECORD)
        if len(header) < RECORD or not header.strip(b"\0"):  # the end: zero records (or none)
            if header.strip(b"\0"):
                raise TarFormatError("the archive ends inside a member header")
            if first and not header:
                raise TarFormatError("empty file")
            return
        first = False
        check_sum(header)
        kind, size = header[156], header_size(header)
        if kind in b"LxKg":
            data = reader.read_exact(size)
            reader.skip(padded(size) - size)
            if kind == ord("L"):
                extended["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == ord("x"):
                extended.update(pax_records(data))
            continue
        name = extended.get("path") or header_name(header)
        size = int(extended.get("size", size))
        extended = {}
        if kind in NO_DATA_TYPES:
            if reader.skip(padded(size)) < padded(size):
                raise TarFormatError(f"the archive ends inside {name}")
            continue
        if kind not in b"07\0":
            raise ArchiveError(f"member {name} has tar type {chr(kind)!r} (sparse or unknown); unpack the archive "
                               "with tar and build from the folder")  # fmt: skip
        if want(name):
            data = reader.read_exact(size)
            rest = reader.skip(padded(size) - size)
            if len(data) < size or rest < padded(size) - size:
                raise TarFormatError(f"the archive ends inside {name}")
            yield name, data
        elif reader.skip(padded(size)) < padded(size):
            raise TarFormatError(f"the archive ends inside {name}")


class ReadPosition:
    """How far into its file a tarball has been read: the compressed bytes, slightly ahead of the members
    handed out (the decompressing thread reads up to ``AHEAD_BLOCKS`` blocks ahead); for progress bars and
    projections of what a pass will write."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size
        self.fd: int | None = None

    def fraction(self) -> float:
        """The share of the file read so far, 0-1 (0 before it is opened and after it is closed)."""
        if self.fd is None or self.size == 0:
            return 0.0
        return min(1.0, os.lseek(self.fd, 0, os.SEEK_CUR) / self.size)


@contextmanager
def opened(path: Path, position: ReadPosition | None) -> Iterator[io.BufferedReader]:
    """``path`` opened for reading, its position reported to ``position`` while open."""
    with path.open("rb") as raw:
        if position is not None:
            position.fd = raw.fileno()
        try:
            yield raw
        finally:
            if position is not None:
                position.fd = None


@contextmanager
def open_members(path: Path, position: ReadPosition | None = None) -> Iterator[AheadReader]:
    """The tarball's uncompressed stream, decompressed in a second thread; closed (thread stopped) on exit."""
    with opened(path, position) as raw:
        source = decompressed(path, raw)
        reader = AheadReader(source)
        try:
            yield reader
        finally:
            reader.close()
            source.close()


def tarfile_members(
    path: Path, want: Callable[[str], bool], position: ReadPosition | None = None
) -> Iterator[tuple[str, bytes]]:
    """As :func:`members`, through ``tarfile`` with inline decompression: the way before (``READ_AHEAD=False``)."""
    zstd = is_zstd(path)
    with (
        opened(path, position) as raw,
        tarfile.open(  # gzip, bzip2, xz or none detected by tarfile; zstd given
            fileobj=cast("IO[bytes]", decompressed(path, raw)) if zstd else raw, mode="r|" if zstd else "r|*"
        ) as tar,
    ):
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() and want(member.name) else None
            if handle is not None:
                yield member.name, handle.read()


def iter_members(
    path: Path, want: Callable[[str], bool], position: ReadPosition | None = None
) -> Generator[tuple[str, bytes], None, None]:
    """``(member name, bytes)`` of the wanted regular files, in archive order (``position``: how far read)."""
    try:
        if not READ_AHEAD:
            yield from tarfile_members(path, want, position)
            return
        with open_members(path, position) as reader:
            yield from members(reader, want)
    except (TarFormatError, tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise ArchiveError(
            f"{path} cannot be read to the end ({err}): the download is truncated or corrupt; download it again"
        ) from None


def iter_folders(
    path: Path, suffixes: tuple[str, ...], position: ReadPosition | None = None
) -> Generator[tuple[str, dict[str, bytes]], None, None]:
    """``(folder name, {suffix: bytes})`` for each folder once a file with every suffix was read; folders that
    lack some come last, sorted by name (their readers name what is missing)."""
    pending: dict[str, dict[str, bytes]] = {}
    for name, data in iter_members(path, lambda n: n.endswith(suffixes), position):
        folder = name.rstrip("/").split("/")[-2]
        suffix = next(s for s in suffixes if name.endswith(s))
        files = pending.setdefault(folder, {})
        files[suffix] = data
        if len(files) == len(suffixes):
            yield folder, pending.pop(folder)
        elif len(pending) > MAX_OPEN_PATCHES:
            raise ArchiveError(
                f"{path}: files of more than {MAX_OPEN_PATCHES} patches interleave; the archive is not "
                "grouped by patch folder; unpack it and build from the folder"
            )
    yield from sorted(pending.items())


def iter_patches(path: Path, bands: tuple[str, ...]) -> Generator[tuple[str, dict[str, bytes]], None, None]:
    """``(patch folder name, {band: tif bytes})`` for each patch once all ``bands`` were read."""
    suffixes = tuple(f"_{b}.tif" for b in bands)
    for folder, files in iter_folders(path, suffixes):
        yield folder, {suffix[1:-4]: data for suffix, data in files.items()}
