"""Raw archive readers: one module per layout behind one interface (:data:`LAYOUTS`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bands import Band
from ..errors import ArchiveError
from ..tiff import GeoInfo
from . import v1, v2
from .base import ArchiveSpec, OnError, ScanRecord, band_file, decode_band, decode_geo, raise_error, read_file

__all__ = ["LAYOUTS", "ArchiveSpec", "Layout", "ScanRecord", "locate_archive", "raise_error", "read_pixels"]


@dataclass(frozen=True)
class Layout:
    """One archive layout: how to find it under a root folder and how to scan its labels."""

    name: str
    locate: Callable[[Path, bool], ArchiveSpec | None]
    scan: Callable[[ArchiveSpec, OnError], Iterator[ScanRecord]]


LAYOUTS: dict[str, Layout] = {
    "v1": Layout("v1", v1.locate, v1.scan),
    "v2": Layout("v2", v2.locate, v2.scan),
}


def locate_archive(root: Path, with_s1: bool = True, layout: str | None = None) -> ArchiveSpec:
    """Detect the layout of an unpacked archive under ``root``.

    Raises:
        ArchiveError: when no known layout is found, naming what was looked for.
    """
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a folder; pass the folder that holds the unpacked archive")
    for name, candidate in LAYOUTS.items():
        if layout not in (None, name):
            continue
        spec = candidate.locate(root, with_s1)
        if spec is not None:
            return spec
    raise ArchiveError(
        f"no BigEarthNet archive found in {root}: expected a v1 folder ({', '.join(v1.S2_FOLDERS)}) or a "
        "v2 layout (metadata.parquet beside BigEarthNet-S2/); or name the parts with --s2/--s1/--metadata"
    )


def read_pixels(
    spec: ArchiveSpec, patch_id: str, s2_dir: str, s1_dir: str | None, bands: tuple[Band, ...]
) -> tuple[dict[str, np.ndarray], GeoInfo]:
    """Every requested band of one patch from an unpacked archive, plus its georeferencing (from B02)."""
    arrays: dict[str, np.ndarray] = {}
    geo: GeoInfo | None = None
    for band in bands:
        root, directory = (spec.s2, s2_dir) if band.sensor == "s2" else (spec.s1, s1_dir)
        if root is None or directory is None:
            raise ArchiveError(f"band {band.name} was asked for but the archive has no {band.sensor.upper()} part")
        relpath = band_file(directory, directory.rsplit("/", 1)[-1], band.name)
        data = read_file(root, relpath, patch_id, "missing_band")
        arrays[band.name] = decode_band(patch_id, band, data, f"{root}/{relpath}")
        if band.name == "B02":
            geo = decode_geo(patch_id, data, f"{root}/{relpath}")
    assert geo is not None, "B02 is always among the stored bands"
    return arrays, geo
