"""Spatial leakage of splits on the real reBEN labels (480,038 patches, 19 classes): reBEN's own split, ben-hub's
patch-level ``fast`` 60/20/20, and ``fast`` over whole N x N blocks on each UTM zone's plane (``--block N``); and,
from their lists, BigEarthNet v1.0's official split and the paper's re-split of it.

For each: LD and ED (Sechidis et al. 2011), the split sizes, each split's share of patches that touch
(8-neighbourhood) or repeat on another date a patch of another split (``ben_hub.splits.spatial.touching``), the
test split's share within 1.8 km of another split's patch by centres that the names give (a reBEN name's tile,
through its MGRS square's corner, plus the name's 1.2 km steps: ``spatial.name_points``; v1 patches by their reBEN
name, joined on ``s2v1_name``), which also finds the ground that a UTM zone's overlapping tiles share and, for v1,
a place's other dates; the country farthest from the split sizes (its share in a split against that split's share
of all patches), for a re-split the test patches it shares with the official test split (where a build's harness
scores models of both configurations on the same patches: ``ben_hub.splits.report.overlap``), with the seconds the
split took (one run each; the numbers that matter here are the shares, which are deterministic).
Blocks are stratified on the labels and the country, as ``--block`` does; one row gives 10x10 blocks stratified on
the labels alone, as before 2026-11-28, and one gives 10x10 squares of each acquisition's grid of the patches' v1
names (``s2v1_name``), as a v1 ``--block`` build laid them before the tile of its JSONs' ``tile_source`` placed
them on the zone's plane (reBEN's labels stand in for v1's, which are not here).
Results are appended to BENCHMARKS.md.

    python bench/spatial.py [--reben PATH] [--lists DIR] [--blocks 5 10 15]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT, publish

DEFAULT_REBEN = ROOT.parent / "shared" / "bigearthnet" / "v2" / "metadata.parquet"
DEFAULT_LISTS = ROOT.parent / "shared" / "bigearthnet" / "splits"


def v1_rows(lists: Path, reben: Path) -> list[list[str]]:
    """BigEarthNet v1.0's official split (519,284 patches) and the paper's re-split of them (its published val and
    test lists, the rest train), as rows: labels are not read, so LD and ED are not given; v1 names carry the
    acquisition, not the tile (neighbours on the same date only); countries from reBEN's metadata by ``s2v1_name``
    (``build --countries``; a v1 patch reBEN dropped is ``unknown``)."""
    import pyarrow as pa

    from ben_hub.build import join_countries
    from ben_hub.lists import read_list
    from ben_hub.splits.quality import country_gap_text
    from ben_hub.splits.spatial import country_counts, grid, touching

    parts = [read_list(lists / "original" / f"{part}.csv") for part in ("train", "val", "test")]
    names = [name for part in parts for name in part]
    where = grid(names)
    assert where is not None
    official = np.repeat(np.arange(3, dtype=np.int8), [len(part) for part in parts])
    val, test = (set(read_list(lists / "resampled-paper" / f"{part}.csv")) for part in ("val", "test"))
    paper = np.array([1 if name in val else 2 if name in test else 0 for name in names], dtype=np.int8)
    index = pa.table({"patch_id": names, "country": pa.nulls(len(names), pa.string())})
    country = join_countries(index, reben).column("country")
    points = both_ways(v1_points(names, reben))
    rows = []
    for title, assignment in (("v1.0's official split (lists)", official), ("the paper's re-split (lists)", paper)):
        counts = np.bincount(assignment, minlength=3)
        sizes = " / ".join(f"{n:,}" for n in counts)
        report = {"sizes": dict(zip(("train", "validation", "test"), counts.tolist(), strict=True)),
                  "countries": country_counts(country, assignment, 3)}  # fmt: skip
        gap = country_gap_text(report, lead="")
        shared = shared_test(official, assignment)
        rows.append([title, "", "", sizes, *(f"{s:.1%}" for s in touching(where, assignment, 3)),
                     across(points, assignment), gap, shared, ""])  # fmt: skip
    return rows


def v1_points(names: list[str], reben: Path) -> np.ndarray:
    """Each v1 patch's centre from its reBEN name (joined on ``s2v1_name``: the tile, which v1 names lack) by
    ``spatial.name_points``; NaN for a patch reBEN dropped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ben_hub.splits.spatial import name_points

    paths = [reben, *reben.parent.glob("metadata_for_patches_with_snow_cloud_or_shadow.parquet")]
    table = pa.concat_tables([pq.read_table(p, columns=["patch_id", "s2v1_name"]) for p in paths])
    renamed = dict(zip(table.column("s2v1_name").to_pylist(), table.column("patch_id").to_pylist(), strict=True))
    known = [renamed.get(name) for name in names]
    found = name_points([name for name in known if name is not None])
    assert found is not None
    points = np.full((len(names), 3), np.nan)
    points[[i for i, name in enumerate(known) if name is not None]] = found
    return points


