"""Building straight from downloaded tarballs (.tar.gz for v1, .tar.zst for reBEN) without unpacking."""

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from ben_hub.archive import locate_archive
from ben_hub.build import BuildConfig, build
from ben_hub.errors import ArchiveError, PatchError

from .test_build_synth import tree_digest


def make_tar(folder: Path, target: Path, zstd: bool = False, skip: str | None = None) -> Path:
    """A tarball of ``folder`` as the published downloads are laid out (``folder.name/...``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=folder.name, filter=lambda m: None if skip and m.name.endswith(skip) else m)
    data = buffer.getvalue()
    if zstd:
        target.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        with tarfile.open(target, "w:gz") as out, tarfile.open(fileobj=io.BytesIO(data)) as src:
            for member in src:
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    return target


def test_v1_tar_gz_builds_the_same_repository_as_the_folder(built_v1: Path, synth_v1: Path, tmp_path: Path) -> None:
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar.gz")
    spec = locate_archive(tarball, s1_dir=synth_v1 / "BigEarthNet-S1-v1.0")
    assert spec.layout == "v1" and spec.s1 is not None
    out = tmp_path / "from-tar"
    build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)


def test_v2_tar_zst_builds_the_same_repository_as_the_folder(synth_v2: Path, tmp_path: Path) -> None:
    folder_out, tar_out = tmp_path / "folder", tmp_path / "tar"
    build(BuildConfig(spec=locate_archive(synth_v2), shard_size=30), folder_out, progress=False)
    tarball = make_tar(synth_v2 / "BigEarthNet-S2", tmp_path / "BigEarthNet-S2.tar.zst", zstd=True)
    spec = locate_archive(tarball, metadata=synth_v2 / "metadata.parquet", s1_dir=synth_v2 / "BigEarthNet-S1")
    assert spec.layout == "v2" and spec.metadata_extra is not None
    build(BuildConfig(spec=spec, shard_size=30), tar_out, progress=False)
    assert tree_digest(tar_out) == tree_digest(folder_out)


def test_tar_build_resumes_a_lost_shard(synth_v1: Path, tmp_path: Path) -> None:
    spec = locate_archive(make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar"), with_s1=False)
    config = BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40)
    out = tmp_path / "out"
    build(config, out, progress=False)
    before = tree_digest(out)
    lost = sorted((out / "data").rglob("*.parquet"))[2]
    lost.unlink()
    (out / "manifest.json").unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet")}
    build(config, out, progress=False)
    assert tree_digest(out) == before
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # finished shards were not rewritten


def test_tar_with_a_missing_band(synth_v1: Path, tmp_path: Path) -> None:
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz", skip="_B8A.tif")
    spec = locate_archive(tarball, with_s1=False)
    with pytest.raises(PatchError, match=r"B8A.tif\): band file is missing from the tarball"):
        build(BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40), tmp_path / "a", progress=False)
    result = build(
        BuildConfig(spec=spec, lists_dir=synth_v1 / "splits", shard_size=40, skip_bad=True),
        tmp_path / "b",
        progress=False,
    )
    assert result is not None and result["rows"] == 0
    skipped = json.loads((tmp_path / "b" / "skipped.json").read_text())
    assert len(skipped) == 160 and {s["reason"] for s in skipped} == {"missing_band"}


def test_truncated_tarball_is_reported(synth_v1: Path, tmp_path: Path) -> None:
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz")
    tarball.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        build(
            BuildConfig(spec=locate_archive(tarball, with_s1=False), lists_dir=synth_v1 / "splits"),
            tmp_path / "o",
            progress=False,
        )
