"""Synthetic BigEarthNet archives (v1 and v2 layouts) for demos, tests and benchmarks.

Labels follow BigEarthNet v1.0's imbalance: each patch takes ``1 + Poisson(1.97)`` labels (mean about
2.97, as in the archive) drawn without replacement with weights from :data:`V1_COUNTS_43` (approximate
per-class patch counts of v1.0 over 590,326 patches, Sumbul et al. 2019), boosted 4x inside the patch's
dominant CLC group (urban, agricultural, forest and semi-natural, wetland, water), so labels co-occur as
they do on the ground.  Pixels depend on the labels, so a model can learn: the patch is cut into Voronoi
regions, one per label, each filled with that label's fixed 12-band signature plus noise; 20 m and 60 m
bands are 2x2 and 6x6 block means of the 10 m grid.  Files are written exactly as the real archive lays
them out (uncompressed strip GeoTIFFs with GeoTIFF tags, JSON or metadata parquet, CRLF split lists).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..bands import S1_BANDS, S2_BANDS
from ..errors import ArchiveError
from ..labels import CLC_CODES_43, LABELS_19, LABELS_43, to_19
from ..space import reported_full_disk
from ..tiff import GeoInfo, write_tiff

V1_COUNTS_43: tuple[int, ...] = (
    10784, 69872, 13589, 3384, 509, 979, 4618, 959, 1174, 1786, 5353, 196695, 13589, 3793, 9567, 4754, 12538,
    103554, 7022, 107786, 147095, 30674, 150944, 211703, 217119, 12835, 5890, 11241, 173506, 1536, 3277,
    1563, 328, 6236, 23207, 1562, 424, 1003, 10572, 83811, 1498, 1086, 81612,
)  # fmt: skip
_GROUP = np.array([c // 100 for c in CLC_CODES_43])  # 1 urban, 2 agricultural, 3 forest, 4 wetland, 5 water
_WKT = (
    'PROJCS["WGS 84 / UTM zone {z}N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["central_meridian",{m}],PARAMETER["scale_factor",0.9996],'
    'PARAMETER["false_easting",500000],UNIT["metre",1],AUTHORITY["EPSG","326{z:02d}"]]'
)
# (sensor, product time, UTM zone, tile, country); one v1 name keeps the archive's short-hour quirk.
_PRODUCTS = (
    ("S2A", "20170613T101031", 33, "UUP", "Austria"), ("S2A", "20170617T113321", 29, "UPU", "Ireland"),
    ("S2B", "20170924T93020", 35, "VPK", "Finland"), ("S2A", "20171221T112501", 29, "SND", "Portugal"),
    ("S2B", "20180204T94161", 35, "VPK", "Finland"), ("S2A", "20180525T94031", 34, "TDQ", "Serbia"),
    ("S2B", "20170814T100029", 32, "ULA", "Belgium"), ("S2A", "20180313T094031", 35, "ULA", "Lithuania"),
)  # fmt: skip
_ORIGINS = {
    (33, "UUP"): (300000.0, 5400000.0), (29, "UPU"): (600000.0, 5900040.0), (35, "VPK"): (600000.0, 7000020.0),
    (29, "SND"): (499980.0, 4400040.0), (34, "TDQ"): (399960.0, 5000040.0), (32, "ULA"): (300000.0, 5600040.0),
    (35, "ULA"): (300000.0, 6100020.0),
}  # fmt: skip
"""Each tile's upper-left corner (UTM metres): the real example patches' tiles as their GeoTIFFs give them
(``bench/name_grids.py``), the others at their MGRS square's corner; a tile's dates share its grid, as real ones do."""


def synth_labels(n: int, rng: np.random.Generator) -> list[list[int]]:
    """43-class label ids of ``n`` patches with BigEarthNet-like imbalance and co-occurrence."""
    weights = np.asarray(V1_COUNTS_43, dtype=np.float64)
    group_mass = np.array([weights[g == _GROUP].sum() for g in range(1, 6)])
    dominant = rng.choice(5, size=n, p=group_mass / group_mass.sum()) + 1
    sizes = np.minimum(1 + rng.poisson(1.97, size=n), 8)
    out = []
    for group, size in zip(dominant, sizes, strict=True):
        w = weights * np.where(group == _GROUP, 4.0, 1.0)
        out.append(sorted(int(i) for i in rng.choice(43, size=size, replace=False, p=w / w.sum())))
    return out


def signatures(seed: int = 1234) -> np.ndarray:
    """Fixed ``(43, 12)`` reflectance signatures (x 10,000), one per class, the same for every archive."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(300, 3500, size=(43, 1))
    return np.clip(base * rng.uniform(0.4, 1.6, size=(43, 12)), 50, 9000)