def acquisition_blocks(reben: Path, side: int) -> np.ndarray:
    """reBEN's patches (in patch-id order, as ``from_metadata`` reads them) in ``side x side`` squares of their v1
    names' grids (``s2v1_name``: one grid per acquisition, as a v1 ``--block`` build laid its squares before
    2026-11-28, when squares came to be laid by the tile that a v1 JSON's ``tile_source`` names)."""
    import pyarrow.parquet as pq

    from ben_hub.splits.spatial import blocks, grid

    names = pq.read_table(reben, columns=["patch_id", "s2v1_name"]).sort_by("patch_id").column("s2v1_name")
    where = grid(names.combine_chunks())
    assert where is not None and where.unit == "acquisition"
    return blocks(where, side)


def both_ways(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The name-given centres on their UTM zones' planes (``spatial.name_points``) and as points on the sphere
    (``spatial.sphere_points`` of their WGS84 longitude and latitude), where ground that tiles of two zones share
    meets too (NaN stays NaN)."""
    from ben_hub.geo import utm_to_lonlat
    from ben_hub.splits.spatial import ZONE_SPACING_M, sphere_points

    lonlat = np.full((len(points), 2), np.nan)
    for i in np.flatnonzero(np.isfinite(points).all(axis=1)):
        east, north, zone = points[i]
        lonlat[i] = utm_to_lonlat(east, north, 32600 + round(zone / ZONE_SPACING_M))
    return points, sphere_points(lonlat[:, 0], lonlat[:, 1])


def across(points: tuple[np.ndarray, np.ndarray], assignment: np.ndarray) -> str:
    """The test split's share of patches within 1.8 km of another split's by their name-given centres
    (``spatial.nearby_points``: across a zone's overlapping tiles and dates) on the zones' planes and on the sphere
    (across zones too), and how many patches had one."""
    from ben_hub.splits.spatial import nearby_points

    placed = np.isfinite(points[0]).all(axis=1)
    plane, sphere = (nearby_points(where, assignment, 3)[2] for where in points)
    return f"{plane:.1%} / {sphere:.1%}" + ("" if placed.all() else f" ({placed.mean():.1%} placed)")


def shared_test(official: np.ndarray, assignment: np.ndarray) -> str:
    """The test patches ``assignment`` shares with the official test split, and their share of its test split;
    empty for the official split itself."""
    from ben_hub.splits.report import overlap

    if assignment is official:
        return ""
    both, test = overlap(official, assignment, 3)[2][2], int((assignment == 2).sum())
    return f"{both:,} ({both / test:.1%})"


def parse_seconds(names: list[str], repeats: int = 5) -> tuple[float, float]:
    """Medians of ``repeats``: seconds for :func:`ben_hub.splits.spatial.grid` to parse ``names`` (Arrow's string
    kernels), and for a regular expression per name giving the same place, row and column codes (the baseline)."""
    import re
    import statistics

    from ben_hub.splits.spatial import grid

    pattern = re.compile(r"^(.*?)(?:_N\d{4}_R\d{3}_(T\d{2}[A-Z]{3}))?_(\d+)_(\d+)$")

    def by_regex() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        places: dict[str, int] = {}
        parts = [pattern.match(name).groups() for name in names]  # type: ignore[union-attr]
        place = np.array([places.setdefault(tile or head, len(places)) for head, tile, _, _ in parts])
        return place, np.array([int(p[2]) for p in parts]), np.array([int(p[3]) for p in parts])

    arrow, regex = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        where = grid(names)
        arrow.append(time.perf_counter() - start)
        start = time.perf_counter()
        place, rows, cols = by_regex()
        regex.append(time.perf_counter() - start)
    assert where is not None and np.array_equal(where.row, rows) and np.array_equal(where.col, cols)
    assert len(np.unique(where.place)) == len(np.unique(place))  # the same places, numbered alike or not
    return statistics.median(arrow), statistics.median(regex)


def row(
    name: str,
    Y: np.ndarray,
    assignment: np.ndarray,
    where: object,
    points: tuple[np.ndarray, np.ndarray],
    country: object,
    official: np.ndarray,
    seconds: float | None,
) -> list[str]:
    from ben_hub.splits.quality import country_gap_text, quality
    from ben_hub.splits.spatial import country_counts, touching

    report = quality(Y, assignment, (0.6, 0.2, 0.2))
    report["countries"] = country_counts(country, assignment, 3)
    shares = touching(where, assignment, 3)  # type: ignore[arg-type]
    sizes = " / ".join(f"{n:,}" for n in report["sizes"].values())
    took = "" if seconds is None else f"{seconds:.2f}"
    gap = country_gap_text(report, lead="")
    return [name, f"{report['LD']:.3g}", f"{report['ED']:.3g}", sizes, *(f"{s:.1%}" for s in shares),
            across(points, assignment), gap, shared_test(official, assignment), took]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reben", type=Path, default=DEFAULT_REBEN, help="reBEN metadata.parquet")
    parser.add_argument("--lists", type=Path, default=DEFAULT_LISTS, help="folder with original/{train,val,test}.csv")
    parser.add_argument("--blocks", type=int, nargs="+", default=[5, 10, 15], help="block sides, in patches")
    args = parser.parse_args()
    from ben_hub.splits import split
    from ben_hub.splits.sources import from_metadata
    from ben_hub.splits.spatial import grid, grouped_split, name_points, plane_blocks, with_countries

    data = from_metadata(args.reben)
    where = grid(data.patch_ids)
    assert where is not None and data.official is not None
    centres = name_points(data.patch_ids)
    assert centres is not None
    at: dict[str, Any] = {"where": where, "points": both_ways(centres), "country": data.country,
                          "official": data.official}  # fmt: skip
    rows = [*v1_rows(args.lists, args.reben), row("reBEN's own split", data.Y, data.official, **at, seconds=None)]
    start = time.perf_counter()
    rows.append(row("fast, patch by patch", data.Y, split(data.Y, "fast", (0.6, 0.2, 0.2), 0), **at,
                    seconds=time.perf_counter() - start))  # fmt: skip
    start = time.perf_counter()
    assignment = grouped_split(data.Y, plane_blocks(at["points"][0], 10), (0.6, 0.2, 0.2), 0)
    rows.append(row("fast, 10x10 blocks, labels alone", data.Y, assignment, **at, seconds=time.perf_counter() - start))
    start = time.perf_counter()
    assignment = grouped_split(
        with_countries(data.Y, data.country), acquisition_blocks(args.reben, 10), (0.6, 0.2, 0.2), 0
    )
    rows.append(row("fast, 10x10 blocks of each v1 acquisition's grid", data.Y, assignment, **at,
                    seconds=time.perf_counter() - start))  # fmt: skip
    for side in args.blocks:
        start = time.perf_counter()
        strata = with_countries(data.Y, data.country)
        assignment = grouped_split(strata, plane_blocks(at["points"][0], side), (0.6, 0.2, 0.2), 0)
        rows.append(row(f"fast, {side}x{side} blocks", data.Y, assignment, **at, seconds=time.perf_counter() - start))
    header = ["split", "LD", "ED", "train / validation / test", "train touching", "validation touching",
              "test touching", "test within 1.8 km, across tiles and dates: on zone planes / on the sphere",
              "country farthest from the split sizes", "test shared with the official test", "split s"]  # fmt: skip
    arrow, regex = parse_seconds(data.patch_ids)
    note = (". 'Touching': the split's share of patches next to (8-neighbourhood of the tile's patch grid) or at the "
            f"place on another date of a patch of another split. Seed 0; 60/20/20 targets. Parsing the "
            f"{len(data.patch_ids):,} names into place, row and column (`spatial.grid`, Arrow's string kernels): "
            f"{arrow:.2f} s, against {regex:.2f} s by a regular expression per name (medians of 5).")  # fmt: skip
    publish("Spatial leakage of splits (real reBEN labels)", "python bench/spatial.py", note, header, rows)


if __name__ == "__main__":
    main()
