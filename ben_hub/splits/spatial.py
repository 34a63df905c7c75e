"""Where patches lie, for splits that keep neighbours together and for measuring how often they do not.

A patch name ends in its place in its Sentinel-2 tile's grid of 1.2 km patches (``..._<x>_<y>``: steps east and
south from the tile's upper-left corner, as the example patches' GeoTIFFs show, ``bench/name_grids.py``; the
measures here are symmetric in the two, which :class:`Grid` keeps as ``row`` and ``col`` in name order).
reBEN names also carry the tile (``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57``),
so the same ground on another date has the same place; v1 names carry the acquisition instead of the tile
(``S2A_MSIL2A_20170613T101031_26_57``), so there a place is one tile on one date (:func:`grid`, :func:`touching`).
Names do not match overlapping tiles' shared ground (neighbouring Sentinel-2 tiles overlap by 9.8 km) nor v1's other
dates: :func:`nearby` measures from the patches' WGS84 centres instead, where a built repository has them (its
``lon``/``lat`` columns), or from the centres the names give on their UTM zone's plane (:func:`name_points`: the
tile a reBEN name carries, or the one a v1 patch's ``tile_source`` names), on which ``--block`` lays its squares.

Patches next to each other look alike (spatial autocorrelation), and one place seen on two dates even more so.
A patch-level split puts almost every test patch beside a training one: on the real reBEN labels (480,038
patches), 99.9% of test patches of a patch-level 60/20/20 iterative stratification touch (8-neighbourhood) or
repeat another split's patch, against 8.5% in reBEN's own split (``bench/spatial.py``).  :func:`grouped_split`
stratifies whole ``block x block`` squares of the grid instead, so only block edges meet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SplitError
from ..geo import tile_corner

NAME = re.compile(r"_\d+_\d+$")
"""The end of a patch name that gives its place: ``_<row>_<col>``."""
TILE_SOURCE = re.compile(r"_T(?P<tile>\d{2}[A-Z]{3})(?:[_.]|$)")
"""The tile in a ``tile_source``: v1's L1C product name (``..._N0205_R022_T33UUP_20170613T101608.SAFE``), or the
reBEN name's head a build stores (``..._N9999_R022_T33UUP``)."""
REACH_M = 1800.0
"""How near (metres between centres) a patch of another split must lie for :func:`nearby`: the 8-neighbourhood's
diagonal, 1,697 m, plus about 100 m for grids offset (neighbouring tiles' origins differ by up to 40 m) or turned
(across UTM zones); the next patch of one grid lies 2,400 m away."""
ZONE_SPACING_M = 10_000.0
"""How far apart :func:`name_points` lays UTM zones on a third axis: more than any reach, so zones never meet, and
small enough that :func:`nearby_points`' cube codes stay far inside int64 for all 60 zones."""
EARTH_RADIUS_M = 6_371_008.8
"""The mean Earth radius (IUGG): straight-line distances between centres under 2 km differ from the ellipsoid's by
under 0.5%."""


@dataclass(frozen=True)
class Grid:
    """Each patch's place (an index: its tile for reBEN names, its tile's acquisition for v1 ones), row and col."""

    place: np.ndarray
    row: np.ndarray
    col: np.ndarray
    unit: str  # "tile" (reBEN names: all dates of a place together) or "acquisition" (v1 names)

    def codes(self, drow: int = 0, dcol: int = 0) -> np.ndarray:
        """One integer per patch for its cell moved by ``(drow, dcol)``: equal codes, same cell."""
        width = int(max(self.row.max(initial=0), self.col.max(initial=0))) + 3
        place = self.place.astype(np.int64)
        return (place * width + (self.row + 1 + drow)) * width + (self.col + 1 + dcol)


def grid(patch_ids: Sequence[str] | pa.Array) -> Grid | None:
    """The grid of ``patch_ids``, ``None`` when a name does not end in ``_<row>_<col>`` (Arrow's kernels, a column
    at a time: 0.26 s for reBEN's 480,038 names here, against 1.66 s by a regular expression per name;
    ``bench/spatial.py``, medians of 5)."""
    names = patch_ids if isinstance(patch_ids, pa.Array) else pa.array(patch_ids, pa.string())
    pieces = pc.split_pattern(names, "_", max_splits=2, reverse=True)  # [acquisition(+tile), row, col]
    if len(names) and pc.min(pc.list_value_length(pieces)).as_py() < 3:
        return None
    head, row, col = (pc.list_element(pieces, i) for i in range(3))
    if pc.all(pc.and_(pc.utf8_is_digit(row), pc.utf8_is_digit(col))).as_py() is False:
        return None
    by_tile = bool(pc.all(pc.match_substring_regex(head, r"_N\d{4}_R\d{3}_T\d{2}[A-Z]{3}$")).as_py())
    key = pc.utf8_slice_codeunits(head, -6) if by_tile else head
    number = lambda part: pc.cast(part, pa.int64()).to_numpy()  # noqa: E731
    place = pc.dictionary_encode(key).indices.to_numpy().astype(np.int64)
    return Grid(place, number(row), number(col), "tile" if by_tile else "acquisition")


