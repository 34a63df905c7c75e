"""Every kind of bad input stops the build with a message naming the patch and file, or is skipped and
recorded with ``skip_bad``; nothing is lost silently."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub.archive import locate_archive
from ben_hub.build import BuildConfig, build
from ben_hub.cli import main
from ben_hub.errors import PatchError
from ben_hub.tiff import write_tiff

from .conftest import v1_config


def first_patch(archive: Path) -> Path:
    return sorted((archive / "BigEarthNet-v1.0").iterdir())[0]


def damage_band(data: Callable[[bytes], bytes], band: str = "B03") -> Callable[[Path], str]:
    def apply(archive: Path) -> str:
        folder = first_patch(archive)
        path = folder / f"{folder.name}_{band}.tif"
        path.write_bytes(data(path.read_bytes()))
        return str(path)

    return apply


def remove_band(archive: Path) -> str:
    folder = first_patch(archive)
    (folder / f"{folder.name}_B11.tif").unlink()
    return str(folder / f"{folder.name}_B11.tif")


def edit_json(change: Callable[[dict], object]) -> Callable[[Path], str]:
    def apply(archive: Path) -> str:
        folder = first_patch(archive)
        path = folder / f"{folder.name}_labels_metadata.json"
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))
        return str(path)

    return apply


def malformed_json(archive: Path) -> str:
    folder = first_patch(archive)
    path = folder / f"{folder.name}_labels_metadata.json"
    path.write_text(path.read_text()[:-10])
    return str(path)


def missing_json(archive: Path) -> str:
    folder = first_patch(archive)
    path = folder / f"{folder.name}_labels_metadata.json"
    path.unlink()
    return str(path)


CASES = {
    "missing_band": (remove_band, "missing_band"),
    "truncated_tif": (damage_band(lambda b: b[: len(b) // 2]), "bad_tif"),
    "corrupt_tif": (damage_band(lambda b: b"garbage" + b[7:]), "bad_tif"),
    "wrong_shape": (damage_band(lambda b: write_tiff(np.zeros((60, 60), np.uint16))), "bad_tif"),
    "wrong_dtype": (damage_band(lambda b: write_tiff(np.zeros((120, 120), np.float32))), "bad_tif"),
    "malformed_json": (malformed_json, "bad_json"),
    "missing_json": (missing_json, "missing_json"),
    "unknown_label": (edit_json(lambda d: d.update(labels=["Moon craters"])), "unknown_label"),
    "empty_labels": (edit_json(lambda d: d.update(labels=[])), "empty_labels"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_patch_stops_the_build_naming_patch_and_file(v1_copy: Path, tmp_path: Path, case: str) -> None:
    damage, reason = CASES[case]
    path = damage(v1_copy)
    patch = first_patch(v1_copy).name
    with pytest.raises(PatchError) as info:
        build(v1_config(v1_copy), tmp_path / "out", progress=False)
    assert info.value.patch_id == patch and info.value.reason == reason
    assert patch in str(info.value) and (info.value.path is None or info.value.path == path)
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("case", ["truncated_tif", "unknown_label"])
def test_skip_bad_records_the_patch_and_the_reason(v1_copy: Path, tmp_path: Path, case: str) -> None:
    damage, reason = CASES[case]
    damage(v1_copy)
    patch = first_patch(v1_copy).name
    result = build(v1_config(v1_copy, skip_bad=True), tmp_path / "out", progress=False)
    assert result is not None and result["rows"] == 159
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [(s["patch_id"], s["reason"]) for s in skipped] == [(patch, reason)]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "1 patch of the archive or its split lists is not in this build" in card


def test_listed_patch_absent_from_the_archive(v1_copy: Path, tmp_path: Path) -> None:
    listed = (v1_copy / "splits" / "original" / "train.csv").read_text().split()[0]
    shutil.rmtree(v1_copy / "BigEarthNet-v1.0" / listed)
    with pytest.raises(PatchError, match=f"{listed}: is in the official split lists but not in the archive; "):
        build(v1_config(v1_copy, with_s1=False), tmp_path / "out", progress=False)
    lists = v1_copy / "splits" / "original"
    more = [*lists.joinpath("train.csv").read_text().split(), "S2A_MSIL2A_20170613T101031_90_1", "S2A_MSIL2A_X_90_2"]
    (lists / "train.csv").write_text("\n".join(more) + "\n")  # two more listed, not in the archive
    with pytest.raises(PatchError, match=r"not in the archive \(nor are 2 other listed patches\); complete"):
        build(v1_config(v1_copy, with_s1=False), tmp_path / "out2", progress=False)
    (lists / "train.csv").write_text("\n".join(more[:-2]) + "\n")
    build(v1_config(v1_copy, with_s1=False, skip_bad=True), tmp_path / "skip", progress=False)
    skipped = json.loads((tmp_path / "skip" / "skipped.json").read_text())
    assert [(s["patch_id"], s["reason"]) for s in skipped] == [(listed, "absent_from_archive")]


def test_missing_s1_twin(v1_copy: Path, tmp_path: Path) -> None:
    twin = sorted((v1_copy / "BigEarthNet-S1-v1.0").iterdir())[0]
    shutil.rmtree(twin)
    with pytest.raises(PatchError, match="no Sentinel-1 patch"):
        build(v1_config(v1_copy), tmp_path / "out", progress=False)


def test_bom_in_list_files_is_tolerated(v1_copy: Path, tmp_path: Path) -> None:
    path = v1_copy / "splits" / "original" / "val.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert build(v1_config(v1_copy), tmp_path / "out", progress=False) is not None


def test_duplicate_patch_ids_in_v2_metadata(synth_v2: Path, tmp_path: Path) -> None:
    archive = Path(shutil.copytree(synth_v2, tmp_path / "v2"))
    table = pq.read_table(archive / "metadata.parquet")
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), archive / "metadata.parquet")
    with pytest.raises(PatchError, match=f"{table['patch_id'][0]}: occurs 2 times"):
        build(BuildConfig(spec=locate_archive(archive)), tmp_path / "out", progress=False)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_reports_errors_without_traceback(v1_copy: Path, tmp_path: Path, workers: str) -> None:
    remove_band(v1_copy)  # with -j 2 the error comes from a worker process, pickled (PatchError.__reduce__)
    result = CliRunner().invoke(main, ["build", str(v1_copy), "-o", str(tmp_path / "out"), "-j", workers, "--quiet"])
    assert result.exit_code == 1
    assert "Error: patch" in result.output and "B11.tif" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["build", str(tmp_path), "-o", str(tmp_path / "o2"), "--quiet"])
    assert result.exit_code == 1 and "no BigEarthNet archive found" in result.output


@pytest.mark.parametrize("command", ["build", "split", "verify"])
def test_the_s1_part_given_as_the_archive_is_named_as_such(
    v1_copy: Path, built_v1: Path, tmp_path: Path, command: str
) -> None:
    """Its JSON files lack S2 labels: read as the S2 part, every patch would fail on its acquisition date."""
    s1 = v1_copy / "BigEarthNet-S1-v1.0"
    args = {"build": ["build", str(s1), "-o", str(tmp_path / "out")], "split": ["split", str(s1), "-o", str(tmp_path)],
            "verify": ["verify", str(built_v1), "--archive", str(s1), "-j", "1"]}[command]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--quiet"] if command == "build" else args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{s1} is the Sentinel-1 part of BigEarthNet: pass the S2 part (BigEarthNet-v1.0, or" in result.output
    assert not (tmp_path / "out").exists()


def test_the_s2_part_given_as_the_archive_stands_for_the_folder_holding_it(
    synth_v1: Path, built_v1: Path, tmp_path: Path
) -> None:
    """``BigEarthNet-v1.0`` itself, where the folder holding it was meant: the same archive, its S1 part and its
    ``splits/`` found beside it (no download), the same repository built, and split."""
    s2 = synth_v1 / "BigEarthNet-v1.0"
    assert locate_archive(s2) == locate_archive(synth_v1) and locate_archive(s2).s1 is not None
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(s2), "-o", str(out), "--shard-size", "40", "-j", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").read_bytes() == (built_v1 / "manifest.json").read_bytes()
    result = CliRunner().invoke(main, ["split", str(s2), "-o", str(tmp_path / "s"), "--method", "fast"])
    assert result.exit_code == 0 and (tmp_path / "s" / "assignment.csv").is_file(), result.output


def test_cli_synth_then_build(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["synth", str(tmp_path / "a"), "-n", "30", "--quiet"]).exit_code == 0
    result = runner.invoke(
        main, ["build", str(tmp_path / "a"), "-o", str(tmp_path / "r"), "--quiet", "-j", "1", "--method", "random"]
    )
    assert result.exit_code == 0, result.output
    assert "30 patches in 10 shards" in result.output
