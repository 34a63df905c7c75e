"""Sentinel-1 from its own download: the S1 tarball staged once into one pack file, then read by offset.

S2 and S1 are separate downloads (v1: ``BigEarthNet-S1-v1.0.tar.gz``, 590,326 patches; reBEN:
``BigEarthNet-S1.tar.zst``), each in its own member order, so one forward pass cannot join them. A build therefore
reads the S1 tarball through once, beside its label scan (in a thread, :class:`ben_hub.build.S1Staging`) and before
its first shard, and appends each S1 patch folder's files (``VV``, ``VH`` and, v1, the JSON naming the S2 twin) to
``<out>/.ben-hub/s1/s1.pack``: one file instead of 1.8 million, the TIFF bytes as they were (decoded and checked
exactly as from a folder, so a build gives the same bytes either way), each folder's record found through an index
sorted by a 64-bit hash of its name (24 bytes per patch in memory, about 14 MB for v1) and read with one
``os.pread``. The pack is about as large as the unpacked S1 files (2 x 57.6 KB per patch, about 68 GB for v1) and is
deleted once the repository is finished. A staging cut short is started again from the top; a finished one
(``s1.complete.json``, naming the tarball by name and size) is reused by reruns and by the other jobs of a cluster
build, which wait for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ArchiveError, PatchError
from .base import OnError
from .tar import ReadPosition, iter_folders

PACK, INDEX, TWINS, COMPLETE = "s1.pack", "s1.index.npy", "s1.twins.parquet", "s1.complete.json"
BAND_SUFFIXES = ("_VV.tif", "_VH.tif")
JSON_SUFFIX = "_labels_metadata.json"
INDEX_DTYPE = np.dtype([("hash", "<u8"), ("offset", "<u8"), ("length", "<u8")])
HEADER_BYTES = 4
"""Each record: the header's length (uint32, little-endian), the header (JSON: folder and file lengths),
then the files' bytes in the header's order."""


def name_hash(folder: str) -> int:
    """A 64-bit hash of a patch folder's name (blake2b): the index's sort key."""
    return int.from_bytes(hashlib.blake2b(folder.encode(), digest_size=8).digest(), "little")


def suffixes_for(layout: str) -> tuple[str, ...]:
    """The S1 files a layout's build reads: the two bands, and v1's JSON (which names the S2 twin)."""
    return BAND_SUFFIXES + ((JSON_SUFFIX,) if layout == "v1" else ())


def tarball_identity(tarball: Path) -> dict[str, Any]:
    return {"tarball": tarball.name, "bytes": tarball.stat().st_size}


def is_complete(dest: Path, tarball: Path) -> bool:
    marker = dest / COMPLETE
    return marker.is_file() and json.loads(marker.read_text()).get("source") == tarball_identity(tarball)


@contextmanager
def locked(path: Path, waiting: Callable[[], Any] = lambda: None, every_s: float = 0.2) -> Iterator[None]:
    """An exclusive lock on ``path`` (``flock``): one job stages, the others wait, then find it done.  While it
    waits, ``waiting`` is called every ``every_s`` seconds (an error it raises gives up the wait)."""
    import fcntl

    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waiting()
                time.sleep(every_s)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_bytes(folder: str, files: dict[str, bytes]) -> bytes:
    header = json.dumps({"folder": folder, "files": [[name, len(data)] for name, data in files.items()]}).encode()
    return b"".join([len(header).to_bytes(HEADER_BYTES, "little"), header, *files.values()])


def twin_of(folder: str, raw: bytes | None, origin: str) -> tuple[str | None, str | None, str | None]:
    """v1: ``(S2 twin, None, None)`` from an S1 JSON's ``corresponding_s2_patch``, else ``(None, reason,
    message)`` saying why there is none."""
    from .v1 import parse_json

    if raw is None:
        return (
            None,
            "missing_json",
            "file is missing from the S1 tarball; re-download it or skip the patch (--skip-bad)",
        )
    try:
        twin = parse_json(folder, raw, origin).get("corresponding_s2_patch")
    except PatchError as err:
        return None, err.reason, err.message
    return (twin, None, None) if isinstance(twin, str) else (None, "bad_json", "no corresponding_s2_patch")


Progress = Callable[[float, int], Any]
"""Called after each staged patch with the share of the tarball read (0-1) and the pack's bytes so far, and with
``(0.0, 0)`` every 0.2 s while another job holds the staging; an error it raises stops the staging."""


def write_pack(
    tarball: Path, dest: Path, layout: str, progress: Progress
) -> tuple[np.ndarray, dict[str, list[str | None]]]:
    """Append every S1 folder of ``tarball`` to the pack; its index entries and (v1) twins, in archive order."""
    entries: list[tuple[int, int, int]] = []
    with_bands = 0
    twins: dict[str, list[str | None]] = {"s1": [], "s2": [], "reason": [], "problem": []}
    offset = 0
    position = ReadPosition(tarball)
    with (dest / PACK).open("wb") as pack:
        for folder, files in iter_folders(tarball, suffixes_for(layout), position):
            if layout == "v1":
                raw = files.pop(JSON_SUFFIX, None)
                found = (folder, *twin_of(folder, raw, f"{tarball}:{folder}/{folder}{JSON_SUFFIX}"))
                for key, value in zip(twins, found, strict=True):
                    twins[key].append(value)
            with_bands += bool(files)
            data = record_bytes(folder, {folder + suffix: body for suffix, body in files.items()})
            pack.write(data)
            entries.append((name_hash(folder), offset, len(data)))
            offset += len(data)
            progress(position.fraction(), offset)
        pack.flush()
        os.fsync(pack.fileno())
    if not with_bands:
        raise ArchiveError(
            f"{tarball} holds no Sentinel-1 band file (*_VV.tif, *_VH.tif); pass the S1 download "
            "(BigEarthNet-S1-v1.0.tar.gz, BigEarthNet-S1.tar.zst) or its unpacked folder"
        )
    index = np.array(entries, INDEX_DTYPE)
    return index[np.argsort(index["hash"], kind="stable")], twins


def stage(tarball: Path, dest: Path, layout: str, progress: Progress = lambda done, written: None) -> Path:
    """Stage the S1 ``tarball`` into ``dest`` (or reuse a complete staging of it); returns ``dest``.

    Raises:
        ArchiveError: when the tarball is truncated or corrupt, or holds no S1 band file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with locked(dest / "lock", lambda: progress(0.0, 0)):  # another job stages it: wait, still able to stop
        if is_complete(dest, tarball):
            return dest
        close_pack(dest)
        for stale in (COMPLETE, INDEX, TWINS, PACK):
            (dest / stale).unlink(missing_ok=True)
        try:
            index, twins = write_pack(tarball, dest, layout, progress)
        except BaseException:
            (dest / PACK).unlink(missing_ok=True)  # a cut-short staging restarts from the top: give its space back
            raise
        np.save(dest / INDEX, index)
        if layout == "v1":
            pq.write_table(pa.table(twins, schema=pa.schema({k: pa.string() for k in twins})), dest / TWINS)
        for path in (dest / INDEX, dest / TWINS):  # on disk before the marker (the pack was synced as it closed)
            if path.exists():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        marker = dest / (COMPLETE + ".tmp")
        marker.write_text(json.dumps({"source": tarball_identity(tarball), "patches": len(index)}))
        os.replace(marker, dest / COMPLETE)  # last: only a finished staging has it
    return dest


