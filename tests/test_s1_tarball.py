"""Sentinel-1 from its own download: the S1 tarball staged once (ben_hub/archive/pack.py), with S2 from a
folder or from its tarball; the repository is byte-identical to one built from the unpacked folders."""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ben_hub.archive import locate_archive, pack
from ben_hub.build import BuildConfig, build, finished_manifest
from ben_hub.errors import ArchiveError, PatchError

from .test_build_synth import tree_digest
from .test_tarball import make_tar


@pytest.fixture(scope="module")
def v1_tars(synth_v1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic v1 archive as its two published downloads, side by side (S1 found beside S2 by name)."""
    folder = tmp_path_factory.mktemp("v1-tars")
    make_tar(synth_v1 / "BigEarthNet-v1.0", folder / "BigEarthNet-v1.0.tar.gz")
    make_tar(synth_v1 / "BigEarthNet-S1-v1.0", folder / "BigEarthNet-S1-v1.0.tar.gz")
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_v1_both_tarballs_build_the_folder_repository(
    built_v1: Path, synth_v1: Path, v1_tars: Path, tmp_path: Path, workers: int
) -> None:
    """With ``workers=2`` the writer processes read the S1 bands from the staging, the S2 bands from the stream."""
    spec = locate_archive(v1_tars / "BigEarthNet-v1.0.tar.gz")
    assert spec.s1 == v1_tars / "BigEarthNet-S1-v1.0.tar.gz"
    out = tmp_path / "out"
    build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=workers), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)
    assert not (out / ".ben-hub" / "s1").exists()  # the staging is deleted once the repository is finished


def test_s2_folder_with_s1_tarball_in_two_workers(
    built_v1: Path, synth_v1: Path, v1_tars: Path, tmp_path: Path
) -> None:
    spec = locate_archive(synth_v1, s1_dir=v1_tars / "BigEarthNet-S1-v1.0.tar.gz")
    assert spec.s2 == synth_v1 / "BigEarthNet-v1.0" and spec.s1 == v1_tars / "BigEarthNet-S1-v1.0.tar.gz"
    out = tmp_path / "out"
    build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=2), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)


def test_v2_both_tar_zst_build_the_folder_repository(synth_v2: Path, tmp_path: Path) -> None:
    folder_out, tar_out = tmp_path / "folder", tmp_path / "tar"
    build(BuildConfig(spec=locate_archive(synth_v2), shard_size=30), folder_out, progress=False)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    s2 = make_tar(synth_v2 / "BigEarthNet-S2", downloads / "BigEarthNet-S2.tar.zst", zstd=True)
    make_tar(synth_v2 / "BigEarthNet-S1", downloads / "BigEarthNet-S1.tar.zst", zstd=True)
    spec = locate_archive(s2, metadata=synth_v2 / "metadata.parquet")
    assert spec.s1 == downloads / "BigEarthNet-S1.tar.zst"
    build(BuildConfig(spec=spec, shard_size=30), tar_out, progress=False)
    assert tree_digest(tar_out) == tree_digest(folder_out)


def test_no_s1_ignores_the_s1_tarball_beside(v1_tars: Path) -> None:
    assert locate_archive(v1_tars / "BigEarthNet-v1.0.tar.gz", with_s1=False).s1 is None


def test_a_band_missing_from_the_s1_tarball_names_it(synth_v1: Path, tmp_path: Path) -> None:
    s1_tar = make_tar(synth_v1 / "BigEarthNet-S1-v1.0", tmp_path / "s1.tar.gz", skip="_VH.tif")
    spec = locate_archive(synth_v1, s1_dir=s1_tar)
    with pytest.raises(PatchError, match=r"s1.tar.gz:S1.*_VH.tif\): file is missing from the S1 tarball"):
        build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40), tmp_path / "a", progress=False)
    config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, skip_bad=True)
    result = build(config, tmp_path / "b", progress=False)
    assert result is not None and result["rows"] == 0
    skipped = json.loads((tmp_path / "b" / "skipped.json").read_text())
    assert len(skipped) == 160 and {s["reason"] for s in skipped} == {"missing_band"}


def test_a_bad_s1_json_in_the_tarball_names_it(synth_v1: Path, tmp_path: Path) -> None:
    s1_folder = Path(shutil.copytree(synth_v1 / "BigEarthNet-S1-v1.0", tmp_path / "BigEarthNet-S1-v1.0"))
    victim = sorted(s1_folder.iterdir())[3]
    (victim / f"{victim.name}_labels_metadata.json").write_text("{not json")
    spec = locate_archive(synth_v1, s1_dir=make_tar(s1_folder, tmp_path / "s1.tar"))
    with pytest.raises(PatchError, match=rf"patch {victim.name} \(.*s1.tar:.*labels_metadata.json\): malformed JSON"):
        build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40), tmp_path / "a", progress=False)
    config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, skip_bad=True)
    build(config, tmp_path / "b", progress=False)
    reasons = {s["reason"] for s in json.loads((tmp_path / "b" / "skipped.json").read_text())}
    assert reasons == {"bad_json", "missing_s1"}  # the S1 patch, and its S2 twin then without an S1 patch


def test_staging_is_reused_when_finished_and_redone_when_cut_short(
    synth_v1: Path, v1_tars: Path, tmp_path: Path
) -> None:
    s1_tar, dest = v1_tars / "BigEarthNet-S1-v1.0.tar.gz", tmp_path / "s1"
    pack.stage(s1_tar, dest, "v1")
    files = {name: (dest / name).stat().st_mtime_ns for name in (pack.PACK, pack.INDEX, pack.TWINS)}
    pack.stage(s1_tar, dest, "v1")
    assert {name: (dest / name).stat().st_mtime_ns for name in files} == files  # reused, not rewritten
    reference = (dest / pack.PACK).read_bytes()
    (dest / pack.COMPLETE).unlink()  # as if the staging had been killed before it finished
    (dest / pack.PACK).write_bytes(reference[: len(reference) // 3])
    pack.stage(s1_tar, dest, "v1")
    assert (dest / pack.PACK).read_bytes() == reference
    first = min(p.name for p in (synth_v1 / "BigEarthNet-S1-v1.0").iterdir())
    assert pack.open_pack(dest).files(first) is not None
    pack.release(dest)
    assert not dest.exists() and dest not in pack.OPEN


def test_a_tarball_without_s1_bands_is_refused(synth_v1: Path, v1_tars: Path, tmp_path: Path) -> None:
    spec = locate_archive(synth_v1, s1_dir=v1_tars / "BigEarthNet-v1.0.tar.gz")  # the S2 download by mistake
    with pytest.raises(ArchiveError, match="holds no Sentinel-1 band file"):
        build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits"), tmp_path / "o", progress=False)


def test_s1_dir_must_be_a_folder_or_a_tarball(synth_v1: Path, tmp_path: Path) -> None:
    (tmp_path / "s1.zip").write_bytes(b"PK")
    with pytest.raises(ArchiveError, match="neither a folder nor a tarball"):
        locate_archive(synth_v1, s1_dir=tmp_path / "s1.zip")


def test_pack_finds_records_whose_hashes_collide(
    synth_v1: Path, v1_tars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pack, "name_hash", lambda folder: 7)  # every name in one run of equal hashes
    dest = pack.stage(v1_tars / "BigEarthNet-S1-v1.0.tar.gz", tmp_path / "s1", "v1")
    staged = pack.Pack(dest, np.load(dest / pack.INDEX), os.open(dest / pack.PACK, os.O_RDONLY))
    folders = sorted((synth_v1 / "BigEarthNet-S1-v1.0").iterdir())
    try:
        for folder in folders[:3] + folders[-3:]:
            files = staged.files(folder.name)
            assert files is not None and set(files) == {f"{folder.name}_VV.tif", f"{folder.name}_VH.tif"}
            assert all(data == (folder / name).read_bytes() for name, data in files.items())
        assert staged.files("S1A_not_a_patch") is None
    finally:
        os.close(staged.fd)


def test_cli_build_with_the_s1_tarball(
    built_v1: Path, synth_v1: Path, v1_tars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import ben_hub.build as build_module
    from ben_hub.cli import main

    out = tmp_path / "out"
    args = ["build", str(synth_v1), "-o", str(out), "--s1-dir", str(v1_tars / "BigEarthNet-S1-v1.0.tar.gz")]
    result = CliRunner().invoke(main, [*args, "--shard-size", "40", "--quiet"])
    assert result.exit_code == 0, result.output
    assert tree_digest(out) == tree_digest(built_v1)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    def refuse(*args: object) -> None:
        raise AssertionError("a finished build read its archive again")

    monkeypatch.setattr(build_module.pack, "stage", refuse)
    monkeypatch.setattr(build_module, "make_plan", refuse)
    again = CliRunner().invoke(main, [*args, "--shard-size", "40", "--quiet"])
    assert again.exit_code == 0, again.output
    assert "already a finished build: nothing was read or written" in again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes
    bad = CliRunner().invoke(main, [*args[:4], "--s1-dir", str(synth_v1 / "splits" / "original" / "train.csv")])
    assert bad.exit_code != 0 and "neither a folder nor a tarball" in bad.output and "Traceback" not in bad.output


def test_a_damaged_s1_band_in_the_tarball_names_its_member(synth_v1: Path, tmp_path: Path) -> None:
    s1_folder = Path(shutil.copytree(synth_v1 / "BigEarthNet-S1-v1.0", tmp_path / "BigEarthNet-S1-v1.0"))
    victim = sorted(s1_folder.iterdir())[5]
    (victim / f"{victim.name}_VV.tif").write_bytes(b"not a tiff at all")
    s1 = make_tar(s1_folder, tmp_path / "s1.tar")
    s2 = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar")
    for source, workers in [(synth_v1, 1), (s2, 2)]:  # read here, or by a writer process beside the S2 stream
        spec = locate_archive(source, s1_dir=s1)
        with pytest.raises(PatchError, match=rf"s1.tar:{victim.name}/{victim.name}_VV.tif\): not a TIFF"):
            config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, workers=workers)
            build(config, tmp_path / f"out-{workers}", progress=False)


def test_a_finished_repository_missing_a_shard_is_repaired(
    built_v1: Path, synth_v1: Path, v1_tars: Path, tmp_path: Path
) -> None:
    """Only a repository whose every listed shard is in place, at its size, counts as finished; a lost or
    truncated shard is written again (restaging S1), and a staging left behind by a run stopped between its
    card and the staging's deletion is deleted by the next run."""
    config = BuildConfig(spec=locate_archive(v1_tars / "BigEarthNet-v1.0.tar.gz"), lists_dir=synth_v1 / "splits",
                         shard_size=40)  # fmt: skip
    out = tmp_path / "out"
    build(config, out, progress=False)
    shards = sorted((out / "data").rglob("*.parquet"))
    shards[1].unlink()
    with shards[3].open("r+b") as handle:
        handle.truncate(100)
    assert finished_manifest(out) is None
    assert build(config, out, progress=False) is not None
    assert tree_digest(out) == tree_digest(built_v1) and not (out / ".ben-hub" / "s1").exists()
    assert finished_manifest(out) == json.loads((out / "manifest.json").read_text())
    leftover = pack.stage(v1_tars / "BigEarthNet-S1-v1.0.tar.gz", out / ".ben-hub" / "s1", "v1")
    assert build(config, out, progress=False) is not None and not leftover.exists()
    assert tree_digest(out) == tree_digest(built_v1)


def test_the_s1_tarball_is_staged_while_the_labels_are_scanned(
    built_v1: Path, synth_v1: Path, v1_tars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staging's 10th patch waits for the scan's first record: a build that ran them one after the other
    would stall here (and fail the check) instead of finishing."""
    import threading

    from ben_hub.archive import v1

    scanned, overlapped, real_scan, real_record = threading.Event(), [], v1.scan, pack.record_bytes
    staged = [0]

    def scan(*args: Any) -> Any:
        for record in real_scan(*args):
            scanned.set()
            yield record

    def record(*args: Any) -> bytes:
        staged[0] += 1
        if staged[0] == 10:
            overlapped.append(scanned.wait(timeout=20))
        return real_record(*args)

    monkeypatch.setattr(v1, "scan", scan)  # what v1.index reads a tarball with
    monkeypatch.setattr(pack, "record_bytes", record)
    out = tmp_path / "out"
    build(BuildConfig(spec=locate_archive(v1_tars / "BigEarthNet-v1.0.tar.gz"), lists_dir=synth_v1 / "splits",
                      shard_size=40), out, progress=False)  # fmt: skip
    assert overlapped == [True] and tree_digest(out) == tree_digest(built_v1)


def test_a_scan_error_stops_the_staging_at_once(
    synth_v1: Path, v1_tars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from ben_hub.archive import v1

    real_record = pack.record_bytes

    def slow(*args: Any) -> bytes:
        time.sleep(0.05)  # 160 patches: 8 s if the staging ran to its end
        return real_record(*args)

    def bad_scan(*args: Any) -> Any:
        time.sleep(0.2)
        raise PatchError("S2A_MSIL2A_X", "bad_json", "malformed JSON", "somewhere.json")
        yield

    monkeypatch.setattr(pack, "record_bytes", slow)
    monkeypatch.setattr(v1, "scan", bad_scan)
    out, began = tmp_path / "out", time.perf_counter()
    with pytest.raises(PatchError, match="S2A_MSIL2A_X"):
        build(BuildConfig(spec=locate_archive(v1_tars / "BigEarthNet-v1.0.tar.gz"), lists_dir=synth_v1 / "splits",
                          shard_size=40), out, progress=False)  # fmt: skip
    assert time.perf_counter() - began < 4
    assert not [p.name for p in (out / ".ben-hub" / "s1").iterdir() if p.name != "lock"]  # nothing half-staged


def test_a_build_waiting_for_another_jobs_staging_can_still_stop(
    synth_v1: Path, v1_tars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another job holds the staging's lock: this job's scan fails, and the error comes at once, not when the
    other job lets go."""
    import fcntl
    import threading
    import time

    from ben_hub.archive import v1

    def bad_scan(*args: Any) -> Any:
        time.sleep(0.3)
        raise PatchError("S2A_MSIL2A_X", "bad_json", "malformed JSON", "somewhere.json")
        yield

    monkeypatch.setattr(v1, "scan", bad_scan)
    out = tmp_path / "out"
    (out / ".ben-hub" / "s1").mkdir(parents=True)
    config = BuildConfig(spec=locate_archive(v1_tars / "BigEarthNet-v1.0.tar.gz"), lists_dir=synth_v1 / "splits",
                         shard_size=40)  # fmt: skip
    raised: list[BaseException] = []

    def run() -> None:
        try:
            build(config, out, progress=False)
        except BaseException as err:
            raised.append(err)

    with (out / ".ben-hub" / "s1" / "lock").open("a") as other_job:
        fcntl.flock(other_job, fcntl.LOCK_EX)
        job = threading.Thread(target=run, daemon=True)  # a build blocked on the lock must fail the test, not hang it
        job.start()
        job.join(timeout=5)
        assert not job.is_alive(), "the build waited for the other job's staging before reporting its error"
    assert len(raised) == 1 and "S2A_MSIL2A_X" in str(raised[0])
