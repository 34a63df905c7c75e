"""Builds of synthetic archives: loading, determinism, resume, jobs, layouts."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile

from ben_hub.archive import locate_archive
from ben_hub.bands import BANDS
from ben_hub.build import BuildConfig, all_cells, build, cell_indices, cell_name
from ben_hub.labels import LABELS_19
from ben_hub.lists import read_list

from .conftest import v1_config


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file of a repository except the private .ben-hub folder."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".ben-hub" not in p.parts
    }


def test_load_dataset_by_name_from_the_parent_folder(built_v1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built_v1.parent)
    ds = datasets.load_dataset("balanced-bigearthnet", "resampled")
    manifest = json.loads((built_v1 / "manifest.json").read_text())
    assert {s: len(ds[s]) for s in ds} == {s: v["num_examples"] for s, v in manifest["splits"]["resampled"].items()}
    stream = datasets.load_dataset("balanced-bigearthnet", "original", split="train", streaming=True)
    first = next(iter(stream))
    assert np.asarray(first["B8A"]).shape == (60, 60) and np.asarray(first["B01"]).shape == (20, 20)


def test_original_config_equals_the_official_lists(built_v1: Path, synth_v1: Path) -> None:
    ds = datasets.load_dataset(str(built_v1), "original")
    for split, file in (("train", "train.csv"), ("validation", "val.csv"), ("test", "test.csv")):
        assert sorted(ds[split]["patch_id"]) == sorted(read_list(synth_v1 / "splits" / "original" / file))


def test_every_patch_is_stored_once_and_kept(built_v1: Path, synth_v1: Path) -> None:
    manifest = json.loads((built_v1 / "manifest.json").read_text())
    assert manifest["rows"] == len(list((synth_v1 / "BigEarthNet-v1.0").iterdir())) == 160
    assert json.loads((built_v1 / "skipped.json").read_text()) == []
    ids = [
        i
        for s in manifest["shards"]
        for i in pq.read_table(built_v1 / s["path"], columns=["patch_id"])["patch_id"].to_pylist()
    ]
    assert len(ids) == len(set(ids)) == 160
    for shard in manifest["shards"]:
        assert hashlib.sha256((built_v1 / shard["path"]).read_bytes()).hexdigest() == shard["sha256"]


def test_pixels_equal_the_synthetic_geotiffs(built_v1: Path, synth_v1: Path) -> None:
    table = pq.read_table(next((built_v1 / "data").glob("*/part-00000-*.parquet")))
    row = table.slice(3, 1).to_pylist()[0]
    folder = synth_v1 / "BigEarthNet-v1.0" / row["patch_id"]
    for band in ("B01", "B02", "B8A", "B12"):
        assert (
            np.asarray(row[band], np.uint16).tobytes()
            == tifffile.imread(folder / f"{folder.name}_{band}.tif").tobytes()
        )


def test_parquet_is_zstd_with_small_row_groups(built_v1: Path) -> None:
    meta = pq.ParquetFile(next((built_v1 / "data").rglob("*.parquet"))).metadata
    assert meta.row_group(0).num_rows <= 32
    columns = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    assert {c.compression for c in columns} == {"ZSTD"}
    pixels = [c for c in columns if c.path_in_schema.split(".")[0] in BANDS]
    assert len(pixels) == 14 and all("BYTE_STREAM_SPLIT" in c.encodings for c in pixels)
    assert all(c.statistics is None for c in pixels)
    ids = pq.read_table(next((built_v1 / "data").rglob("*.parquet")), columns=["patch_id"])["patch_id"][:32]
    first = next(c for c in columns if c.path_in_schema == "patch_id").statistics  # for filters that skip groups
    assert (first.min, first.max, first.null_count) == (min(ids.to_pylist()), max(ids.to_pylist()), 0)


def test_same_input_gives_byte_identical_repositories(built_v1: Path, synth_v1: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    build(v1_config(synth_v1, workers=2), other, progress=False)
    assert tree_digest(other) == tree_digest(built_v1)


def test_jobs_build_independently_and_merge(built_v1: Path, synth_v1: Path, tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    assert build(v1_config(synth_v1, job_index=1, job_count=3), out, progress=False) is None
    assert build(v1_config(synth_v1, job_index=0, job_count=3), out, progress=False) is None
    assert not (out / "manifest.json").exists()
    assert build(v1_config(synth_v1, job_index=2, job_count=3), out, progress=False) is not None
    assert tree_digest(out) == tree_digest(built_v1)


def test_resume_after_a_crash_redoes_only_unfinished_shards(
    built_v1: Path, synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ben_hub.build as build_module
    from ben_hub import shards

    out, calls = tmp_path / "crash", list[str]()
    real = shards.write_shard

    def counted(task: shards.ShardTask, meta: dict[str, list], settings: shards.WriteSettings, root: Path) -> Any:
        calls.append(task.relpath)
        return real(task, meta, settings, root)

    def dying(task: shards.ShardTask, meta: dict[str, list], settings: shards.WriteSettings, root: Path) -> Any:
        if len(calls) == 2:
            raise KeyboardInterrupt
        return counted(task, meta, settings, root)

    monkeypatch.setattr(build_module, "write_shard", dying)
    with pytest.raises(KeyboardInterrupt):
        build(v1_config(synth_v1), out, progress=False)
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(build_module, "write_shard", counted)
    build(v1_config(synth_v1), out, progress=False)
    assert len(calls) == len(json.loads((built_v1 / "manifest.json").read_text())["shards"])
    assert tree_digest(out) == tree_digest(built_v1)


def test_kill_9_then_rerun_equals_an_uninterrupted_build(built_v1: Path, synth_v1: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "ben_hub.cli",
        "build",
        str(synth_v1),
        "-o",
        str(out),
        "--shard-size",
        "40",
        "-j",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / ".ben-hub" / "shards").rglob("*.json")):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    subprocess.run(cmd, check=True, capture_output=True)
    assert not list(out.rglob("*.tmp"))
    assert tree_digest(out) == tree_digest(built_v1)


def test_a_build_with_other_settings_is_refused(built_v1: Path, synth_v1: Path) -> None:
    from ben_hub.errors import RepoError

    with pytest.raises(RepoError, match=r"other settings \(seed 0 there, 3 now\): run the same command with its"):
        build(v1_config(synth_v1, seed=3), built_v1, progress=False)


def test_the_cli_reports_each_configurations_splits_in_their_order(built_v1: Path, synth_v1: Path) -> None:
    """Run again on the finished build (nothing read or written), the summary comes from its manifest, whose JSON
    keys are sorted: the lines still follow the configurations' and the splits' order."""
    from click.testing import CliRunner

    from ben_hub.cli import main

    result = CliRunner().invoke(main, ["build", str(synth_v1), "-o", str(built_v1), "--shard-size", "40", "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((built_v1 / "manifest.json").read_text())
    count = {c: {s: f"{v['num_examples']:,}" for s, v in splits.items()} for c, splits in manifest["splits"].items()}
    lines = result.output.splitlines()
    assert lines[:3] == [
        f"original: train {count['original']['train']} / validation {count['original']['validation']} / test "
        f"{count['original']['test']}",
        f"resampled: train {count['resampled']['train']} / validation {count['resampled']['validation']} / test "
        f"{count['resampled']['test']}",
        f"excluded: excluded {count['excluded']['excluded']}",
    ]
    assert lines[3].startswith(f"{manifest['rows']:,} patches in {len(manifest['shards'])} shards (")
    assert "already a finished build: nothing was read or written" in lines[4]


def test_settings_no_split_can_meet_leave_no_folder_and_a_build_that_wrote_nothing_is_replaced(
    synth_v1: Path, tmp_path: Path
) -> None:
    """Ratios are checked before the archive is read or the folder made; a folder whose earlier build recorded its
    settings and then stopped before writing anything else takes the new settings instead of refusing them."""
    from ben_hub.errors import SplitError

    out = tmp_path / "repo"
    with pytest.raises(SplitError, match=r"must be non-negative and sum to 1"):
        build(v1_config(synth_v1, ratios=(0.5, 0.5, 0.5)), out, progress=False)
    assert not out.exists()
    (out / ".ben-hub").mkdir(parents=True)
    (out / ".ben-hub" / "build.json").write_text(json.dumps({**v1_config(synth_v1).identity(), "seed": 9}))
    assert build(v1_config(synth_v1), out, progress=False) is not None
    assert json.loads((out / ".ben-hub" / "build.json").read_text())["seed"] == 0


def test_a_job_whose_folder_was_taken_while_it_planned_writes_nothing(
    synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two cluster jobs with other settings started together: the one whose settings were replaced while it
    planned (the other found only build.json, as a stopped build leaves it) stops before its first shard."""
    from ben_hub import build as building
    from ben_hub.errors import RepoError

    out, plan = tmp_path / "repo", building.make_plan

    def planned_while_another_job_started(*args: object, **kwargs: object) -> object:
        result = plan(*args, **kwargs)  # type: ignore[arg-type]
        building.check_out_dir(out, v1_config(synth_v1, seed=4, job_count=2))
        return result

    monkeypatch.setattr(building, "make_plan", planned_while_another_job_started)
    with pytest.raises(RepoError, match=r"other settings \(seed 4 there, 0 now\)"):
        build(v1_config(synth_v1, job_count=2), out, progress=False)
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["build.json"]


