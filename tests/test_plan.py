"""``ben-hub build --plan``: the build's counts and shards before it runs, its size and time measured on a sample
(ben_hub/estimate.py), and the disk verdict; nothing written under OUT but a tarball's kept label scan."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ben_hub import estimate
from ben_hub.archive import locate_archive, scan_cache, v1
from ben_hub.build import BuildConfig, build
from ben_hub.cli import main
from ben_hub.errors import PatchError

from .conftest import v1_config
from .test_build_synth import tree_digest
from .test_tarball import make_tar


def shard_bytes(repo_dir: Path) -> int:
    return sum(s["bytes"] for s in json.loads((repo_dir / "manifest.json").read_text())["shards"])


def test_the_plan_counts_what_the_build_writes(synth_v1: Path, built_v1: Path, tmp_path: Path) -> None:
    """Every (config, split) count and the shard count are the finished build's; the size, from 128 of the 160
    patches, is within 3% of the shards written; OUT is not created."""
    out = tmp_path / "out"
    plan = estimate.estimate_build(v1_config(synth_v1), out, progress=False)
    manifest = json.loads((built_v1 / "manifest.json").read_text())
    counts = {c: {s: v["num_examples"] for s, v in sizes.items()} for c, sizes in plan.splits.items()}
    assert counts == {c: {s: v["num_examples"] for s, v in sizes.items()} for c, sizes in manifest["splits"].items()}
    assert list(plan.splits) == ["original", "resampled", "excluded"]
    assert (plan.patches, plan.shards, plan.job_patches) == (160, len(manifest["shards"]), manifest["rows"])
    assert plan.sample_patches == estimate.SAMPLE and plan.sample_seconds > 0 and plan.s1_unsampled_bytes == 0
    assert not plan.streamed
    assert plan.repository_bytes == pytest.approx(shard_bytes(built_v1), rel=0.03)
    assert plan.staging_bytes == 0 and plan.enough_space
    assert not out.exists()


def test_sample_rows_spread_over_the_index() -> None:
    assert estimate.sample_rows(10, 4).tolist() == [0, 3, 6, 9]
    assert estimate.sample_rows(3, 128).tolist() == [0, 1, 2]
    assert estimate.sample_rows(0, 128).tolist() == []


def test_a_job_plans_its_share(synth_v1: Path, tmp_path: Path) -> None:
    whole = estimate.estimate_build(v1_config(synth_v1), tmp_path / "a", progress=False)
    shares = [estimate.estimate_build(v1_config(synth_v1, job_index=k, job_count=3), tmp_path / "b", progress=False)
              for k in range(3)]  # fmt: skip
    assert sum(p.job_shards for p in shares) == whole.shards
    assert sum(p.job_patches for p in shares) == whole.patches
    assert all(p.shards == whole.shards for p in shares)


def test_a_bad_patch_in_the_sample_is_found_before_the_build(v1_copy: Path, tmp_path: Path) -> None:
    """The sample reads pixels as the build does: a broken band stops the plan naming the patch (with
    --skip-bad it is left out of the sample instead)."""
    band = sorted((v1_copy / "BigEarthNet-v1.0").glob("*/*_B08.tif"))[0]
    band.write_bytes(b"not a tiff")
    with pytest.raises(PatchError, match=band.parent.name):
        estimate.estimate_build(v1_config(v1_copy), tmp_path / "out", sample=1000, progress=False)
    plan = estimate.estimate_build(v1_config(v1_copy, skip_bad=True), tmp_path / "out", sample=1000, progress=False)
    assert plan.sample_patches == plan.patches - 1


def test_plan_from_both_downloads_keeps_the_label_scan_for_the_build(
    synth_v1: Path, built_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S2 streamed from its tarball for the sample; S1's download is not staged but counted at its raw size;
    the build that follows takes the kept scan and writes the folder build's repository."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    s2 = make_tar(synth_v1 / "BigEarthNet-v1.0", downloads / "BigEarthNet-v1.0.tar.gz")
    make_tar(synth_v1 / "BigEarthNet-S1-v1.0", downloads / "BigEarthNet-S1-v1.0.tar.gz")
    config = BuildConfig(spec=locate_archive(s2), lists_dir=synth_v1 / "splits", shard_size=40)
    out = tmp_path / "out"
    plan = estimate.estimate_build(config, out, sample=50, progress=False)
    assert plan.sample_patches == 50 and plan.s1_unsampled_bytes == estimate.S1_RAW_BYTES and plan.streamed
    assert 0 < plan.sample_stream_seconds < plan.sample_seconds and 0 < plan.stream_seconds < plan.seconds_one_process
    assert plan.staging_bytes == 160 * estimate.S1_RAW_BYTES
    assert plan.shards == len(json.loads((built_v1 / "manifest.json").read_text())["shards"])
    assert not (out / ".ben-hub" / "s1").exists()  # nothing staged
    key = scan_cache.scan_key(config.spec, False)
    assert sorted(p.name for p in (out / ".ben-hub").rglob("*") if p.is_file()) == [f"{key}.arrow", f"{key}.json"]

    def no_scan(*args: object) -> None:
        raise AssertionError("the build scanned the tarball again")

    monkeypatch.setattr(v1, "scan", no_scan)
    build(config, out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)


def test_a_tarball_jobs_time_counts_reading_the_whole_download() -> None:
    """Each --job of a tarball build reads every patch out of the stream but writes only its own shards."""

    def estimate_of(streamed: bool, stream_s: float) -> estimate.BuildEstimate:
        return estimate.BuildEstimate(
            {}, patches=1000, shards=10, job_shards=5, job_patches=500, problems=0, absent=0, sample_patches=100,
            sample_bytes=1, sample_seconds=3.0, s1_unsampled_bytes=0, staging_bytes=0, free_bytes=0,
            streamed=streamed, sample_stream_seconds=stream_s,
        )  # fmt: skip

    folder = estimate_of(False, 0.0)
    assert folder.seconds_one_process == pytest.approx(15.0) and folder.stream_seconds == 0
    tar = estimate_of(True, 1.0)
    # writing: 500 patches at 2 s a hundred; reading: all 1,000 at 1 s a hundred
    assert tar.stream_seconds == pytest.approx(10.0) and tar.seconds_one_process == pytest.approx(20.0)


def test_cli_plan_of_a_tarball_says_what_reading_it_costs_and_how_many_write(synth_v1: Path, tmp_path: Path) -> None:
    s2 = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar")
    args = ["build", str(s2), "--no-s1", "--lists-dir", str(synth_v1 / "splits"), "--quiet", "--plan", "-j", "64"]
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert "reading the whole download; -j 64 writes up to 10 shards at once" in done.output  # one writer a cell


def test_cli_plan_prints_counts_size_and_disk(synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["build", str(synth_v1), "--lists-dir", str(synth_v1 / "splits"), "--shard-size", "40", "--quiet", "--plan"]
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].startswith("original: train ") and lines[2].startswith("excluded: excluded ")
    assert "patches: 160 in " in done.output and "sample: 128 patches written in " in done.output
    assert ": enough" in done.output and lines[-1] == f"nothing was written to {tmp_path / 'out'}"
    assert not (tmp_path / "out").exists()

    monkeypatch.setattr(estimate, "free_bytes", lambda folder: 1_000_000)
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert "1.0 MB free at " in done.output and ": NOT enough: free " in done.output


def test_cli_plan_of_a_finished_build(synth_v1: Path, built_v1: Path, tmp_path: Path) -> None:
    out = Path(shutil.copytree(built_v1, tmp_path / "done"))
    before = tree_digest(out)
    done = CliRunner().invoke(main, ["build", str(synth_v1), "-o", str(out), "--plan", "--quiet"])
    assert done.exit_code == 0, done.output
    assert "already a finished build" in done.output and tree_digest(out) == before