def synth_pixels(labels: list[int], rng: np.random.Generator, sig: np.ndarray) -> dict[str, np.ndarray]:
    """S2 (uint16) and S1 (float32) arrays for one patch whose regions show ``labels``."""
    centres = rng.uniform(0, 120, size=(len(labels), 2))
    yy, xx = np.mgrid[0:120, 0:120]
    owner = np.argmin((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2, axis=-1)
    label_map = np.asarray(labels)[owner]
    out: dict[str, np.ndarray] = {}
    for b, band in enumerate(S2_BANDS):
        full = sig[label_map, b] + rng.normal(0, 40, size=(120, 120))
        k = 120 // band.size
        grid = full.reshape(band.size, k, band.size, k).mean(axis=(1, 3))
        out[band.name] = np.clip(np.rint(grid), 0, 65535).astype(np.uint16)
    radar = sig[label_map, 7] / 400.0
    out["VV"] = (-14.0 + radar + rng.normal(0, 1.0, (120, 120))).astype(np.float32)
    out["VH"] = (-20.0 + 0.8 * radar + rng.normal(0, 1.0, (120, 120))).astype(np.float32)
    return out


@dataclass(frozen=True)
class SynthPatch:
    """Identity and placement of one synthetic patch."""

    name: str
    s1_name: str
    product: tuple[str, str, int, str, str]
    x: int
    y: int
    labels: list[int]

    @property
    def when(self) -> datetime:
        day, clock = self.product[1].split("T")
        try:
            return datetime.strptime(day + clock.rjust(6, "0"), "%Y%m%d%H%M%S")
        except ValueError:  # like the archive, some names do not hold a valid time (T94161)
            return datetime.strptime(day, "%Y%m%d") + timedelta(hours=9, minutes=41)

    @property
    def geo(self) -> GeoInfo:
        ulx, uly = _ORIGINS[(self.product[2], self.product[3])]
        return GeoInfo(ulx + 1200 * self.x, uly - 1200 * self.y, 10.0, 10.0, 32600 + self.product[2])


def synth_patches(n: int, seed: int, v2: bool) -> list[SynthPatch]:
    rng = np.random.default_rng(seed)
    labels = synth_labels(n, rng)
    patches = []
    for i in range(n):
        product = _PRODUCTS[i % len(_PRODUCTS)]
        x, y = (i // len(_PRODUCTS)) % 100, (i // len(_PRODUCTS)) // 100
        sensor, when, zone, tile, _ = product
        s1_when = (datetime.strptime(when[:8], "%Y%m%d") + timedelta(hours=17)).strftime("%Y%m%dT%H%M%S")
        s1 = f"S1A_IW_GRDH_1SDV_{s1_when}_{zone}{tile}_{x}_{y}"
        patch = SynthPatch(f"{sensor}_MSIL2A_{when}_{x}_{y}", s1, product, x, y, labels[i])
        if v2:  # reBEN names carry a valid, zero-padded time and the processing baseline, orbit and tile
            stamp = patch.when.strftime("%Y%m%dT%H%M%S")
            patch = replace(patch, name=f"{sensor}_MSIL2A_{stamp}_N9999_R022_T{zone}{tile}_{x:02d}_{y:02d}")
        patches.append(patch)
    return patches


def _write_bands(folder: Path, name: str, arrays: dict[str, np.ndarray], bands: tuple, geo: GeoInfo) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for band in bands:
        pixel = 1200 / band.size
        band_geo = GeoInfo(geo.ulx, geo.uly, pixel, pixel, geo.epsg)
        (folder / f"{name}_{band.name}.tif").write_bytes(write_tiff(arrays[band.name], band_geo))


def _v1_json(p: SynthPatch, s1: bool) -> dict:
    zone = p.product[2]
    doc = {
        "labels": [LABELS_43[i] for i in p.labels],
        "coordinates": {
            "ulx": int(p.geo.ulx),
            "uly": int(p.geo.uly),
            "lrx": int(p.geo.ulx) + 1200,
            ("lly" if s1 else "lry"): int(p.geo.uly) - 1200,
        },
        "projection": _WKT.format(z=zone, m=6 * zone - 183),
    }
    if s1:
        doc.update(
            corresponding_s2_patch=p.name,
            scene_source=p.s1_name.rsplit("_", 3)[0],
            acquisition_time=(p.when + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S"),
        )
    else:
        doc.update(
            tile_source=f"{p.product[0]}_MSIL1C_{p.product[1]}_N0205_R022_T{zone}{p.product[3]}.SAFE",
            acquisition_date=p.when.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return doc


def _official_v1(
    patches: list[SynthPatch], rng: np.random.Generator
) -> tuple[dict[str, list[str]], set[str], set[str]]:
    """Random official split (52/24/24) of the patches that are not snowy, cloudy or without a 19-class label."""
    flag = rng.random(len(patches))
    snow = {p.name for p, f in zip(patches, flag, strict=True) if f < 0.08}
    cloud = {p.name for p, f in zip(patches, flag, strict=True) if 0.08 <= f < 0.10}
    pool = [p.name for p in patches if p.name not in snow | cloud and to_19(p.labels)]
    draw = rng.random(len(pool))
    lists = {
        "train": [n for n, d in zip(pool, draw, strict=True) if d < 0.52],
        "val": [n for n, d in zip(pool, draw, strict=True) if 0.52 <= d < 0.76],
        "test": [n for n, d in zip(pool, draw, strict=True) if d >= 0.76],
    }
    return lists, snow, cloud


def _write_list(path: Path, names: list[str] | set[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{n}\r\n" for n in sorted(names)).encode())


def write_v1(
    out: Path, patches: list[SynthPatch], rng: np.random.Generator, with_s1: bool, progress: Callable[[], None]
) -> None:
    """``BigEarthNet-v1.0/``, ``BigEarthNet-S1-v1.0/`` and ``splits/`` like the published archive."""
    sig = signatures()
    for p in patches:
        arrays = synth_pixels(p.labels, rng, sig)
        _write_bands(out / "BigEarthNet-v1.0" / p.name, p.name, arrays, S2_BANDS, p.geo)
        (out / "BigEarthNet-v1.0" / p.name / f"{p.name}_labels_metadata.json").write_text(
            json.dumps(_v1_json(p, False))
        )
        if with_s1:
            _write_bands(out / "BigEarthNet-S1-v1.0" / p.s1_name, p.s1_name, arrays, S1_BANDS, p.geo)
            (out / "BigEarthNet-S1-v1.0" / p.s1_name / f"{p.s1_name}_labels_metadata.json").write_text(
                json.dumps(_v1_json(p, True))
            )
        progress()
    lists, snow, cloud = _official_v1(patches, rng)
    for split, names in lists.items():
        _write_list(out / "splits" / "original" / f"{split}.csv", names)
    _write_list(out / "splits" / "patches_with_seasonal_snow.csv", snow)
    _write_list(out / "splits" / "patches_with_cloud_and_shadow.csv", cloud)
    _write_list(
        out / "splits" / "patches_with_no_19_class_targets.csv", [p.name for p in patches if not to_19(p.labels)]
    )


def write_v2(
    out: Path, patches: list[SynthPatch], rng: np.random.Generator, with_s1: bool, progress: Callable[[], None]
) -> None:
    """``BigEarthNet-S2/``, ``BigEarthNet-S1/`` and the two metadata parquets like reBEN."""
    sig = signatures()
    rows = []
    for p in patches:
        arrays = synth_pixels(p.labels, rng, sig)
        tile = p.name.rsplit("_", 2)[0]
        _write_bands(out / "BigEarthNet-S2" / tile / p.name, p.name, arrays, S2_BANDS, p.geo)
        if with_s1:
            scene = "_".join(p.s1_name.split("_")[:5])
            _write_bands(out / "BigEarthNet-S1" / scene / p.s1_name, p.s1_name, arrays, S1_BANDS, p.geo)
        labels_19 = to_19(p.labels) or [2]  # reBEN relabelled every patch; keep none empty
        draw = rng.random()
        rows.append(
            {
                "patch_id": p.name,
                "labels": [LABELS_19[i] for i in labels_19],
                "split": "train" if draw < 0.5 else "validation" if draw < 0.75 else "test",
                "country": p.product[4],
                "s1_name": p.s1_name,
                "s2v1_name": None,
                "contains_seasonal_snow": bool(rng.random() < 0.08),
                "contains_cloud_or_shadow": bool(rng.random() < 0.02),
            }
        )
        progress()
    table = pa.Table.from_pylist(rows).cast(
        pa.schema(
            [
                ("patch_id", pa.string()),
                ("labels", pa.list_(pa.string())),
                ("split", pa.string()),
                ("country", pa.string()),
                ("s1_name", pa.string()),
                ("s2v1_name", pa.string()),
                ("contains_seasonal_snow", pa.bool_()),
                ("contains_cloud_or_shadow", pa.bool_()),
            ]
        )
    )
    flagged = pa.compute.or_(table["contains_seasonal_snow"], table["contains_cloud_or_shadow"])
    pq.write_table(table.filter(pa.compute.invert(flagged)), out / "metadata.parquet")
    pq.write_table(table.filter(flagged), out / "metadata_for_patches_with_snow_cloud_or_shadow.parquet")


WRITERS = {"v1": write_v1, "v2": write_v2}


def synth_archive(
    out: Path,
    n: int,
    layout: str = "v1",
    seed: int = 0,
    with_s1: bool = True,
    progress: Callable[[], None] = lambda: None,
) -> Path:
    """Write a synthetic archive of ``n`` patches to ``out`` (built in a temp folder, then renamed).

    Raises:
        ArchiveError: when ``out`` exists (never overwritten) or ``layout`` is unknown.
        DiskFullError: when the disk fills up (the partial archive is deleted).
    """
    if layout not in WRITERS:
        raise ArchiveError(f"unknown layout {layout!r}; choose one of {sorted(WRITERS)}")
    if out.exists():
        raise ArchiveError(f"{out} already exists; choose a new folder or delete it")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with reported_full_disk(out.parent, "run it again, or ask for fewer patches (-n)"):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        try:
            WRITERS[layout](tmp, synth_patches(n, seed, layout == "v2"), rng, with_s1, progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a partial archive is never left behind
            raise
        os.replace(tmp, out)
    return out


def synth_label_matrix(n: int = 519_284, seed: int = 0) -> np.ndarray:
    """A boolean ``(n, 43)`` label matrix with v1.0's per-class counts scaled to ``n``, exactly.

    Rows get a dominant CLC group (probability by the group's label mass); each class then picks its exact
    number of rows without replacement, 4x more likely inside its own group, so labels co-occur.  Mean
    labels per row is about 2.97 as in BigEarthNet; a few rows may end up with no label.
    """
    rng = np.random.default_rng(seed)
    weights = np.asarray(V1_COUNTS_43, dtype=np.float64)
    scaled = np.maximum(1, np.rint(weights * n / 590_326)).astype(np.int64)
    group_mass = np.array([weights[g == _GROUP].sum() for g in range(1, 6)])
    dominant = rng.choice(5, size=n, p=group_mass / group_mass.sum()) + 1
    Y = np.zeros((n, 43), dtype=bool)
    for label in range(43):
        p = np.where(dominant == _GROUP[label], 4.0, 1.0)
        # Gumbel top-k: an exact-size weighted sample without replacement in O(n)
        keys = np.log(p) - np.log(-np.log(rng.random(n)))
        Y[np.argpartition(-keys, scaled[label] - 1)[: scaled[label]], label] = True
    return Y
