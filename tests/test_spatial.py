"""Spatially grouped splits and the neighbour measure: patch-name grids, block groups, touching shares, the CLI."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub.archive import locate_archive
from ben_hub.build import BuildConfig, build
from ben_hub.cli import main
from ben_hub.errors import RepoError, SplitError
from ben_hub.geo import utm_to_lonlat
from ben_hub.hub import PushConfig, push
from ben_hub.remote import HubRepo, verify_remote
from ben_hub.splits import SPLITS
from ben_hub.splits.quality import quality
from ben_hub.splits.report import SplitRequest
from ben_hub.splits.spatial import (
    ZONE_SPACING_M,
    block_groups,
    blocks,
    country_counts,
    grid,
    grouped_split,
    imbalance,
    name_points,
    nearby,
    nearby_points,
    plane_blocks,
    refine,
    require_grid,
    touching,
    with_countries,
)
from ben_hub.verify import verify

from .conftest import EXAMPLE, V2_META, needs_shared
from .hub_server import FakeHub

REBEN = "S2A_MSIL2A_20170613T101031_N9999_R022_{tile}_{row}_{col}"
V1 = "S2A_MSIL2A_{date}T101031_{row}_{col}"


def test_patch_names_give_their_tile_or_acquisition_row_and_col() -> None:
    names = [REBEN.format(tile="T33UUP", row=26, col=57), REBEN.format(tile="T32TNS", row=0, col=9),
             REBEN.format(tile="T33UUP", row=1, col=2).replace("20170613", "20180110")]  # fmt: skip
    where = grid(names)
    assert where is not None and where.unit == "tile"
    assert where.row.tolist() == [26, 0, 1] and where.col.tolist() == [57, 9, 2]
    assert where.place[0] == where.place[2] != where.place[1]  # one tile on two dates: one place
    v1 = grid([V1.format(date="20170613", row=3, col=4), V1.format(date="20180110", row=3, col=4)])
    assert v1 is not None and v1.unit == "acquisition" and v1.place[0] != v1.place[1]
    assert grid(["S2A_MSIL2A_20170613T101031_26_x"]) is None and grid(["patch-7"]) is None
    with pytest.raises(SplitError, match=r"'patch-7' does not: split it without --block"):
        require_grid([V1.format(date="20170613", row=0, col=0), "patch-7"])


def test_touching_counts_neighbours_and_other_dates_in_other_splits() -> None:
    # one tile, a 3 x 3 grid: the centre in test, the rest train; and a far patch in validation
    cells = [(r, c) for r in range(3) for c in range(3)] + [(9, 9)]
    names = [REBEN.format(tile="T33UUP", row=r, col=c) for r, c in cells]
    assignment = np.array([0, 0, 0, 0, 2, 0, 0, 0, 0, 1], dtype=np.int8)
    where = grid(names)
    assert where is not None
    assert touching(where, assignment, 3) == [1.0, 0.0, 1.0]  # every train patch touches the test centre
    corner_apart = assignment.copy()
    corner_apart[4] = 0  # all train: the corner (0, 0) touches nothing of another split
    assert touching(where, corner_apart, 3) == [0.0, 0.0, 0.0]
    twin = grid([*names, REBEN.format(tile="T33UUP", row=9, col=9).replace("20170613", "20180110")])
    assert twin is not None  # the far place seen again on another date, in test
    assert touching(twin, np.append(corner_apart, 2).astype(np.int8), 3) == [0.0, 1.0, 1.0]
    with_none = np.append(corner_apart, -1).astype(np.int8)  # a patch in no split is ignored
    assert touching(twin, with_none, 3) == [0.0, 0.0, 0.0]
    many = np.array([0, 10, 20, 30, 40, 50, 60, 65, 69, 1], dtype=np.int8)  # 70 folds: more than 64 bits' worth
    shares = touching(where, many, 70)
    assert [shares[j] for j in (0, 40, 65, 69, 1, 2)] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_grouped_split_keeps_each_block_whole_and_the_sizes_near_their_targets() -> None:
    rng = np.random.default_rng(0)
    names = [REBEN.format(tile=t, row=r, col=c) for t in ("T33UUP", "T32TNS") for r in range(40) for c in range(40)]
    where = grid(names)
    assert where is not None
    groups = blocks(where, 5)
    assert groups.max() + 1 == 2 * 8 * 8  # 5 x 5 squares of two 40 x 40 tiles
    rare = np.isin(groups, rng.choice(128, 12, replace=False))  # a label held by 12 blocks only
    Y = np.column_stack([rng.random(len(names)) < 0.5, rng.random(len(names)) < 0.1, rare])
    assignment = grouped_split(Y, groups, (0.6, 0.2, 0.2), seed=3)
    assert all(len(set(assignment[groups == g])) == 1 for g in range(128))
    sizes = np.bincount(assignment, minlength=3)
    assert np.all(np.abs(sizes - np.array([1920, 640, 640])) <= 25)  # within one block of each target
    assert all(Y[assignment == j, 2].any() for j in range(3))  # the rare label reaches every split
    assert np.array_equal(assignment, grouped_split(Y, groups, (0.6, 0.2, 0.2), seed=3))
    patchwise = quality(Y, grouped_split(Y, np.arange(len(names)), (0.6, 0.2, 0.2), seed=3), (0.6, 0.2, 0.2))
    assert patchwise["LD"] < quality(Y, assignment, (0.6, 0.2, 0.2))["LD"]  # blocks cost label balance
    assert max(touching(where, assignment, 3)) < 0.7 < min(touching(where, np.arange(len(names)) % 3, 3))


def test_blocks_stratified_on_country_give_every_split_its_share_of_a_small_country() -> None:
    """A country held by 5 of 128 blocks, in tiles of its own: stratified on the labels alone, the split of its blocks
    is left to chance; with the country as a stratum each split gets its 60/20/20 of them within a block."""
    names = [REBEN.format(tile=t, row=r, col=c) for t in ("T33UUP", "T32TNS") for r in range(40) for c in range(40)]
    where = grid(names)
    assert where is not None
    groups = blocks(where, 5)
    small = np.isin(groups, [3, 40, 77, 100, 120])
    rng = np.random.default_rng(2)
    Y = np.column_stack([rng.random(len(names)) < 0.5, rng.random(len(names)) < 0.1])
    country = pa.array(np.where(small, "Kosovo", "Finland").tolist())
    assert with_countries(Y, None) is Y and with_countries(Y, pa.nulls(len(names), pa.string())) is Y
    strata = with_countries(Y, country)
    assert strata.shape == (len(names), 4) and strata[:, 2:].sum(axis=1).tolist() == [1] * len(names)
    for seed in range(5):
        counts = country_counts(country, grouped_split(strata, groups, (0.6, 0.2, 0.2), seed), 3)
        assert list(counts) == ["Finland", "Kosovo"] and counts["Kosovo"] == [75, 25, 25]  # 3, 1 and 1 blocks
    partly = pa.array(["Serbia", None, "Serbia", None])
    assert country_counts(partly, np.array([0, 0, 1, 2]), 3) == {"Serbia": [1, 1, 0], "unknown": [1, 0, 1]}
    assert with_countries(np.zeros((4, 1), bool), partly)[:, 1:].tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]


def test_refine_lowers_label_imbalance_by_swaps_that_keep_the_sizes() -> None:
    rng = np.random.default_rng(1)
    C = (rng.random((125, 6)) < [0.5, 0.2, 0.1, 0.05, 0.03, 0.02]) * rng.integers(1, 25, (125, 6))
    sizes = np.full(125, 25)  # equal groups: the sizes cannot move within the 0.1% allowed
    start = rng.permutation(np.repeat(np.arange(3, dtype=np.int8), [75, 25, 25]))
    share = np.array([0.6, 0.2, 0.2])

    def ld(chosen: np.ndarray) -> float:
        S = np.stack([C[chosen == j].sum(axis=0) for j in range(3)])
        n = np.bincount(chosen, weights=sizes, minlength=3)
        return float(imbalance(S, n, C.sum(axis=0), int(sizes.sum())).sum())

    before = ld(start)
    chosen = refine(C, sizes, start.copy(), share, np.random.default_rng(0))
    assert np.bincount(chosen, minlength=3).tolist() == [75, 25, 25]  # swaps only: every split keeps its size
    assert ld(chosen) < before / 2


def test_block_is_refused_with_another_method(synth_v2: Path) -> None:
    with pytest.raises(SplitError, match=r"--block 10 with --method iterstrat: .* give --method fast"):
        SplitRequest(method="iterstrat", block=10)
    with pytest.raises(SplitError, match=r"--block 4 with --method iterstrat: .* give --method fast"):
        BuildConfig(spec=locate_archive(synth_v2), block=4)  # the build's default method is the paper's


def test_a_build_with_blocks_keeps_each_block_in_one_resampled_split(synth_v2: Path, tmp_path: Path) -> None:
    out = tmp_path / "blocks"
    result = CliRunner().invoke(main, ["build", str(synth_v2), "-o", str(out), "--method", "fast", "--block", "3",
                                       "--shard-size", "40", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    identity = json.loads((out / "build.json").read_text())
    assert identity["block"] == 3 and identity["block_strata"] == "labels and country"
    assert identity["block_grid"] == "utm zone"
    begun = out / ".ben-hub" / "build.json"  # a --block build begun before the country was a stratum is refused
    begun.parent.mkdir(exist_ok=True)
    begun.write_text(json.dumps({k: v for k, v in identity.items() if k not in ("block_strata", "block_grid")}))
    again = CliRunner().invoke(main, ["build", str(synth_v2), "-o", str(out), "--method", "fast", "--block", "3",
                                      "--shard-size", "40", "--quiet"])  # fmt: skip
    assert again.exit_code == 1 and "holds a build with other settings (block_grid" in again.output
    begun.unlink()
    rows = pq.read_table(out / "data", columns=["patch_id"]).to_pylist()  # the shard folders are the cells
    cells = {p.relative_to(out / "data").parts[0]: pq.read_table(p, columns=["patch_id"]).column(0).to_pylist()
             for p in sorted((out / "data").rglob("*.parquet"))}  # fmt: skip
    resampled = {pid: cell.split("-")[1] for cell, ids in cells.items() if cell != "excluded" for pid in ids}
    where = grid(list(resampled))
    assert where is not None and where.unit == "tile" and len(rows) == 120
    centres = name_points(list(resampled))
    assert centres is not None
    groups = plane_blocks(centres, 3)  # reBEN names: squares of the UTM zone's plane
    chosen = np.array([["train", "validation", "test"].index(s) for s in resampled.values()])
    assert all(len(set(chosen[groups == g])) == 1 for g in np.unique(groups))  # every square in one split
    assert len(set(chosen)) == 3
    card = (out / "README.md").read_text()
    assert (
        "whole squares of 3.6 km of each UTM zone (each patch by the centre its name and tile give; all dates" in card
    )
    recorded = json.loads((out / "stats.json").read_text())
    shares = touching(where, chosen.astype(np.int8), 3)
    assert recorded["spatial"]["touching"]["resampled"] == {s: round(v, 6) for s, v in zip(SPLITS, shares, strict=True)}
    said = ", ".join(f"{s} {recorded['spatial']['touching']['resampled'][s]:.1%}" for s in SPLITS)
    assert f"`resampled` {said}." in card
    assert verify(out)["card_skipped"] is None
    recorded["spatial"]["touching"]["resampled"]["test"] = 0.0  # an edited share is caught
    (out / "stats.json").write_text(json.dumps(recorded))
    with pytest.raises(RepoError, match=r"stats.json: spatial.touching.resampled.test: the shards give"):
        verify(out)
    del recorded["spatial"]  # a build from before the measure: the rest is checked
    (out / "stats.json").write_text(json.dumps(recorded))
    with pytest.raises(RepoError, match=r"README\.md (line \d+ differs|has \d+ lines)"):  # the card had the measure
        verify(out)
    unblocked = BuildConfig(spec=locate_archive(synth_v2), method="fast").identity()
    assert "block" not in unblocked  # builds without --block keep the identity (and digests) they had


def test_v1_names_are_placed_by_the_tile_their_tile_source_names() -> None:
    """v1 names carry the acquisition, not the tile: with each patch's ``tile_source`` they get the centre its
    reBEN name would give, so both dates of one place fall in one square; a tile source naming no tile is a NaN
    centre, and ``--block`` refuses it naming the patch."""
    v1 = [V1.format(date=date, row=x, col=5) for date in ("20170613", "20180110") for x in (87, 88)]
    sources = [f"S2A_MSIL1C_{date}T101031_N0205_R022_T33UUP_{date}T101608.SAFE" for date in ("20170613", "20180110")]
    points = name_points(v1, pa.array([sources[0]] * 2 + [sources[1]] * 2))
    reben = name_points([REBEN.format(tile="T33UUP", row=x, col=5) for x in (87, 88)])
    assert points is not None and reben is not None
    assert np.array_equal(points, np.concatenate([reben, reben]))  # both dates on the place the tile's grid gives
    assert name_points(v1) is None  # without tile sources: no tile, no centre
    groups = block_groups(v1, 10, pa.array([sources[0]] * 2 + [sources[1]] * 2))
    assert len(set(groups.tolist())) == 1  # 87 and 88 lie in one 12 km square, on both dates
    by_acquisition = block_groups(v1, 10)  # without tile sources: each acquisition's own grid
    assert by_acquisition[0] == by_acquisition[1] != by_acquisition[2] == by_acquisition[3]
    unknown = pa.array([sources[0], None, "S2A_MSIL1C_20170613_N0205_R022.SAFE", "S2A_MSIL1C_N0205_T33UIO_x.SAFE"])
    assert np.isnan(name_points(v1, unknown)[1:]).all()  # type: ignore[index]
    with pytest.raises(SplitError, match=r"tile_source of '.*_88_5' \(and 2 more\) names no tile .* drop --block"):
        block_groups(v1, 10, unknown)


def test_a_v1_build_with_blocks_keeps_both_dates_of_a_place_in_one_split(synth_v1: Path, tmp_path: Path) -> None:
    """The synthetic v1 archive holds tile 35VPK on two dates (20 places each): a ``--block`` build lays its squares
    by the tile the JSONs' ``tile_source`` names, so each place's two patches share a resampled split (squares of
    each acquisition's own grid would part most of them); ``split`` of the archive folder makes the same split and
    measures it by the names' centres."""
    out = tmp_path / "blocks"
    args = ["--method", "fast", "--block", "3"]
    result = CliRunner().invoke(main, ["build", str(synth_v1), "-o", str(out), *args, "--shard-size", "40",
                                       "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    identity = json.loads((out / "build.json").read_text())
    assert identity["block_grid"] == "utm zone" and identity["block_tiles"] == "tile_source"
    split_of = {}
    for path in sorted((out / "data").rglob("*.parquet")):
        cell = path.relative_to(out / "data").parts[0]
        table = pq.read_table(path, columns=["patch_id", "lon", "lat"]).to_pylist()
        split_of.update({(r["lon"], r["lat"], r["patch_id"]): cell.split("-")[1] for r in table if cell != "excluded"})
    places: dict[tuple[float, float], set[str]] = {}
    seen: dict[tuple[float, float], int] = {}
    for (lon, lat, _), split in split_of.items():
        places.setdefault((lon, lat), set()).add(split)
        seen[(lon, lat)] = seen.get((lon, lat), 0) + 1
    repeated = [place for place, count in seen.items() if count == 2]
    assert len(repeated) >= 15  # 35VPK's places on both dates (less any the official lists exclude)
    assert all(len(places[place]) == 1 for place in repeated)
    assert (
        "each patch by the centre its name and tile give, the tile from its `tile_source`"
        in (out / "README.md").read_text()
    )
    report = CliRunner().invoke(main, ["split", str(synth_v1), "-o", str(tmp_path / "split"), *args])
    assert report.exit_code == 0, report.output
    assigned = dict(line.split(",") for line in (tmp_path / "split" / "assignment.csv").read_text().splitlines()[1:])
    assert assigned == {patch: split for (_, _, patch), split in split_of.items()}
    quality_json = json.loads((tmp_path / "split" / "quality.json").read_text())
    assert quality_json["fast, 3x3 blocks"]["nearby_from"] == "names"
    assert "by the names' centres" in report.output
    again = CliRunner().invoke(main, ["split", str(out), "-o", str(tmp_path / "again"), *args])  # the built repository
    assert again.exit_code == 0, again.output  # its shards' tile_source places the v1 names the same way
    assert (tmp_path / "again" / "assignment.csv").read_text() == (tmp_path / "split" / "assignment.csv").read_text()
    assert verify(out)["card_skipped"] is None


def test_a_v1_block_build_refuses_a_json_whose_tile_source_names_no_tile(v1_copy: Path, tmp_path: Path) -> None:
    patch = sorted(p for p in (v1_copy / "BigEarthNet-v1.0").iterdir())[3]
    path = patch / f"{patch.name}_labels_metadata.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in doc.items() if k != "tile_source"}))
    result = CliRunner().invoke(main, ["build", str(v1_copy), "-o", str(tmp_path / "out"), "--method", "fast",
                                       "--block", "3", "--quiet"])  # fmt: skip
    assert result.exit_code == 1 and f"the tile_source of '{patch.name}' names no tile" in result.output
    assert "restore its labels_metadata.json from the archive, or drop --block" in result.output
    assert not (tmp_path / "out" / "manifest.json").exists()


@needs_shared()
def test_real_reben_labels_a_patch_level_split_puts_test_beside_train_and_blocks_do_not(tmp_path: Path) -> None:
    """On the 480,038 real reBEN patches: reBEN's own split keeps neighbours together; a patch-level re-split puts
    nearly every test patch beside (or on another date of) another split's; 10 x 10 blocks bring it back near."""
    source = str(V2_META / "metadata.parquet")
    runner = CliRunner()
    assert runner.invoke(main, ["split", source, "-o", str(tmp_path / "p")]).exit_code == 0
    result = runner.invoke(main, ["split", source, "-o", str(tmp_path / "b"), "--block", "10"])
    assert result.exit_code == 0, result.output
    patchwise = json.loads((tmp_path / "p" / "quality.json").read_text())
    blocked = json.loads((tmp_path / "b" / "quality.json").read_text())
    assert blocked["original"] == patchwise["original"] and patchwise["original"]["place"] == "tile"
    assert patchwise["original"]["touching"]["test"] < 0.1 < 0.99 < patchwise["fast"]["touching"]["test"]
    ours = blocked["fast, 10x10 blocks"]
    assert ours["touching"]["test"] < 0.35 and ours["block"] == 10
    # by the centres the names give, across a zone's neighbouring tiles: the squares on the zone's plane hold them
    assert ours["nearby_from"] == "names" and ours["nearby"]["test"] < 0.3
    assert patchwise["original"]["nearby"]["test"] < 0.1 < 0.99 < patchwise["fast"]["nearby"]["test"]
    assert (
        "By the centres the names give (each tile's MGRS square corner" in (tmp_path / "b" / "quality.md").read_text()
    )
    assert ours["LD"] < patchwise["original"]["LD"] / 10  # better balanced than reBEN's own split, blocks and all
    assert abs(ours["sizes"]["test"] - 96_008) < 500 and ours["zero_pairs"] == 0
    assert (
        "Patches next to a patch of another split, or at its place on another date"
        in (tmp_path / "b" / "quality.md").read_text()
    )
    assert json.loads((tmp_path / "b" / "request.json").read_text())["block"] == 10
    assert ours["stratified_on_country"] is True and len(ours["countries"]) == 10  # reBEN's ten countries
    for name, counts in ours["countries"].items():  # each country's patches 60/20/20 within 5 points
        assert np.allclose(np.array(counts) / sum(counts), [0.6, 0.2, 0.2], atol=0.05), (name, counts)
    belgium = np.array(patchwise["original"]["countries"]["Belgium"])  # reBEN's own split: Belgium barely tested
    assert belgium[2] / belgium.sum() < 0.02 and sum(sum(c) for c in ours["countries"].values()) == 480_038
    assert "countries farthest from the split sizes: Belgium, test 1.3% (all patches: 25.0%)" in result.output
    assert "| Kosovo | 1,616 |" in (tmp_path / "b" / "quality.md").read_text()


def caught_here_and_on_the_hub(
    out: Path, hub: FakeHub, recorded: dict[str, Any], edited: dict[str, Any], match: str
) -> None:
    """An ``edited`` stats.json is caught by ``verify`` (``match``); the ``recorded`` one, restored and pushed, passes
    ``verify`` on the Hub, and the edited one published there is caught there too."""
    (out / "stats.json").write_text(json.dumps(edited))
    with pytest.raises(RepoError, match=match):
        verify(out)
    (out / "stats.json").write_text(json.dumps(recorded, indent=2) + "\n")
    push(out, PushConfig("me/reben", endpoint=hub.url, backoff_s=0), progress=False)
    assert verify_remote(HubRepo("me/reben", endpoint=hub.url), progress=False)["patches"] == 120
    files = hub.snapshots[hub.heads[("me/reben", "main")]][1]
    files["stats.json"] = json.dumps(edited).encode()
    with pytest.raises(RepoError, match=match):
        verify_remote(HubRepo("me/reben", endpoint=hub.url), progress=False)


def test_a_build_gives_each_countrys_share_per_split_and_verify_recounts_it(
    synth_v2: Path, built_v1: Path, tmp_path: Path, hub: FakeHub
) -> None:
    """stats.json's ``countries`` (per configuration, each country's patches per split) agrees with the shards, the
    card tables it, and ``verify`` recounts it, locally and on the Hub; a v1 build without countries has none."""
    out = tmp_path / "repo"
    build(BuildConfig(spec=locate_archive(synth_v2), method="fast", shard_size=40), out, progress=False)
    recorded = json.loads((out / "stats.json").read_text())
    expected: dict[str, dict[str, list[int]]] = {"original": {}, "resampled": {}}
    for path in sorted((out / "data").rglob("*.parquet")):
        cell = path.parent.name
        if cell == "excluded":
            continue
        for country in pq.read_table(path, columns=["country"]).column(0).to_pylist():
            for config, split in zip(("original", "resampled"), cell.split("-"), strict=True):
                expected[config].setdefault(country, [0, 0, 0])[SPLITS.index(split)] += 1
    assert recorded["countries"] == {c: dict(sorted(v.items())) for c, v in expected.items()}
    card = (out / "README.md").read_text()
    assert "| country | patches | original train | original validation | original test | resampled train |" in card
    name, counts = next(iter(recorded["countries"]["resampled"].items()))
    assert f"| {name} | {sum(counts):,} |" in card and "the country farthest from the split sizes: `original` " in card
    verify(out)
    edited = json.loads(json.dumps(recorded))
    edited["countries"]["resampled"][name][0] += 1
    caught_here_and_on_the_hub(
        out, hub, recorded, edited, rf"stats.json: countries.resampled.{name}\[0\]: the shards give"
    )
    v1 = json.loads((built_v1 / "stats.json").read_text())
    assert v1["countries"] is None and "Each country" not in (built_v1 / "README.md").read_text()


def tile_centres(epsg: int, ulx: float, uly: float, side: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tile's grid of ``side x side`` 1.2 km patches from its upper-left corner: rows, cols and WGS84 centres."""
    rows, cols = (a.ravel() for a in np.meshgrid(np.arange(side), np.arange(side), indexing="ij"))
    centres = np.array(
        [utm_to_lonlat(ulx + 1200 * c + 600, uly - 1200 * r - 600, epsg) for r, c in zip(rows, cols, strict=True)]
    )
    return rows, cols, centres


def test_nearby_by_coordinates_is_the_grid_measure_on_one_tile_and_also_finds_overlapping_tiles() -> None:
    """On one tile's grid, centres within 1.8 km are exactly the 8-neighbourhood (and a place's other dates) of the
    name measure, for patch-level and block splits; across tiles whose grids overlap (origins 40 m apart, as
    neighbouring Sentinel-2 tiles' are) or lie in two UTM zones, it finds the neighbours that names do not."""
    rng = np.random.default_rng(4)
    rows, cols, centres = tile_centres(32633, 399960.0, 5500020.0)
    rows, cols = np.concatenate([rows, rows[:200]]), np.concatenate([cols, cols[:200]])  # 200 places on a 2nd date
    centres = np.concatenate([centres, centres[:200]])
    names = [REBEN.format(tile="T33UUP", row=r, col=c) for r, c in zip(rows, cols, strict=True)]
    names[-200:] = [name.replace("20170613", "20180110") for name in names[-200:]]
    where = grid(names)
    assert where is not None
    patchwise = rng.integers(0, 3, len(names)).astype(np.int8)
    blockwise = rng.integers(0, 3, 64)[blocks(where, 4)].astype(np.int8)
    for assignment in (patchwise, blockwise):
        assert nearby(centres[:, 0], centres[:, 1], assignment, 3) == touching(where, assignment, 3)
    assert nearby(centres[:, 0], centres[:, 1], np.zeros(len(names), np.int8), 3) == [0.0, 0.0, 0.0]
    # a second tile 24 patches east whose grid starts 40 m further (it overlaps the first's last 6 columns)
    _, _, east = tile_centres(32633, 399960.0 + 24 * 1200 + 40, 5500020.0)
    lon, lat = np.concatenate([centres[:900, 0], east[:, 0]]), np.concatenate([centres[:900, 1], east[:, 1]])
    split = np.r_[np.zeros(900, np.int8), np.full(900, 2, np.int8)]  # one tile in train, the other in test
    named = grid([REBEN.format(tile="T33UUP", row=r, col=c) for r, c in zip(rows[:900], cols[:900], strict=True)]
                 + [REBEN.format(tile="T33UVP", row=i // 30, col=i % 30) for i in range(900)])  # fmt: skip
    assert named is not None and touching(named, split, 3) == [0.0, 0.0, 0.0]  # names: two places apart
    shares = nearby(lon, lat, split, 3)
    assert shares[0] == pytest.approx(7 * 30 / 900) and shares[2] == pytest.approx(7 * 30 / 900)  # 6 over, 1 beside
    unplaced = nearby(np.r_[lon, np.nan], np.r_[lat, np.nan], np.r_[split, 1].astype(np.int8), 3)
    assert unplaced == shares  # a patch without coordinates (split 1's only one) is left out
    # across UTM zones: zone 33's column of patches at its west edge (12 E), and one in zone 32 beside it
    from pyproj import Transformer

    column = np.array([utm_to_lonlat(284000.0 + 600, 5320000.0 - 1200 * r - 600, 32633) for r in range(10)])
    assert np.all(np.abs(column[:, 0] - 12.0) < 0.2)
    to_32 = Transformer.from_crs(4326, 32632, always_xy=True)
    for gap, expected in ((1100.0, 1.0), (2500.0, 0.0)):  # centre to centre, westwards in zone 32's grid
        x, y = to_32.transform(column[:, 0], column[:, 1])
        beside = np.array([utm_to_lonlat(e - gap, n, 32632) for e, n in zip(x, y, strict=True)])
        both = np.concatenate([column, beside])
        across = nearby(both[:, 0], both[:, 1], np.r_[np.zeros(10), np.full(10, 2)].astype(np.int8), 3)
        assert across == [expected, 0.0, expected]


def test_a_build_measures_nearby_patches_by_coordinates_and_verify_recounts_it(
    synth_v2: Path, built_v1: Path, tmp_path: Path, hub: FakeHub
) -> None:
    """stats.json's ``nearby`` is :func:`nearby` of the shards' lon/lat per configuration: with reBEN names, which
    carry the tile, the names' measure exactly (the synthetic tiles lie apart, their dates on one grid); with v1
    names more, as they do not tell a tile's other dates (the synthetic T35VPK has two); the card says both; verify
    recounts it locally and on the Hub, and a stats.json from before the measure is checked without it."""
    out = tmp_path / "repo"
    build(BuildConfig(spec=locate_archive(synth_v2), method="fast", shard_size=40), out, progress=False)
    recorded = json.loads((out / "stats.json").read_text())
    lon: list[float] = []
    lat: list[float] = []
    splits: dict[str, list[int]] = {"original": [], "resampled": []}
    for path in sorted((out / "data").rglob("*.parquet")):
        if path.parent.name != "excluded":
            table = pq.read_table(path, columns=["lon", "lat"])
            lon += table.column("lon").to_pylist()
            lat += table.column("lat").to_pylist()
            for config, split in zip(splits, path.parent.name.split("-"), strict=True):
                splits[config] += [SPLITS.index(split)] * table.num_rows
    for config, assignment in splits.items():
        shares = nearby(np.array(lon), np.array(lat), np.array(assignment, np.int8), 3)
        assert recorded["nearby"]["touching"][config] == {s: round(v, 6) for s, v in zip(SPLITS, shares, strict=True)}
        assert recorded["nearby"]["touching"][config] == recorded["spatial"]["touching"][config]
    v1 = json.loads((built_v1 / "stats.json").read_text())
    for config in splits:
        near, named = v1["nearby"]["touching"][config], v1["spatial"]["touching"][config]
        assert all(near[s] >= named[s] for s in SPLITS) and sum(near.values()) > sum(named.values()) + 0.05
    assert recorded["nearby"]["reach_m"] == 1800.0
    card = (out / "README.md").read_text()
    said = ", ".join(f"{s} {recorded['nearby']['touching']['resampled'][s]:.1%}" for s in SPLITS)
    assert "By the patches' coordinates (centres within 1.8 km of a patch of another split" in card
    assert f"`resampled` {said}." in card
    verify(out)
    edited = json.loads(json.dumps(recorded))
    edited["nearby"]["touching"]["original"]["test"] = 0.5
    caught_here_and_on_the_hub(
        out, hub, recorded, edited, r"stats.json: nearby.touching.original.test: the shards give"
    )
    split_out = tmp_path / "split"  # `split` of the built repository measures both splits by coordinates too
    result = CliRunner().invoke(main, ["split", str(out), "-o", str(split_out), "--block", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads((split_out / "quality.json").read_text())
    assert report["original"]["nearby"] == pytest.approx(recorded["nearby"]["touching"]["original"], abs=1e-6)
    centres = {}
    for path in sorted((out / "data").rglob("*.parquet")):
        centres.update(
            {
                r["patch_id"]: (r["lon"], r["lat"])
                for r in pq.read_table(path).select(["patch_id", "lon", "lat"]).to_pylist()
            }
        )
    assigned = [line.split(",") for line in (split_out / "assignment.csv").read_text().splitlines()[1:]]
    where = np.array([centres[patch] for patch, _ in assigned])
    chosen = np.array([SPLITS.index(split) for _, split in assigned], np.int8)
    shares = nearby(where[:, 0], where[:, 1], chosen, 3)
    assert report["fast, 3x3 blocks"]["nearby"] == dict(zip(SPLITS, shares, strict=True))
    assert f"by coordinates train {shares[0]:.1%}" in result.output
    assert "By the patches' coordinates (centres within 1.8 km" in (split_out / "quality.md").read_text()
    del recorded["nearby"]  # a build from before the measure: the rest is checked (the card then differs)
    (out / "stats.json").write_text(json.dumps(recorded))
    with pytest.raises(RepoError, match=r"README\.md (line \d+ differs|has \d+ lines)"):
        verify(out)


def test_names_give_centres_and_blocks_on_the_zone_plane_hold_neighbouring_tiles_shared_ground() -> None:
    """A reBEN name's tile (its MGRS square's corner) and steps give its centre as its GeoTIFF does; squares laid on
    the UTM zone's plane put the ground two neighbouring tiles share in the same squares, so a block split leaves
    far fewer test patches within 1.8 km of another split's than squares of each tile's own grid."""
    name = "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"  # an example patch: B02 at (404400, 5342400)
    point = name_points([name])
    assert point is not None and np.allclose(point, [[404400 + 600, 5342400 - 600, 33 * ZONE_SPACING_M]], atol=40)
    assert name_points(["S2A_MSIL2A_20170613T101031_87_48"]) is None  # v1 names do not give the tile
    names = [
        REBEN.format(tile=tile, row=x, col=y) for tile in ("T33UUP", "T33UVP") for x in range(91) for y in range(30)
    ]
    points = name_points(names)
    assert points is not None
    east = points[2730:]  # T33UVP's first column lies 100 km east of T33UUP's: on T33UUP's columns 83 and on
    assert np.allclose(east[0, :2] - points[83 * 30, :2], [400, 0])
    where = grid(names)
    assert where is not None
    rng = np.random.default_rng(5)
    for_tiles, for_zone = blocks(where, 10), plane_blocks(points, 10)
    tile_split = rng.integers(0, 3, for_tiles.max() + 1)[for_tiles].astype(np.int8)
    zone_split = rng.integers(0, 3, for_zone.max() + 1)[for_zone].astype(np.int8)
    leaked = [nearby_points(points, split, 3)[2] for split in (tile_split, zone_split)]
    assert leaked[1] < leaked[0] - 0.1  # the shared strip no longer leaks
    shared = np.abs(east[:, None, 0] - points[None, :2730, 0]).min(axis=1) < 600  # UVP patches on UUP's ground
    same = (
        for_zone[2730:][shared]
        == for_zone[:2730][np.argmin(np.abs(points[:2730, None, :2] - east[None, shared, :2]).sum(axis=2), axis=0)]
    )
    assert same.mean() > 0.6  # in the same square as the UUP patch nearest (all but those a square's edge splits)


@needs_shared()
def test_the_centres_reben_names_give_are_the_example_patches_geotiffs_within_40_m() -> None:
    """All six real example patches (v1 names, joined to their reBEN names by ``s2v1_name``): the centre that
    name_points gives from the reBEN name is B02's tie point plus half a patch, within 40 m (tiles' offsets); from the
    v1 name and its JSON's ``tile_source``, exactly the same."""
    from ben_hub.tiff import read_geoinfo

    paths = [V2_META / "metadata.parquet", V2_META / "metadata_for_patches_with_snow_cloud_or_shadow.parquet"]
    table = pa.concat_tables([pq.read_table(p, columns=["patch_id", "s2v1_name"]) for p in paths])
    renamed = dict(zip(table.column("s2v1_name").to_pylist(), table.column("patch_id").to_pylist(), strict=True))
    names, expected, v1_names, sources = [], [], [], []
    for folder in sorted((EXAMPLE / "BigEarthNet-S2-Example").iterdir()):
        geo = read_geoinfo((folder / f"{folder.name}_B02.tif").read_bytes())
        assert geo is not None and geo.epsg is not None
        names.append(renamed[folder.name])
        expected.append([geo.ulx + 600, geo.uly - 600, (geo.epsg - 32600) * ZONE_SPACING_M])
        doc = json.loads((folder / f"{folder.name}_labels_metadata.json").read_text())
        v1_names.append(folder.name)
        sources.append(doc["tile_source"])
    points = name_points(names)
    assert len(names) == 6 and points is not None
    assert np.abs(points - np.array(expected)).max() <= 40
    # v1 names lack the tile; their JSONs' tile_source (the L1C product) gives it, and the same centres
    assert name_points(v1_names) is None
    from_v1 = name_points(v1_names, pa.array(sources))
    assert from_v1 is not None and np.array_equal(from_v1, points)
