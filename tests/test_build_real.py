"""The six real BigEarthNet v1.0 patches in ../shared, built and read back through ``datasets``."""

import json
from dataclasses import replace
from pathlib import Path

import datasets
import numpy as np
import pytest
import tifffile

from ben_hub.archive import ArchiveSpec
from ben_hub.build import BuildConfig, build
from ben_hub.labels import LABELS_43
from ben_hub.lists import PUBLIC_LISTS

from .conftest import EXAMPLE, SPLITS, V2_META, needs_shared

pytestmark = needs_shared()
S2 = EXAMPLE / "BigEarthNet-S2-Example"
S1 = EXAMPLE / "BigEarthNet-S1-Example"
SNOW = "S2B_MSIL2A_20180204T94161_57_38"


@pytest.fixture(scope="module")
def example_lists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official lists cut down to the six patches (read from ../shared in place)."""
    names = {p.name for p in S2.iterdir()}
    lists_dir = tmp_path_factory.mktemp("lists")
    for key in ("original/train", "original/validation", "original/test", "cloud_or_shadow", "seasonal_snow"):
        rel = PUBLIC_LISTS[key].relpath
        lines = [line for line in (SPLITS / rel).read_text().splitlines() if line.strip() in names]
        (lists_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (lists_dir / rel).write_bytes("".join(f"{n}\r\n" for n in lines).encode())
    return lists_dir


def example_config(spec: ArchiveSpec, lists_dir: Path) -> BuildConfig:
    return BuildConfig(
        spec=spec,
        method="lists",
        lists_dir=lists_dir,
        resampled_lists_dir=SPLITS / "resampled-paper",
        countries=V2_META / "metadata.parquet",
    )


@pytest.fixture(scope="module")
def example_repo(example_lists: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The six real patches, S2 and S1, built from their folders."""
    out = tmp_path_factory.mktemp("repo") / "balanced-bigearthnet"
    build(example_config(ArchiveSpec("v1", s2=S2, s1=S1), example_lists), out, progress=False)
    return out


def test_splits_follow_the_official_and_paper_lists(example_repo: Path) -> None:
    original = datasets.load_dataset(str(example_repo), "original")
    ids = {split: sorted(original[split]["patch_id"]) for split in original}
    assert ids == {
        "train": [
            "S2A_MSIL2A_20170617T113321_36_85",
            "S2A_MSIL2A_20170617T113321_4_55",
            "S2A_MSIL2A_20171221T112501_56_35",
            "S2B_MSIL2A_20170924T93020_69_24",
        ],
        "test": ["S2A_MSIL2A_20170613T101031_87_48"],
    }
    resampled = datasets.load_dataset(str(example_repo), "resampled")
    assert sorted(resampled["validation"]["patch_id"]) == [
        "S2A_MSIL2A_20170617T113321_36_85",
        "S2A_MSIL2A_20171221T112501_56_35",
        "S2B_MSIL2A_20170924T93020_69_24",
    ]
    assert resampled["train"]["patch_id"] == ["S2A_MSIL2A_20170617T113321_4_55"]
    # the paper's published lists are recorded as the paper's (by their pinned content), not as a digest
    assert "resampled_lists" not in json.loads((example_repo / "build.json").read_text())
    assert "by `lists`: the split lists published with the paper." in (example_repo / "README.md").read_text()
    excluded = datasets.load_dataset(str(example_repo), "excluded", split="excluded")
    assert excluded["patch_id"] == [SNOW] and excluded["seasonal_snow"] == [True]
    assert excluded["country"] == ["Finland"]  # joined from reBEN's metadata by s2v1_name
    assert dict(zip(original["train"]["patch_id"], original["train"]["country"], strict=True)) == {
        "S2A_MSIL2A_20170617T113321_36_85": "Ireland",
        "S2A_MSIL2A_20170617T113321_4_55": "Ireland",
        "S2A_MSIL2A_20171221T112501_56_35": "Portugal",
        "S2B_MSIL2A_20170924T93020_69_24": "Finland",
    }


