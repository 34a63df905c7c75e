"""Spatial leakage measured by patch names against by coordinates, on a synthetic mosaic of Sentinel-2 tiles at full
scale (590,326 patches, BigEarthNet v1.0's count).

Sentinel-2 tiles are 109.8 km squares laid 100 km apart in each UTM zone, so neighbouring tiles share a 9.8 km strip.
The mosaic here lays 72 tiles of 91 x 91 patches of 1.2 km (109.2 km: reBEN names number them 0 to 90) on that
100 km spacing, 5 across and 15 down one UTM zone (33, from 58 N to 44 N), every neighbour present, origins offset by
0, 20 or 40 m as real tiles' are (the last tile cut short at 590,326 patches). Names carry each tile's own grid, so
``ben_hub.splits.spatial.touching`` sees no neighbour across tiles; ``ben_hub.splits.spatial.nearby`` (WGS84
centres within 1.8 km) does. A mosaic with every neighbour present bounds the effect from above: reBEN has 54 tiles
and not every neighbour of each.

For a patch-level ``fast``-like split (random, 60/20/20) and 10 x 10 blocks (random per block): each measure's
test share and its seconds (median of ``--repeats``). The names measure reads the grid from the names
(``spatial.grid``) and the coordinates one the centres, as a build's statistics do.
Results are appended to BENCHMARKS.md.

    python bench/nearby.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np
from common import publish

from ben_hub.geo import utm_to_lonlat
from ben_hub.splits import spatial

PATCHES = 590_326
SIDE = 91
OFFSETS = (0.0, 20.0, 40.0)


def mosaic() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names and WGS84 centres of :data:`PATCHES` patches in tiles of ``SIDE x SIDE``, 5 across and 15 down zone 33,
    each tile's origin on the 100 km lattice plus 0, 20 or 40 m."""
    names: list[str] = []
    lon, lat = [], []
    rows, cols = (a.ravel() for a in np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij"))
    tile = 0
    while len(names) < PATCHES:
        ulx = 300_000.0 + 100_000 * (tile % 5) - OFFSETS[tile % 3]
        uly = 6_400_000.0 - 100_000 * (tile // 5) + OFFSETS[(tile + 1) % 3]
        take = min(SIDE * SIDE, PATCHES - len(names))
        x, y = ulx + 1200 * cols[:take] + 600, uly - 1200 * rows[:take] - 600
        centres = np.array([utm_to_lonlat(float(e), float(n), 32633) for e, n in zip(x, y, strict=True)])
        lon.append(centres[:, 0])
        lat.append(centres[:, 1])
        names += [f"S2A_MSIL2A_20170613T101031_N9999_R022_T33U{tile:02d}_{c}_{r}"
                  for r, c in zip(rows[:take], cols[:take], strict=True)]  # fmt: skip
        tile += 1
    return names, np.concatenate(lon), np.concatenate(lat)


def timed(run: Callable[[], list[float]], repeats: int) -> tuple[list[float], float]:
    """``run()``'s result and its median seconds over ``repeats`` runs."""
    seconds, result = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds)


def by_name(names: list[str], assignment: np.ndarray) -> list[float]:
    """The names measure as a build takes it: the grid read from the names, then :func:`spatial.touching`."""
    where = spatial.grid(names)
    assert where is not None
    return spatial.touching(where, assignment, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names, lon, lat = mosaic()
    where = spatial.grid(names)
    assert where is not None
    rng = np.random.default_rng(0)
    splits = {
        "patch-level": rng.choice(3, len(names), p=[0.6, 0.2, 0.2]).astype(np.int8),
        "10x10 blocks": rng.choice(3, int(spatial.blocks(where, 10).max()) + 1, p=[0.6, 0.2, 0.2])[
            spatial.blocks(where, 10)
        ].astype(np.int8),
    }
    rows = []
    for name, assignment in splits.items():
        by_names, names_s = timed(functools.partial(by_name, names, assignment), args.repeats)
        by_centres, centres_s = timed(functools.partial(spatial.nearby, lon, lat, assignment, 3), args.repeats)
        rows.append([name, f"{by_names[2]:.1%}", f"{names_s:.2f}", f"{by_centres[2]:.1%}", f"{centres_s:.2f}"])
    publish(
        "Spatial leakage by names and by coordinates (a synthetic mosaic of tiles)",
        f"python bench/nearby.py --repeats {args.repeats}",
        f"; {len(names):,} patches in 72 tiles of {SIDE}x{SIDE} laid 100 km apart in one UTM zone (every neighbour "
        "present: an upper bound); random splits, 60/20/20 of patches or of 10x10 blocks; medians",
        ["split", "test touching, names", "s", "test touching, coordinates", "s"],
        rows,
    )


if __name__ == "__main__":
    main()
