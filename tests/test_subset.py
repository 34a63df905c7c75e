"""``--subset``: an archive folder with part of BigEarthNet builds from the patches it has; the ones the lists
(v1) or the metadata (v2) name but it lacks are counted, not errors, and nothing else changes."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub.archive import ArchiveSpec, locate_archive
from ben_hub.build import BuildConfig, build
from ben_hub.cli import main
from ben_hub.errors import ArchiveError, PatchError

from .conftest import SPLITS, V2_META, needs_shared, v1_config
from .test_build_real import S1, S2, example_lists, example_repo  # noqa: F401  (the real patches, cut-down lists)
from .test_tarball import make_tar


@needs_shared()
def test_real_patches_with_the_full_official_lists_build_the_same_shards(
    example_repo: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The six real patches against the whole published lists (519,284 official patches, in place): the same
    shards, byte for byte, as a build whose lists were cut down to the six; 519,279 listed patches counted."""
    config = BuildConfig(spec=ArchiveSpec("v1", s2=S2, s1=S1), method="lists", lists_dir=SPLITS,
                         resampled_lists_dir=SPLITS / "resampled-paper", countries=V2_META / "metadata.parquet",
                         subset=True)  # fmt: skip
    with pytest.raises(PatchError, match=r"\(nor are 519,278 other listed patches\); .* pass --subset"):
        build(BuildConfig(spec=config.spec, lists_dir=SPLITS, method="lists"), tmp_path / "whole", progress=False)
    out = tmp_path / "subset"
    result = build(config, out, progress=False)
    assert result is not None
    cut = json.loads((example_repo / "manifest.json").read_text())
    assert result["shards"] == cut["shards"] and result["splits"] == cut["splits"]
    assert result["absent_from_archive"] == 519_284 - 5  # the sixth patch (seasonal snow) is in no official list
    assert "absent_from_archive" not in cut and json.loads((out / "skipped.json").read_text()) == []
    assert json.loads((out / "build.json").read_text())["subset"] is True
    card = (out / "README.md").read_text()
    assert "519,279 patches named by the official split lists are not in it" in card


def test_a_v1_folder_missing_listed_patches_builds_from_the_cli(v1_copy: Path, tmp_path: Path) -> None:
    listed = (v1_copy / "splits" / "original" / "test.csv").read_text().split()[:2]
    for patch in listed:
        shutil.rmtree(v1_copy / "BigEarthNet-v1.0" / patch)
    out = tmp_path / "out"
    args = ["build", str(v1_copy), "--no-s1", "--shard-size", "40", "--quiet"]
    done = CliRunner().invoke(main, [*args, "-o", str(out), "--subset"])
    assert done.exit_code == 0, done.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["absent_from_archive"] == 2 and manifest["rows"] == 158
    assert "2 patches named by the official split lists are not in it" in (out / "README.md").read_text()
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "strict")])
    assert done.exit_code == 1 and "(nor is 1 other listed patch); complete" in done.output, done.output
    assert "pass --subset if it is meant to hold part of BigEarthNet" in done.output


def test_a_v2_folder_missing_patches_builds_from_those_present(synth_v2: Path, tmp_path: Path) -> None:
    archive = Path(shutil.copytree(synth_v2, tmp_path / "archive"))
    folders = sorted(p for tile in (archive / "BigEarthNet-S2").iterdir() for p in tile.iterdir())
    for folder in folders[:3]:
        shutil.rmtree(folder)
    spec = locate_archive(archive)
    out = tmp_path / "out"
    result = build(BuildConfig(spec=spec, shard_size=50, subset=True), out, progress=False)
    assert result is not None and result["absent_from_archive"] == 3 and result["rows"] == 117
    written = pq.read_table(sorted(out.glob("data/*/*.parquet")), columns=["patch_id"]).column(0).to_pylist()
    assert len(written) == 117 and not {f.name for f in folders[:3]} & set(written)
    assert "3 patches named by `metadata.parquet` are not in it" in (out / "README.md").read_text()
    first = folders[0].name  # without --subset: named before any shard is written, with the ways out
    said = rf"patch {first}: metadata.parquet lists it, but .* has no folder .*/{first} \(nor are 2 other patches"
    with pytest.raises(PatchError, match=rf"{said} it lists\); .* --subset .* --skip-bad"):
        build(BuildConfig(spec=spec, shard_size=50), tmp_path / "strict", progress=False)
    assert not (tmp_path / "strict" / "data").exists()
    skipped = build(BuildConfig(spec=spec, shard_size=50, skip_bad=True), tmp_path / "skipped", progress=False)
    assert skipped is not None and skipped["rows"] == 117 and "absent_from_archive" not in skipped
    recorded = json.loads((tmp_path / "skipped" / "skipped.json").read_text())
    assert sorted(r["patch_id"] for r in recorded) == sorted(f.name for f in folders[:3])
    assert {r["reason"] for r in recorded} == {"absent_from_archive"}


def test_a_tarball_subset_is_refused_with_the_fix(synth_v1: Path, tmp_path: Path) -> None:
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar.gz")
    config = BuildConfig(spec=locate_archive(tarball), lists_dir=synth_v1 / "splits", subset=True)
    with pytest.raises(ArchiveError, match=r"--subset needs an unpacked archive folder.*unpack it, or drop --subset"):
        build(config, tmp_path / "out", progress=False)


def test_a_complete_archive_builds_the_same_bytes_with_or_without_subset(
    built_v1: Path, synth_v1: Path, tmp_path: Path
) -> None:
    """``--subset`` on an archive that lacks nothing changes only what it must: the counted zero, its flag."""
    out = tmp_path / "subset-of-complete"
    result = build(v1_config(synth_v1, subset=True), out, progress=False)
    assert result is not None and result["absent_from_archive"] == 0
    complete = json.loads((built_v1 / "manifest.json").read_text())
    assert result["shards"] == complete["shards"]


@needs_shared()
def test_split_reports_the_real_patches_present_against_the_whole_lists(tmp_path: Path) -> None:
    """``ben-hub split --subset`` on a folder of the six real patches, the published lists read in place: the
    five official ones are split and scored; without ``--subset`` the 519,279 absent ones stop it."""
    args = ["split", str(S2.parent), "-o", str(tmp_path / "s"), "--lists-dir", str(SPLITS), "--method", "random"]
    done = CliRunner().invoke(main, [*args, "--subset"])
    assert done.exit_code == 0, done.output
    reports = json.loads((tmp_path / "s" / "quality.json").read_text())
    assert reports["original"]["rows"] == reports["random"]["rows"] == 5
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 1 and "nor are 519,278 other listed patches" in done.output