def release(dest: Path) -> None:
    """Delete a staging (once the repository it fed is finished)."""
    close_pack(dest)
    shutil.rmtree(dest, ignore_errors=True)


@dataclass
class Pack:
    """A staged S1 tarball, opened for reading (one per process, :func:`open_pack`)."""

    folder: Path
    index: np.ndarray
    fd: int
    last: tuple[str, dict[str, bytes]] | None = None

    def files(self, name: str) -> dict[str, bytes] | None:
        """The files of the S1 patch folder ``name`` (``{file name: bytes}``), or ``None`` if not staged."""
        if self.last is not None and self.last[0] == name:
            return self.last[1]
        key = np.uint64(name_hash(name))
        at = int(np.searchsorted(self.index["hash"], key))
        while at < len(self.index) and self.index["hash"][at] == key:  # equal hashes: the header decides
            _, offset, length = self.index[at].tolist()
            found = parse_record(os.pread(self.fd, length, offset))
            if found[0] == name:
                self.last = found
                return found[1]
            at += 1
        return None

    def twins(self, origin: Path, on_error: OnError) -> pa.Table:
        """v1: the ``(s2, s1)`` pair of each S1 JSON that names its S2 twin, in staging order
        (:data:`ben_hub.archive.v1.TWINS`); the others go to ``on_error``."""
        table = pq.read_table(self.folder / TWINS)
        problems = pc.is_valid(table.column("problem"))
        for row in table.filter(problems).to_pylist():
            json_path = f"{origin}:{row['s1']}/{row['s1']}{JSON_SUFFIX}"
            on_error(PatchError(row["s1"], row["reason"], row["problem"], json_path))
        return table.filter(pc.invert(problems)).select(["s2", "s1"])


def parse_record(data: bytes) -> tuple[str, dict[str, bytes]]:
    size = int.from_bytes(data[:HEADER_BYTES], "little")
    header = json.loads(data[HEADER_BYTES : HEADER_BYTES + size])
    files, at = {}, HEADER_BYTES + size
    for name, length in header["files"]:
        files[name] = data[at : at + length]
        at += length
    return header["folder"], files


OPEN: dict[Path, Pack] = {}
"""This process's open packs: each worker process opens its own."""


def open_pack(folder: Path) -> Pack:
    """The staged pack in ``folder``, opened once per process."""
    if folder not in OPEN:
        if not (folder / COMPLETE).is_file():
            raise ArchiveError(f"{folder} holds no finished S1 staging; run the build again to stage the S1 tarball")
        OPEN[folder] = Pack(folder, np.load(folder / INDEX), os.open(folder / PACK, os.O_RDONLY))
    return OPEN[folder]


def close_pack(folder: Path) -> None:
    """Forget this process's open pack in ``folder`` (before it is staged again or deleted)."""
    opened = OPEN.pop(folder, None)
    if opened is not None:
        os.close(opened.fd)


def read_staged(spec_s1: Path, folder: Path, relpath: str, patch_id: str) -> bytes:
    """A file of the staged S1 tarball by its path in the archive, or a :class:`PatchError` naming it."""
    directory, file_name = relpath.rsplit("/", 1)
    files = open_pack(folder).files(directory.rsplit("/", 1)[-1])
    if files is None or file_name not in files:
        raise PatchError(
            patch_id,
            "missing_band",
            "file is missing from the S1 tarball; re-download it, build without --s1, or skip the patch (--skip-bad)",
            f"{spec_s1}:{relpath}",
        )
    return files[file_name]