def test_pixels_labels_and_geo_equal_the_geotiffs_and_json(example_repo: Path) -> None:
    rows = datasets.concatenate_datasets(
        [
            *list(datasets.load_dataset(str(example_repo), "original").values()),
            datasets.load_dataset(str(example_repo), "excluded", split="excluded"),
        ]
    )
    assert len(rows) == 6
    features = rows.features
    for row in rows:
        patch = row["patch_id"]
        meta = json.loads((S2 / patch / f"{patch}_labels_metadata.json").read_text())
        for path in sorted((S2 / patch).glob("*.tif")):
            band = path.stem.rsplit("_", 1)[1]
            ref = tifffile.imread(path)
            got = np.asarray(row[band], dtype=ref.dtype)
            assert got.shape == ref.shape and got.tobytes() == ref.tobytes(), (patch, band)
        s1 = row["s1_patch_id"]
        for pol in ("VV", "VH"):
            ref = tifffile.imread(S1 / s1 / f"{s1}_{pol}.tif")
            assert np.asarray(row[pol], dtype=np.float32).tobytes() == ref.tobytes()
        assert [features["labels"].feature.int2str(i) for i in row["labels"]] == sorted(
            meta["labels"], key=LABELS_43.index
        )
        c = meta["coordinates"]
        assert (row["ulx"], row["uly"], row["lrx"], row["lry"]) == (c["ulx"], c["uly"], c["lrx"], c["lry"])
        assert str(row["acquisition_time"]) == meta["acquisition_date"]
        assert f"_T{row['epsg'] % 100:02d}" in meta["tile_source"]


def test_numpy_format_pitfalls_are_real_and_avoided(example_repo: Path) -> None:
    train = datasets.load_dataset(str(example_repo), "original", split="train")
    assert train.with_format("numpy")[0]["B02"].dtype == np.int64  # the documented datasets pitfall
    assert train.with_format("numpy", dtype=np.uint16)[0]["B02"].dtype == np.uint16
    assert train.features["B02"] == datasets.Array2D((120, 120), "uint16")
    assert train.features["VV"] == datasets.Array2D((120, 120), "float32")


def test_real_patches_from_both_tarballs_build_the_same_repository(
    example_repo: Path, example_lists: Path, tmp_path: Path
) -> None:
    """The six real patches packed as the two v1 downloads (S2 streamed, S1 staged) give the folder build's bytes,
    with one process or two writer processes."""
    from .test_build_synth import tree_digest
    from .test_tarball import make_tar

    spec = ArchiveSpec("v1", s2=make_tar(S2, tmp_path / "s2.tar.gz"), s1=make_tar(S1, tmp_path / "s1.tar.gz"))
    for workers in (1, 2):  # read and written by one process, or written by two beside the one reading
        out = tmp_path / f"from-tarballs-{workers}"
        build(replace(example_config(spec, example_lists), workers=workers), out, progress=False)
        assert tree_digest(out) == tree_digest(example_repo)


def test_real_repository_equals_its_archive_as_verify_archive_sees_it(example_repo: Path, tmp_path: Path) -> None:
    """``verify --archive`` on real data: all six patches, 14 bands bit for bit, from the folders and the tarballs."""
    from ben_hub.audit import audit

    from .test_tarball import make_tar

    folders = audit(example_repo, ArchiveSpec("v1", s2=S2, s1=S1))
    tarballs = ArchiveSpec("v1", s2=make_tar(S2, tmp_path / "s2.tar.gz"), s1=make_tar(S1, tmp_path / "s1.tar.gz"))
    streamed = audit(example_repo, tarballs)
    for report in (folders, streamed):
        assert report.ok and report.compared == report.stored == 6 and len(report.bands) == 14


