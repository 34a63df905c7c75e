"""Do patch names give a place? BigEarthNet v1.0 patches' row and column (the name's ``_<x>_<y>``) against their
GeoTIFF coordinates, with each patch's reBEN tile (its reBEN name, joined on ``s2v1_name``).

For each patch, the origin its name implies: ``(ulx - 1200 x, uly + 1200 y)`` from B02's tie point (the first
number counts columns eastwards, the second rows southwards: checked here on the example patches). Patches of one
tile whose implied origins differ sit on grids offset from each other, so "the same ``_x_y`` of that tile on another
date" (how ``ben_hub.splits.spatial.touching`` matches reBEN's dates) is then not the same ground; coordinates
(``ben_hub.splits.spatial.nearby``) are. Per reBEN tile: its acquisitions, the distinct origins and the largest
offset between them, and the 100 km square of the Military Grid (MGRS) that the origin lies in against the one the
tile's name gives (zone, column and row letters decoded for the UTM zones the origin's EPSG code names).

Reads an unpacked v1 archive (default: the six real example patches in ``../shared``) and reBEN's metadata and its
snow/cloud companion (default: ``../shared``). Results are appended to BENCHMARKS.md.

    python bench/name_grids.py [--archive DIR] [--reben PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from common import ROOT, publish

from ben_hub.tiff import read_geoinfo

SHARED = ROOT.parent / "shared" / "bigearthnet"
COLUMN_SETS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"


def reben_names(metadata: Path) -> dict[str, str]:
    """v1 name -> reBEN name, from the metadata and its snow/cloud companion beside it."""
    paths = [metadata, *metadata.parent.glob("metadata_for_patches_with_snow_cloud_or_shadow.parquet")]
    table = pa.concat_tables([pq.read_table(p, columns=["patch_id", "s2v1_name"]) for p in paths])
    return dict(zip(table.column("s2v1_name").to_pylist(), table.column("patch_id").to_pylist(), strict=True))


def square(epsg: int, easting: float, northing: float) -> str:
    """The MGRS 100 km square (``33UUP``'s ``UP``) of a tile whose upper-left corner is at ``easting, northing``
    (Sentinel-2 tiles start up to 40 m outside their square: the point 500 m inside the corner is decoded).  Column
    letters cycle in three sets of eight by zone, row letters in 20 from A at the equator (F in even zones)."""
    zone = epsg % 100
    column = COLUMN_SETS[(zone - 1) % 3][int((easting + 500) // 100_000) - 1]
    shift = 0 if zone % 2 else 5
    row = ROW_LETTERS[(int((northing - 500) // 100_000) + shift) % len(ROW_LETTERS)]
    return column + row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=SHARED / "example" / "BigEarthNet-S2-Example")
    parser.add_argument("--reben", type=Path, default=SHARED / "v2" / "metadata.parquet")
    args = parser.parse_args()
    names = reben_names(args.reben)
    tiles: dict[str, dict[str, set]] = {}
    for folder in sorted(p for p in args.archive.iterdir() if p.is_dir()):
        geo = read_geoinfo((folder / f"{folder.name}_B02.tif").read_bytes())
        reben = names.get(folder.name)
        if geo is None or geo.epsg is None or reben is None:
            continue
        x, y = (int(v) for v in folder.name.rsplit("_", 2)[1:])
        tile = reben.split("_")[5]
        origin = (geo.ulx - 1200 * x, geo.uly + 1200 * y)
        seen = tiles.setdefault(tile, {"dates": set(), "origins": set(), "squares": set(), "epsg": set()})
        seen["dates"].add(folder.name.split("_")[2][:8])
        seen["origins"].add(origin)
        seen["squares"].add(square(geo.epsg, *origin))
        seen["epsg"].add(geo.epsg)
    rows = []
    for tile, seen in sorted(tiles.items()):
        origins = sorted(seen["origins"])
        spread = max(max(abs(a[i] - b[i]) for a in origins for b in origins) for i in (0, 1))
        rows.append([tile, str(len(seen["dates"])), ", ".join(f"({e:.0f}, {n:.0f})" for e, n in origins),
                     f"{spread / 1000:.1f}", ", ".join(sorted(seen["squares"])), tile[4:],
                     "yes" if seen["squares"] == {tile[4:]} and {e % 100 for e in seen["epsg"]} == {int(tile[1:3])}
                     else "no"])  # fmt: skip
    publish(
        "Do patch names give a place? v1 names' grid against their GeoTIFF coordinates, per reBEN tile",
        "python bench/name_grids.py" + ("" if args.archive.name == "BigEarthNet-S2-Example" else " --archive ..."),
        f"; {sum(len(t['dates']) for t in tiles.values())} tile-dates of {args.archive.name}",
        [
            "reBEN tile",
            "dates",
            "origins implied (E, N)",
            "largest offset km",
            "MGRS square of the origin",
            "square named",
            "agree",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
