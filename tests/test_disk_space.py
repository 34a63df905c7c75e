"""A full disk: named with the folder and its free space, temp files given back, and the rerun resumes to the
same bytes; long writes warn early when their projected size outgrows the free space (ben_hub/space.py)."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ben_hub import fetch, space
from ben_hub.archive import locate_archive, pack
from ben_hub.build import BuildConfig, build
from ben_hub.cli import main
from ben_hub.errors import DiskFullError, ListError
from ben_hub.parquet import ParquetFile

from .conftest import stored_run, v1_config
from .test_build_synth import tree_digest
from .test_tarball import make_tar

FULL = "no space left on the device"


def no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, calls: int) -> list[int]:
    """``owner.name`` fails with ENOSPC from its ``calls``-th call on (the disk stays full); returns the count."""
    real, count = getattr(owner, name), [0]

    def writing(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        if count[0] >= calls:
            raise no_space()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, writing)
    return count


def temp_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.name.endswith((".tmp", ".part")))


def test_a_full_disk_mid_build_is_named_and_the_rerun_resumes(
    built_v1: Path, synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        fill_after(patched, ParquetFile, "write", 200)  # two shards in (72 writes each)
        named = rf"{FULL} \(with the files cut short deleted, the filesystem of {out} has .* free\); free some"
        with pytest.raises(DiskFullError, match=named):
            build(v1_config(synth_v1), out, progress=False)
    assert list((out / "data").rglob("*.parquet")), "some shards were finished before the disk filled"
    assert not temp_files(out) and not (out / "manifest.json").exists()  # the shard cut short was deleted
    build(v1_config(synth_v1), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)


def test_cli_reports_a_full_disk_without_a_traceback(
    synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_after(monkeypatch, ParquetFile, "write", 1)
    args = ["build", str(synth_v1), "-o", str(tmp_path / "out"), "--shard-size", "40", "-j", "1", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: {FULL}" in result.output and "run the same command again: the build resumes" in result.output


def test_a_full_disk_while_streaming_a_tarball_gives_back_every_open_shard(
    synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = locate_archive(make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz"), with_s1=False)
    config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40)
    build(config, tmp_path / "whole", progress=False)
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        fill_after(patched, ParquetFile, "write", 200)
        with pytest.raises(DiskFullError, match=FULL):
            build(config, out, progress=False)
    assert not temp_files(out)  # several cells' shards were open at once
    build(config, out, progress=False)
    assert tree_digest(out) == tree_digest(tmp_path / "whole")


def test_a_full_disk_while_staging_s1_deletes_the_partial_pack(
    synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s1_tar = make_tar(synth_v1 / "BigEarthNet-S1-v1.0", tmp_path / "s1.tar.gz")
    config = dataclasses.replace(v1_config(synth_v1), spec=locate_archive(synth_v1, s1_dir=s1_tar))
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        fill_after(patched, pack, "record_bytes", 30)
        with pytest.raises(DiskFullError, match=FULL):
            build(config, out, progress=False)
    staging = out / ".ben-hub" / "s1"
    assert not (staging / pack.PACK).exists() and not (staging / pack.COMPLETE).exists()
    assert build(config, out, progress=False) is not None and not staging.exists()


def test_a_full_cache_is_not_reported_as_a_failed_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "list.csv"
    source.write_text("a\nb\n")
    target = tmp_path / "cache" / "list.csv"
    fill_after(monkeypatch, fetch.shutil, "copyfileobj", 1)
    with pytest.raises(DiskFullError, match=rf"{FULL} .* the filesystem of {target.parent} has .* free"):
        fetch.download(source.as_uri(), target, lambda part: None, ListError, "pass --lists-dir")
    assert not target.exists() and not temp_files(target.parent)


def test_space_watch_warns_once_from_a_projection(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.setattr(space, "free_bytes", lambda folder: 5_000_000_000)
    watch = space.SpaceWatch(Path("/data/out"), "writing the shards", every_s=0)
    with caplog.at_level(logging.WARNING, logger="ben_hub"):
        assert watch.check(0.01, 10**9) is None  # too early to judge
        assert watch.check(0.25, 10**9) == 3 * 10**9  # fits: 3 GB more, 5 GB free
        assert watch.check(0.10, 10**9) == 9 * 10**9
        assert watch.check(0.20, 2 * 10**9) == 8 * 10**9  # still short: no second warning
    (warning,) = caplog.records
    assert warning.getMessage().startswith("writing the shards needs about 9.0 GB more at this rate (1.0 GB")
    assert "/data/out has 5.0 GB free" in warning.getMessage()


def test_a_build_warns_early_when_the_repository_will_not_fit(
    built_v1: Path, synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setattr(space, "free_bytes", lambda folder: 999)
    with caplog.at_level(logging.WARNING, logger="ben_hub"):
        build(v1_config(synth_v1), tmp_path / "out", progress=False)  # the disk is not really full: it goes on
    (warning,) = [r for r in caplog.records if r.name == "ben_hub"]
    message = warning.getMessage()
    assert message.startswith("writing the shards needs about") and "has 999 B free" in message
    assert tree_digest(tmp_path / "out") == tree_digest(built_v1)


def test_staging_reports_its_progress_through_the_tarball(synth_v1: Path, tmp_path: Path) -> None:
    s1_tar = make_tar(synth_v1 / "BigEarthNet-S1-v1.0", tmp_path / "s1.tar.gz")
    seen: list[tuple[float, int]] = []
    dest = pack.stage(s1_tar, tmp_path / "s1", "v1", lambda done, written: seen.append((done, written)))
    assert len(seen) == 160 and all(0 < done <= 1 for done, _ in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (1.0, (dest / pack.PACK).stat().st_size)


def test_training_reports_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    pytest.importorskip("torch")  # the harness: `pip install -e '.[train]'`
    from harness import train

    def full(configs: list[Any]) -> None:
        raise no_space()

    monkeypatch.setattr(train, "train_seeds", full)
    assert train.main(["--repo", str(tmp_path), "--out", str(tmp_path / "runs"), "--seed", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {FULL}") and "run the same command again: it resumes from its checkpoint" in err


def test_a_full_disk_while_synthesising_leaves_no_partial_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ben_hub.archive import synth

    real = Path.write_bytes  # how synth writes its band files
    count = [0]

    def writing(self: Path, data: bytes) -> int:
        count[0] += 1
        if count[0] >= 50:
            raise no_space()
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", writing)
    with pytest.raises(DiskFullError, match=rf"{FULL} .* free\); free some space there and run it again, or ask"):
        synth.synth_archive(tmp_path / "archive", 20)
    assert count[0] >= 50 and list(tmp_path.iterdir()) == []


def test_a_full_cache_while_downloading_a_hub_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    from ben_hub.hub import resolve_repo

    def full(*args: Any, **kwargs: Any) -> str:
        raise no_space()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", full)
    with pytest.raises(DiskFullError, match=r"files finished are kept\), or set HF_HUB_CACHE to a larger disk"):
        resolve_repo("someone/balanced-bigearthnet")


@pytest.mark.parametrize("command", ["card", "leaderboard", "split"])
def test_small_writes_report_a_full_disk_too(
    command: str, built_v1: Path, synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ben_hub import card, leaderboard
    from ben_hub.splits.report import SplitRequest, split_and_report

    repo = Path(shutil.copytree(built_v1, tmp_path / "repo"))
    runs = tmp_path / "runs"
    stored_run(runs, 0, 0.5)
    calls = {
        "card": lambda: card.write_card(repo),
        "leaderboard": lambda: leaderboard.write_outputs(runs, tmp_path / "board"),
        "split": lambda: split_and_report(synth_v1, tmp_path / "split", SplitRequest(method="random")),
    }

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise no_space()

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DiskFullError, match=rf"{FULL} .*; free some space there and run the same command again"):
        calls[command]()