def test_the_cards_examples_are_the_real_training_patches_in_true_colour(example_repo: Path) -> None:
    """Each picture is B04, B03, B02 of the patch's own GeoTIFFs, stretched (:func:`true_colour`)."""
    from ben_hub.gallery import pick_examples, read_rgb, true_colour

    picks = pick_examples(example_repo)
    train = set(datasets.load_dataset(str(example_repo), "resampled", split="train")["patch_id"])
    assert picks and {p["patch_id"] for p in picks} <= train
    for pick in picks:
        red, green, blue = (tifffile.imread(S2 / pick["patch_id"] / f"{pick['patch_id']}_{b}.tif") for b in
                            ("B04", "B03", "B02"))  # fmt: skip
        assert np.array_equal(read_rgb(example_repo, pick["shard"], pick["row"]), true_colour(red, green, blue))
    assert (example_repo / "examples.png").read_bytes()[:4] == b"\x89PNG"


def test_a_split_the_six_patches_leave_empty_is_named_by_the_reader_and_the_card(example_repo: Path) -> None:
    """No example patch is in the official validation list: the reader says so, not that the bands are missing."""
    from ben_hub.errors import RepoError
    from ben_hub.loader import LoaderConfig, SplitReader

    assert SplitReader(example_repo, "train", LoaderConfig(config="original")).rows == 4
    with pytest.raises(RepoError, match=r"'original' has no validation patch \(its splits here: train 4, test 1\); "
                                        r"a build of few patches \(6 here\)"):  # fmt: skip
        SplitReader(example_repo, "validation", LoaderConfig(config="original"))
    card = (example_repo / "README.md").read_text(encoding="utf-8")
    assert "`original` is not measured: its validation split is empty in this build." in card
    quality = card.split("## Split quality")[1].split("##")[0]
    assert "| resampled | " in quality and "| original | " not in quality
    assert "Patches next to a patch of another split" in quality and "`original` train" not in quality
    shards = json.loads((example_repo / "manifest.json").read_text())["shards"]
    assert "| validation | 0 | 0 | 0 | 0 |" in card  # the empty official validation split: a row of zeros
    shared = sum(shard["rows"] for shard in shards if shard["cell"] == "test-test")
    said = f"The {shared} patch" if shared else "No patch is in both configurations' test split"
    train = sum(shard["rows"] for shard in shards if shard["cell"].endswith("-train"))
    assert said in card and f"| all | {train} | " in card  # resampled's train split, from every official one


def test_countries_of_real_v1_patches_in_the_build_and_in_a_split_report(
    example_repo: Path, example_lists: Path, tmp_path: Path
) -> None:
    """With reBEN's metadata (``--countries``), the build counts each country's patches per split and the card tables
    them; ``split --countries`` of the same archive reports the same counts for the official split; a source that
    carries its own countries refuses the option."""
    from click.testing import CliRunner

    from ben_hub.cli import main

    stats = json.loads((example_repo / "stats.json").read_text())
    assert stats["countries"]["original"]["Ireland"] == [2, 0, 0] and stats["countries"]["original"]["Portugal"] == [
        1, 0, 0]  # fmt: skip
    assert "| Ireland | 2 | 100.0% | 0.0% | 0.0% |" in (example_repo / "README.md").read_text()
    out = tmp_path / "split"
    args = ["split", str(S2), "-o", str(out), "--lists-dir", str(example_lists), "--method", "random"]
    result = CliRunner().invoke(main, [*args, "--countries", str(V2_META / "metadata.parquet")])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "quality.json").read_text())["original"]["countries"] == stats["countries"]["original"]
    assert "| Ireland | 2 | 100.0% | 0.0% | 0.0% |" in (out / "quality.md").read_text()
    plain = CliRunner().invoke(main, [*args[:3], str(tmp_path / "plain"), *args[4:]])
    assert plain.exit_code == 0 and "countries" not in json.loads((tmp_path / "plain" / "quality.json").read_text())[
        "original"]  # fmt: skip
    refused = CliRunner().invoke(main, ["split", str(V2_META / "metadata.parquet"), "-o", str(tmp_path / "r"),
                                        "--countries", "reben"])  # fmt: skip
    assert refused.exit_code == 1 and "--countries fills a v1 archive's country" in refused.output