def require_grid(patch_ids: Sequence[str]) -> Grid:
    """:func:`grid`, or a :class:`SplitError` naming the first patch whose name gives no place."""
    found = grid(patch_ids)
    if found is None:
        bad = next(p for p in patch_ids if not NAME.search(p))
        raise SplitError(f"--block needs patch names ending in _<row>_<col> (their place in the tile grid); {bad!r} "
                         "does not: split it without --block")  # fmt: skip
    return found


def check_block(block: int | None, method: str) -> None:
    """Raise :class:`SplitError` for ``--block`` with a method other than ``fast`` (blocks are stratified by
    :func:`grouped_split`, ben-hub's own greedy) or a side under 1 patch."""
    if block is not None and (method != "fast" or block < 1):
        raise SplitError(f"--block {block} with --method {method}: blocks are stratified by ben-hub's own greedy; "
                         "give --method fast and a block side of 1 patch or more")  # fmt: skip


def blocks(where: Grid, size: int) -> np.ndarray:
    """Group index per patch: its ``size x size`` square of its place's grid (all dates, for reBEN names; one
    acquisition, for v1 names without their tile sources)."""
    check_side(size)
    width = int(max(where.row.max(initial=0), where.col.max(initial=0))) // size + 1
    _, group = np.unique((where.place * width + where.row // size) * width + where.col // size, return_inverse=True)
    return group.astype(np.int64)


def plane_blocks(points: np.ndarray, size: int) -> np.ndarray:
    """Group index per patch: its square of ``1.2 size`` km in its UTM zone's plane, by the centre
    :func:`name_points` gives, so that the ground neighbouring tiles share (9.8 km strips) and all dates of a place
    fall in the same squares."""
    check_side(size)
    cells = np.floor(points[:, :2] / (1200.0 * size)).astype(np.int64)
    key = np.column_stack([np.rint(points[:, 2] / ZONE_SPACING_M).astype(np.int64), cells])
    return np.unique(key, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def check_side(size: int) -> None:
    """Raise :class:`SplitError` for a block side under one patch."""
    if size < 1:
        raise SplitError(f"--block {size}: give a block side of 1 patch or more")


def touching(where: Grid, assignment: np.ndarray, k: int) -> list[float]:
    """Per split, the share of its patches that touch (8-neighbourhood) or repeat (the same cell on another date,
    reBEN names) a patch of another split.  Patches with ``assignment < 0`` (in no split) are ignored."""
    member = assignment >= 0
    if not member.any():
        return [0.0] * k
    codes, split = where.codes()[member], assignment[member].astype(np.int64)
    cells, inverse = np.unique(codes, return_inverse=True)
    low, high = np.full(len(cells), k, dtype=np.int64), np.full(len(cells), -1, dtype=np.int64)
    np.minimum.at(low, inverse, split)  # a cell holds one split exactly when its lowest and highest are equal
    np.maximum.at(high, inverse, split)
    other = np.zeros(len(codes), dtype=bool)
    for drow in (-1, 0, 1):
        for dcol in (-1, 0, 1):
            moved = where.codes(drow, dcol)[member]
            at = np.minimum(np.searchsorted(cells, moved), len(cells) - 1)
            there = cells[at] == moved
            other |= there & ((low[at] != split) | (high[at] != split))
    return [float(other[split == j].mean()) if (split == j).any() else 0.0 for j in range(k)]


def nearby(lon: np.ndarray, lat: np.ndarray, assignment: np.ndarray, k: int, reach: float = REACH_M) -> list[float]:
    """Per split, the share of its patches whose centre (WGS84 degrees) lies within ``reach`` metres of the centre of
    a patch of another split: on one tile's grid exactly :func:`touching`'s 8-neighbourhood and repeats, and also
    the neighbours and repeats that names do not tell (overlapping tiles, other UTM zones, v1's other dates).
    Patches with ``assignment < 0`` or no coordinates (NaN) are ignored.  Centres become points in space (a sphere
    of :data:`EARTH_RADIUS_M`) for :func:`nearby_points`."""
    return nearby_points(sphere_points(lon, lat), assignment, k, reach)


def sphere_points(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """WGS84 degrees as points ``(patches, 3)`` in metres on a sphere of :data:`EARTH_RADIUS_M`, for
    :func:`nearby_points` (NaN stays NaN)."""
    phi, lam = np.radians(lat), np.radians(lon)
    return EARTH_RADIUS_M * np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)


def nearby_points(points: np.ndarray, assignment: np.ndarray, k: int, reach: float = REACH_M) -> list[float]:
    """:func:`nearby` for points ``(patches, 3)`` in metres (NaN: unknown): binned in cubes of side ``reach``, each
    patch is compared with those in its cube and the 26 around it, 27 vectorised passes."""
    member = (assignment >= 0) & np.isfinite(points).all(axis=1)
    split, points = assignment[member].astype(np.int64), points[member]
    if not len(split):
        return [0.0] * k
    cube = np.floor(points / reach).astype(np.int64)
    cube -= cube.min(axis=0) - 1  # every coordinate >= 1, so a neighbour's is >= 0
    width = int(cube.max()) + 2
    code = lambda c: (c[:, 0] * width + c[:, 1]) * width + c[:, 2]  # noqa: E731
    order = np.argsort(code(cube), kind="stable")
    sorted_codes = code(cube)[order]
    other = np.zeros(len(split), dtype=bool)
    for step in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T:
        target = code(cube + step)
        start = np.searchsorted(sorted_codes, target, "left")
        counts = np.searchsorted(sorted_codes, target, "right") - start
        mine = np.repeat(np.arange(len(split)), counts)  # each patch once per candidate in the cube
        firsts = np.repeat(start - np.cumsum(counts) + counts, counts)
        theirs = order[firsts + np.arange(len(mine))]
        close = ((points[mine] - points[theirs]) ** 2).sum(axis=1) <= reach * reach
        other[mine[close & (split[mine] != split[theirs])]] = True
    return [float(other[split == j].mean()) if (split == j).any() else 0.0 for j in range(k)]


def name_points(names: Sequence[str] | pa.Array, tile_sources: pa.Array | None = None) -> np.ndarray | None:
    """Each patch's centre from its name and tile alone, for :func:`nearby_points` and :func:`plane_blocks`: its tile's
    MGRS square corner (:func:`ben_hub.geo.tile_corner`) plus the name's 1.2 km steps east and south, as UTM metres
    ``(easting, northing, zone x ZONE_SPACING_M)``, so patches of one zone are compared on its plane (tiles' shared
    ground found, within the 40 m of tiles' offsets) and zones never meet.  The tile is the one a reBEN name carries or,
    for v1 names (which carry the acquisition instead), the ``T<tile>`` of each patch's ``tile_sources`` (its JSON's
    ``tile_source``, the L1C product: ``S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101608.SAFE``); a v1
    name's steps count from its tile's corner as a reBEN name's do (reBEN's name is v1's with the tile put in). A row is
    NaN where its tile source names no tile; ``None`` when the names give no steps, or neither they nor ``tile_sources``
    give tiles.  On the example patches these centres are their GeoTIFFs' within 40 m (``tests/test_spatial.py``)."""
    where = grid(names)
    if where is None or (where.unit != "tile" and tile_sources is None):
        return None
    if where.unit == "tile":
        array = names if isinstance(names, pa.Array) else pa.array(names, pa.string())
        head = pc.list_element(pc.split_pattern(array, "_", max_splits=2, reverse=True), 0)
        tiles = pc.utf8_slice_codeunits(head, -5)
    else:
        tiles = pc.struct_field(pc.extract_regex(tile_sources, TILE_SOURCE.pattern), [0])
    coded = pc.dictionary_encode(tiles.combine_chunks() if isinstance(tiles, pa.ChunkedArray) else tiles)
    table = np.array([corner_or_nan(t) for t in coded.dictionary.to_pylist()] + [(np.nan,) * 3], dtype=np.float64)
    corners = table[pc.fill_null(coded.indices, len(coded.dictionary)).to_numpy()]
    return np.stack([corners[:, 1] + 1200 * where.row + 600, corners[:, 2] - 1200 * where.col - 600,
                     corners[:, 0] * ZONE_SPACING_M], axis=1)  # fmt: skip


def corner_or_nan(tile: str) -> tuple[float, float, float]:
    """:func:`ben_hub.geo.tile_corner` of ``tile``, NaNs for letters no MGRS square has (``I``, ``O``, ...)."""
    try:
        return tile_corner(tile)
    except ValueError:
        return (np.nan,) * 3


def block_groups(ids: Sequence[str], size: int, tile_sources: pa.Array | None = None) -> np.ndarray:
    """``--block``'s square per patch: on its UTM zone's plane (:func:`plane_blocks`) by the centre
    :func:`name_points` gives (reBEN names; v1 names with their ``tile_sources``), else of each place's grid (names
    without a tile: :func:`blocks`).

    Raises:
        SplitError: naming the first patch whose name gives no place, or whose tile source names no tile."""
    points = name_points(ids, tile_sources)
    if points is None:
        return blocks(require_grid(ids), size)
    unplaced = np.flatnonzero(np.isnan(points[:, 0]))
    if unplaced.size:
        raise SplitError(
            f"--block lays squares on each patch's Sentinel-2 tile, but the tile_source of {ids[int(unplaced[0])]!r}"
            f"{f' (and {unplaced.size - 1:,} more)' if unplaced.size > 1 else ''} names no tile (T<zone><band><square>,"
            " as in ..._R022_T33UUP_...); restore its labels_metadata.json from the archive, or drop --block"
        )
    return plane_blocks(points, size)


def grouped_split(Y: np.ndarray, groups: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Iterative stratification (Sechidis et al. 2011) of whole groups: every patch of a group goes to one split.

    The greedy of the paper, with groups for examples: take the label with the fewest positives left; give each
    group holding it (most positives first, ties in seeded random order) to the split that most wants that label
    (ties: the split that wants the most patches, then a seeded random priority) among the splits not yet full;
    a group's positives of every label and its patches count against that split's wants.  Groups without labels
    fill the splits' remaining room, largest first.  So a split overshoots its target by less than one group,
    but one filled early leaves the last groups to the others: sizes come close to the targets, not exactly as
    with patch-level ``fast``.  :func:`refine` then swaps groups between splits to lower LD.
    """
    Y = np.asarray(Y, dtype=np.int64)
    n_groups, k = int(groups.max(initial=-1)) + 1, len(ratios)
    C = np.stack([np.bincount(groups, weights=Y[:, label], minlength=n_groups) for label in range(Y.shape[1])], 1)
    C = C.astype(np.int64)
    sizes = np.bincount(groups, minlength=n_groups)
    share = np.asarray(ratios, dtype=np.float64)
    wants, room = share[:, None] * C.sum(axis=0)[None, :], share * len(groups)
    rng = np.random.default_rng(seed)
    chosen = np.full(n_groups, -1, dtype=np.int8)
    left = C.sum(axis=0)
    while (left > 0).any():
        label = int(np.argmin(np.where(left > 0, left, np.iinfo(np.int64).max)))
        holders = np.flatnonzero((chosen < 0) & (C[:, label] > 0))
        holders = holders[rng.permutation(len(holders))]
        for group in holders[np.argsort(-C[holders, label], kind="stable")]:
            open_ = np.flatnonzero(room > 0) if (room > 0).any() else np.arange(k)  # a full split takes no more
            j = int(open_[np.lexsort((rng.permutation(k)[open_], room[open_], wants[open_, label]))[-1]])
            chosen[group], wants[j], room[j] = j, wants[j] - C[group], room[j] - sizes[group]
            left -= C[group]
    rest = np.flatnonzero(chosen < 0)
    for group in rest[np.argsort(-sizes[rest], kind="stable")]:
        j = int(np.argmax(room))
        chosen[group], room[j] = j, room[j] - sizes[group]
    return refine(C, sizes, chosen, share, rng)[groups]


def with_countries(Y: np.ndarray, country: pa.Array | pa.ChunkedArray | None) -> np.ndarray:
    """``Y`` with a column per country (patches without one: a column of their own) for :func:`grouped_split` to
    stratify on as it does on labels; ``Y`` itself when no patch has a country.

    Whole blocks otherwise leave small countries out of a split: on the real reBEN labels with 10x10 blocks (on the
    zones' planes), 31.1% of Switzerland's patches went to train (60% wanted); stratified on the country too, no
    country lies more than 2.6 points from the split sizes, at an LD of 0.00052 against 0.00032 (``bench/spatial.py``;
    with squares of each tile's grid, before 2026-11-28, Kosovo 8.4% in train, and LD 0.00034 against 0.00046).
    The country changes only where groups go; LD is measured on the labels alone."""
    coded = country_codes(country)
    if coded is None:
        return Y
    codes, names = coded
    strata = np.zeros((len(codes), len(names)), dtype=Y.dtype)
    strata[np.arange(len(codes)), codes] = 1
    return np.concatenate([Y, strata], axis=1)


def country_counts(country: pa.Array | pa.ChunkedArray | None, assignment: np.ndarray, k: int) -> dict[str, list[int]]:
    """Patches per country (by name, sorted; ``unknown``: none given) and split, ``k`` counts each; empty when no
    patch has a country."""
    coded = country_codes(country)
    if coded is None:
        return {}
    codes, names = coded
    counts = np.zeros((len(names), k), dtype=np.int64)
    np.add.at(counts, (codes, assignment), 1)
    return {name: counts[i].tolist() for i, name in sorted(enumerate(names), key=lambda item: item[1])}


def country_codes(country: pa.Array | pa.ChunkedArray | None) -> tuple[np.ndarray, list[str]] | None:
    """Each patch's country as a code into the names (``unknown`` for a patch without one); ``None`` when no patch
    has a country (v1 without ``--countries``)."""
    if country is None or country.null_count == len(country):
        return None
    if isinstance(country, pa.ChunkedArray):
        country = country.combine_chunks()
    encoded = pc.dictionary_encode(pc.fill_null(country, "unknown"))
    return np.asarray(encoded.indices), [str(name) for name in encoded.dictionary.to_pylist()]


def imbalance(S: np.ndarray, n: np.ndarray, D: np.ndarray, N: int) -> np.ndarray:
    """Per row of ``S`` (positives per label of a split of ``n`` patches): ``sum_l |S_l / (n - S_l) - D_l / (N -
    D_l)|``, the split's part of LD (Sechidis et al. 2011) before its ``1 / (q k)``; ``D``: positives of all ``N``."""
    whole = np.divide(D, N - D, out=np.zeros(D.shape), where=N - D > 0)
    rest = n[..., None] - S
    part = np.divide(S, rest, out=np.zeros(S.shape), where=rest > 0)
    return np.abs(part - whole).sum(axis=-1)


def refine(
    C: np.ndarray, sizes: np.ndarray, chosen: np.ndarray, share: np.ndarray, rng: np.random.Generator,
    slack: float = 0.001, patience: int = 500, limit: int = 20_000, partners: int = 512,
) -> np.ndarray:  # fmt: skip
    """Swap groups between splits while LD falls and every split stays within ``slack`` (a share of all patches)
    of its target size: a random group of a random split, against the group of another split (of ``partners``
    drawn at random) that lowers LD most; it stops after ``patience`` proposals in a row that lower nothing (or
    ``limit`` in all).

    The greedy decides the rarest labels first, group by group, and its last groups go where room is left, so its
    LD on blocks is high: on the real reBEN labels with 10x10 blocks of each tile's grid, 0.025, and 0.00046 after
    this pass (reBEN's own split: 0.017), each split within 480 patches (0.1%) of its 60/20/20 size, in about 2 s
    (``bench/spatial.py``; on the zones' planes 0.00032, and 0.00052 with the countries as strata,
    :func:`with_countries`).
    """
    k, N = len(share), int(sizes.sum())
    S = np.stack([C[chosen == j].sum(axis=0) for j in range(k)]).astype(np.float64)
    n = np.bincount(chosen, weights=sizes, minlength=k).astype(np.float64)
    D, target, allowed = C.sum(axis=0).astype(np.float64), share * N, slack * N
    now, idle = imbalance(S, n, D, N), 0
    for _ in range(limit):
        if idle >= patience:
            break
        idle += 1
        x, y = rng.choice(k, 2, replace=False)
        giving, taking = np.flatnonzero(chosen == x), rng.permutation(np.flatnonzero(chosen == y))
        if not len(giving) or not len(taking):
            continue
        g = giving[rng.integers(len(giving))]
        moved = sizes[taking] - sizes[g]  # x gains, y loses
        fits = (np.abs(n[x] + moved - target[x]) <= allowed) & (np.abs(n[y] - moved - target[y]) <= allowed)
        taking, moved = taking[fits][:partners], moved[fits][:partners]  # ``taking`` is in random order
        Sx, Sy = S[x] - C[g] + C[taking], S[y] + C[g] - C[taking]
        after = imbalance(Sx, n[x] + moved, D, N) + imbalance(Sy, n[y] - moved, D, N)
        if not len(after) or after.min() >= now[x] + now[y] - 1e-12:
            continue
        best = int(np.argmin(after))
        S[x], S[y], n[x], n[y] = Sx[best], Sy[best], n[x] + moved[best], n[y] - moved[best]
        chosen[g], chosen[taking[best]] = y, x
        now[x], now[y] = imbalance(S[x], n[x], D, N), imbalance(S[y], n[y], D, N)
        idle = 0
    return chosen


__all__ = [
    "Grid",
    "blocks",
    "check_block",
    "grid",
    "grouped_split",
    "imbalance",
    "plane_blocks",
    "refine",
    "require_grid",
    "touching",
]
