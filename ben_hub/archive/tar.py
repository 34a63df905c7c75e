"""Reading an archive straight from its download (``.tar``, ``.tar.gz``, ``.tar.zst``) without unpacking.

The unpacked v1 tree is about 98 GB in 7.7 million files; streaming the tarball avoids both.  Members are
read in archive order through one sequential decompressor; a patch is complete when all its band files have
been seen (the archives group them by folder).  ``.tar.zst`` needs the ``zstandard`` package.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import ArchiveError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd")
MAX_OPEN_PATCHES = 256
"""Patches whose files may interleave in the stream before the archive is judged not grouped by folder."""


def is_tar(path: Path) -> bool:
    return path.is_file() and path.name.endswith(TAR_SUFFIXES)


@contextmanager
def open_stream(path: Path) -> Iterator[tarfile.TarFile]:
    """A streaming (forward-only) view of the tarball, whatever its compression."""
    with path.open("rb") as raw:
        if not path.name.endswith((".tar.zst", ".tar.zstd")):
            with tarfile.open(fileobj=raw, mode="r|*") as tar:  # gzip, bzip2, xz or none, detected
                yield tar
            return
        try:
            import zstandard
        except ImportError:
            raise ArchiveError(f"{path} is zstd-compressed: pip install zstandard") from None
        source: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw, read_size=1 << 20)
        with tarfile.open(fileobj=source, mode="r|") as tar:
            yield tar


def iter_members(path: Path, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of the wanted regular files, in archive order."""
    try:
        with open_stream(path) as tar:
            for member in tar:
                if member.isfile() and want(member.name):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        yield member.name, handle.read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ArchiveError(
            f"{path} cannot be read to the end ({err}): the download is truncated or corrupt; download it again"
        ) from None


def iter_patches(path: Path, bands: tuple[str, ...]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(patch folder name, {band: tif bytes})`` for each patch once all ``bands`` were read."""
    suffixes = tuple(f"_{b}.tif" for b in bands)
    pending: dict[str, dict[str, bytes]] = {}
    for name, data in iter_members(path, lambda n: n.endswith(suffixes)):
        folder = name.rstrip("/").split("/")[-2]
        band = name[name.rindex("_") + 1 : -4]
        files = pending.setdefault(folder, {})
        files[band] = data
        if len(files) == len(bands):
            yield folder, pending.pop(folder)
        elif len(pending) > MAX_OPEN_PATCHES:
            raise ArchiveError(
                f"{path}: files of more than {MAX_OPEN_PATCHES} patches interleave; the archive is not "
                "grouped by patch folder; unpack it and build from the folder"
            )
    yield from sorted(pending.items())  # incomplete patches: the reader names the missing bands