def test_v2_layout_builds_with_original_split_from_metadata(synth_v2: Path, tmp_path: Path) -> None:
    out = tmp_path / "v2repo"
    result = build(BuildConfig(spec=locate_archive(synth_v2), shard_size=50), out, progress=False)
    assert result is not None
    meta = pq.read_table(synth_v2 / "metadata.parquet")
    extra = pq.read_table(synth_v2 / "metadata_for_patches_with_snow_cloud_or_shadow.parquet")
    ds = datasets.load_dataset(str(out), "original")
    for split in ("train", "validation", "test"):
        expected = [
            p for p, s in zip(meta["patch_id"].to_pylist(), meta["split"].to_pylist(), strict=True) if s == split
        ]
        assert sorted(ds[split]["patch_id"]) == sorted(expected)
    excluded = datasets.load_dataset(str(out), "excluded", split="excluded")
    assert sorted(excluded["patch_id"]) == sorted(extra["patch_id"].to_pylist())
    row = ds["train"][0]
    assert "labels" not in row and all(0 <= i < len(LABELS_19) for i in row["labels_19"])
    assert row["country"] and row["s1_patch_id"] and np.asarray(row["VH"]).dtype == np.float64  # lists of floats
    resampled = datasets.load_dataset(str(out), "resampled")
    assert sum(len(resampled[s]) for s in resampled) == meta.num_rows


def test_worker_processes_start_clean_where_the_platform_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork server on Linux and macOS; spawned processes on Windows, which has no fork server."""
    import multiprocessing

    from ben_hub import workers

    assert workers.start_method() == "forkserver"  # this Linux machine
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert workers.start_method() == "spawn"
    with workers.process_pool(1) as pool:  # a spawned pool runs the work as well
        assert list(pool.map(abs, [-3, 4])) == [3, 4]


def test_cell_indices_place_each_patch_by_its_two_splits() -> None:
    official = np.array([-1, 0, 0, 0, 1, 1, 1, 2, 2, 2, -1], np.int8)
    resampled = np.array([-1, 0, 1, 2, 0, 1, 2, 0, 1, 2, -1], np.int8)
    cells = cell_indices(official, resampled)
    assert cells.dtype == np.int16
    assert [all_cells()[i] for i in cells] == [cell_name(o, r) for o, r in zip(official, resampled, strict=True)]
    assert len(set(cells.tolist())) == len(all_cells())
