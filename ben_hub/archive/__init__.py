"""Raw archive readers: one module per layout behind one interface (:data:`LAYOUTS`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..bands import Band
from ..errors import ArchiveError, PatchError
from ..tiff import GeoInfo
from . import v1, v2
from .base import (
    ArchiveSpec,
    OnError,
    ScanOptions,
    ScanRecord,
    band_file,
    decode_band,
    decode_geo,
    find_s1,
    raise_error,
    read_file,
)
from .pack import read_staged
from .tar import is_tar, is_zstd

__all__ = ["LAYOUTS", "ArchiveSpec", "Layout", "ScanRecord", "locate_archive", "raise_error", "read_pixels"]


@dataclass(frozen=True)
class Layout:
    """One archive layout: how to find it under a root folder and how to scan its labels."""

    name: str
    locate: Callable[[Path, bool], ArchiveSpec | None]
    scan: Callable[[ArchiveSpec, OnError], Iterator[ScanRecord]]
    """Scan records one patch at a time (what ``verify --archive`` compares)."""
    index: Callable[[ArchiveSpec, OnError, ScanOptions], pa.Table]
    """The scan as the label index (:data:`~ben_hub.archive.base.INDEX_COLUMNS`, what a build and a split plan
    from): v1's JSONs read by several processes when asked, v2's metadata computed a column at a time."""
    join_s1: Callable[[pa.Table, ArchiveSpec, OnError, ScanOptions], pa.Table] | None = None
    """v1: the S1 twins, joined to the scanned index once S1 is readable (v2's metadata names them itself)."""


LAYOUTS: dict[str, Layout] = {
    "v1": Layout("v1", v1.locate, v1.scan, v1.index, v1.join_s1),
    "v2": Layout("v2", v2.locate, v2.scan, v2.index),
}


def locate_tar(path: Path, layout: str | None, metadata: Path | None, s1_dir: Path | None) -> ArchiveSpec:
    """A spec for a downloaded tarball: ``.tar.zst`` is reBEN (``metadata``, else the published one), other tars v1.

    Without ``s1_dir``, S1 is the published S1 download beside the tarball, unpacked or not, if there.
    """
    layout = layout or ("v2" if is_zstd(path) else "v1")
    if layout == "v2":
        extra = metadata.with_name(v2.EXTRA_NAME) if metadata is not None else None
        extra_path = extra if extra is not None and extra.is_file() else None
        s1 = s1_dir or find_s1(path.parent, (v2.S1_FOLDER,), v2.S1_TARBALLS)
        return ArchiveSpec("v2", s2=path, s1=s1, metadata=metadata, metadata_extra=extra_path)
    return ArchiveSpec("v1", s2=path, s1=s1_dir or find_s1(path.parent, v1.S1_FOLDERS, v1.S1_TARBALLS))


def locate_archive(
    root: Path,
    with_s1: bool = True,
    layout: str | None = None,
    metadata: Path | None = None,
    s1_dir: Path | None = None,
) -> ArchiveSpec:
    """Detect the layout of an archive: an unpacked folder, or a downloaded tarball (S2 part).

    ``s1_dir`` names the Sentinel-1 part when it is not beside the S2 folder: an unpacked folder, or the S1
    tarball, which a build stages once before reading it (:mod:`ben_hub.archive.pack`).

    Raises:
        ArchiveError: when no known layout is found, naming what was looked for.
    """
    if s1_dir is not None and with_s1 and not (s1_dir.is_dir() or is_tar(s1_dir)):
        raise ArchiveError(f"{s1_dir} is neither a folder nor a tarball (.tar, .tar.gz, .tar.zst); pass the unpacked "
                           "S1 folder or the S1 download")  # fmt: skip
    refuse_s1_part(root)
    if is_tar(root):
        spec = locate_tar(root, layout, metadata, s1_dir)
        return spec if with_s1 else replace(spec, s1=None)
    spec = locate_folder(root, with_s1, layout)
    return replace(spec, s1=s1_dir) if s1_dir is not None and with_s1 else spec


def lists_beside(archive: Path, spec: ArchiveSpec) -> Path | None:
    """The official lists' folder that an archive carries: ``splits/`` in the folder given, else beside its S2
    part (the folder holding an S2 folder or tarball); ``None`` when there is none (the public lists are used)."""
    for folder in (archive / "splits", spec.s2.parent / "splits"):
        if folder.is_dir():
            return folder
    return None


S1_PARTS = {name: "v1" for name in (*v1.S1_FOLDERS, *v1.S1_TARBALLS)} | {
    name: "v2" for name in (v2.S1_FOLDER, *v2.S1_TARBALLS)
}
"""The published Sentinel-1 parts' names (folders and downloads), by layout."""


def refuse_s1_part(root: Path) -> None:
    """Raise :class:`ArchiveError` when ``root`` is a Sentinel-1 part, given where the S2 part (or the folder
    holding both) belongs: its JSON files have no S2 labels, and reading them as such fails patch by patch."""
    layout = S1_PARTS.get(root.name)
    if layout is None:
        return
    s2 = (
        "BigEarthNet-v1.0, or BigEarthNet-v1.0.tar.gz"
        if layout == "v1"
        else "BigEarthNet-S2, or BigEarthNet-S2.tar.zst"
    )
    raise ArchiveError(
        f"{root} is the Sentinel-1 part of BigEarthNet: pass the S2 part ({s2}) or the folder that holds both; "
        "S1 is found beside it, or give this one with --s1-dir"
    )


S2_PARTS = (*v1.S2_FOLDERS, v2.S2_FOLDER)
"""The published Sentinel-2 parts' folder names: given one of them, the folder that holds it is the archive."""


def locate_folder(root: Path, with_s1: bool, layout: str | None) -> ArchiveSpec:
    """The spec of an unpacked archive folder, by the first layout that recognises it; the S2 part itself
    (``BigEarthNet-v1.0``, ``BigEarthNet-S2``, ...) stands for the folder that holds it, S1 and metadata beside it."""
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a folder; pass the folder that holds the unpacked archive")
    for name, candidate in LAYOUTS.items():
        if layout not in (None, name):
            continue
        spec = candidate.locate(root, with_s1)
        if spec is not None:
            return spec
    if root.name in S2_PARTS and root.parent != root:
        spec = locate_folder(root.parent, with_s1, layout)
        if spec.s2 == root:
            return spec
    raise ArchiveError(
        f"no BigEarthNet archive found in {root}: expected a v1 folder ({', '.join(v1.S2_FOLDERS)}) or a "
        "v2 folder (BigEarthNet-S2/, metadata.parquet beside it or downloaded); or pass the downloaded tarball"
    )


def read_pixels(
    spec: ArchiveSpec,
    patch_id: str,
    s2_dir: str,
    s1_dir: str | None,
    bands: tuple[Band, ...],
    s2_files: dict[str, bytes] | None = None,
) -> tuple[dict[str, np.ndarray], GeoInfo]:
    """Every requested band of one patch plus its georeferencing (from B02).

    Files are read from the unpacked folders, except S2 bands given in ``s2_files`` (read from a tarball) and
    S1 bands of a staged S1 tarball.
    """
    arrays: dict[str, np.ndarray] = {}
    geo: GeoInfo | None = None
    for band in bands:
        root, directory = (spec.s2, s2_dir) if band.sensor == "s2" else (spec.s1, s1_dir)
        if root is None or directory is None:
            raise ArchiveError(f"band {band.name} was asked for but the archive has no {band.sensor.upper()} part")
        relpath = band_file(directory, directory.rsplit("/", 1)[-1], band.name)
        if s2_files is not None and band.sensor == "s2":
            if band.name not in s2_files:
                message = (
                    "band file is missing from the tarball; re-download the archive or skip the patch (--skip-bad)"
                )
                raise PatchError(patch_id, "missing_band", message, f"{root}:{relpath}")
            data = s2_files[band.name]
        elif band.sensor == "s1" and spec.s1_pack is not None:
            data = read_staged(root, spec.s1_pack, relpath, patch_id)
        else:
            data = read_file(root, relpath, patch_id, "missing_band")
        origin = f"{root}:{relpath}" if is_tar(root) else f"{root}/{relpath}"  # a tarball's member, or a file
        arrays[band.name] = decode_band(patch_id, band, data, origin)
        if band.name == "B02":
            geo = decode_geo(patch_id, data, origin)
    assert geo is not None, "B02 is always among the stored bands"
    return arrays, geo
