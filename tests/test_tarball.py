"""Building straight from downloaded tarballs (.tar.gz for v1, .tar.zst for reBEN) without unpacking."""

import gzip
import io
import json
import os
import random
import tarfile
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard

from ben_hub.archive import locate_archive, tar
from ben_hub.build import BuildConfig, build
from ben_hub.errors import ArchiveError, PatchError

from .test_build_synth import tree_digest


def make_tar(
    folder: Path, target: Path, zstd: bool = False, skip: str | None = None, shuffle: int | None = None
) -> Path:
    """A tarball of ``folder`` as the published downloads are laid out (``folder.name/...``): its patch folders in
    name order (``tarfile`` sorts), or, with a ``shuffle`` seed, in a shuffled order, as a packer's may be."""
    buffer = io.BytesIO()
    keep = lambda m: None if skip and m.name.endswith(skip) else m  # noqa: E731
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if shuffle is None:
            tar.add(folder, arcname=folder.name, filter=keep)
        else:
            tar.add(folder, arcname=folder.name, recursive=False)
            entries = sorted(folder.iterdir())
            random.Random(shuffle).shuffle(entries)
            for entry in entries:
                tar.add(entry, arcname=f"{folder.name}/{entry.name}", filter=keep)
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


def test_ahead_reader_gives_the_stream_at_any_read_size() -> None:
    data = np.random.default_rng(0).bytes(3 * tar.BLOCK_BYTES + 12345)
    reader = tar.AheadReader(io.BytesIO(data))
    parts = [reader.read_exact(1), reader.read_exact(10240)]
    assert reader.skip(tar.BLOCK_BYTES) == tar.BLOCK_BYTES  # across a block boundary, nothing copied
    parts.append(reader.read_exact(5 * tar.BLOCK_BYTES))  # more than is left: the rest
    assert reader.read_exact(10) == b"" and reader.skip(10) == 0  # at the end, and again
    reader.close()
    assert parts[0] + parts[1] == data[:10241] and parts[2] == data[10241 + tar.BLOCK_BYTES :]


def test_ahead_reader_raises_the_codecs_error() -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell():
                raise zlib.error("invalid distance too far back")
            return super().read(size)

    reader = tar.AheadReader(Failing(b"x" * (2 * tar.BLOCK_BYTES)))
    assert reader.read_exact(tar.BLOCK_BYTES) == b"x" * tar.BLOCK_BYTES
    with pytest.raises(OSError, match="error: invalid distance too far back"):
        reader.read_exact(1)
    reader.close()


TAR_FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


@pytest.mark.parametrize("format_name", sorted(TAR_FORMATS))
def test_members_agree_with_tarfile(tmp_path: Path, format_name: str) -> None:
    """Long names (ustar prefix, GNU long-name and pax path records), empty and block-sized files, folders, links,
    and files of every size around the 512-byte records, against the standard library's reader."""
    rng = np.random.default_rng(1)
    files = {f"root/{'d' * 50 * (k % 3)}p{k}/{'f' * 30 * (k % 3)}{k}_B0{k % 9}.tif": rng.bytes(size)
             for k, size in enumerate([0, 1, 511, 512, 513, 1024, 70_000, tar.BLOCK_BYTES + 3])}  # fmt: skip
    if format_name == "pax":
        files["root/é-ü/naïve.tif"] = b"unicode name"
    target = tmp_path / "t.tar.gz"
    with tarfile.open(target, "w:gz", format=TAR_FORMATS[format_name]) as out:
        out.addfile(dir_info("root"))
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("root/link.tif")
        link.type, link.linkname = tarfile.SYMTYPE, next(iter(files))
        out.addfile(link)
    with tarfile.open(target) as reference:
        expected = [(m.name, reference.extractfile(m).read()) for m in reference if m.isfile()]  # type: ignore[union-attr]
    assert list(tar.iter_members(target, lambda n: True)) == expected
    assert [n for n, _ in tar.iter_members(target, lambda n: n.endswith("3.tif"))] == [
        n for n, _ in expected if n.endswith("3.tif")
    ]


def dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_a_damaged_header_is_reported(synth_v1: Path, tmp_path: Path) -> None:
    plain = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz")
    data = bytearray(gzip.decompress(plain.read_bytes()))
    assert data[1024 + 257 : 1024 + 262] == b"ustar"  # the third header: two folders come first
    data[1024 + 130] ^= 0x01  # a bit of its size field
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"damaged.tar cannot be read to the end .*checksum"):
        list(tar.iter_members(damaged, lambda n: True))


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_every_compression_is_read_by_its_magic_number(synth_v1: Path, tmp_path: Path, mode: str) -> None:
    folder = synth_v1 / "BigEarthNet-v1.0"
    patches = sorted(folder.iterdir())[:3]
    target = tmp_path / "part.tar"  # the suffix says nothing of the compression
    with tarfile.open(target, mode) as out:  # type: ignore[call-overload]  # the stubs want a literal mode
        for patch in patches:
            out.add(patch, arcname=f"{folder.name}/{patch.name}")
    names = [name for name, _ in tar.iter_members(target, lambda n: n.endswith(".json"))]
    assert names == [f"{folder.name}/{p.name}/{p.name}_labels_metadata.json" for p in patches]


def test_leaving_a_stream_early_stops_its_thread(synth_v1: Path, tmp_path: Path) -> None:
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz")
    members = tar.iter_members(tarball, lambda n: True)
    next(members)
    members.close()
    assert not [t for t in threading.enumerate() if t.name == "tar-decompress"]


def test_zlib_inflates_as_isal_does(synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``isal`` installed the reader falls back to zlib, with the same members; concatenated gzip members
    and zero padding after them (as some compressors write) are read through."""
    tarball = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "s2.tar.gz")
    expected = list(tar.iter_members(tarball, lambda n: n.endswith("_B02.tif")))
    assert tar.inflate_module() is not zlib  # isal, a dependency
    monkeypatch.setattr(tar, "inflate_module", lambda: zlib)
    assert list(tar.iter_members(tarball, lambda n: n.endswith("_B02.tif"))) == expected
    raw = gzip.decompress(tarball.read_bytes())
    split = tmp_path / "members.tar.gz"
    split.write_bytes(gzip.compress(raw[:300_000]) + gzip.compress(raw[300_000:]) + b"\0" * 1000)
    assert list(tar.iter_members(split, lambda n: n.endswith("_B02.tif"))) == expected


def test_header_checksums_unsigned_and_signed() -> None:
    info = tarfile.TarInfo("p/q_B02.tif")
    info.size = 5
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT))[: tar.RECORD]
    header[100:108] = b"\xe9\xe9000644"  # bytes over 127 in the mode field: signed and unsigned sums differ
    unsigned = sum(header[:148]) + 256 + sum(header[156:])
    for value in (unsigned, unsigned - 2 * 256):
        header[148:156] = b"%06o\0 " % value
        tar.check_sum(bytes(header))
    header[148:156] = b"%06o\0 " % (unsigned + 1)
    with pytest.raises(tar.TarFormatError, match="checksum"):
        tar.check_sum(bytes(header))


def test_an_empty_download_is_reported(tmp_path: Path) -> None:
    for name, data in (("empty.tar.gz", b""), ("empty-inside.tar.gz", gzip.compress(b""))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ArchiveError, match=rf"{name} cannot be read to the end \(empty file\)"):
            list(tar.iter_members(tmp_path / name, lambda n: True))


def test_a_stopped_tar_build_resumes_without_reading_its_labels_again(
    synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The label scan (a whole pass through the download) is kept in OUT/.ben-hub/labels with the problems it met;
    a rerun takes it from there and ends with the repository an uninterrupted build writes; a finished build
    deletes it, and a replaced download is scanned again."""
    import shutil

    from ben_hub import build as build_module
    from ben_hub.archive import scan_cache, v1

    s2 = Path(shutil.copytree(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0"))
    broken = sorted(s2.glob("*/*_labels_metadata.json"))[3]
    broken.write_text("{")  # a problem the scan records, with --skip-bad
    tarball = make_tar(s2, tmp_path / "BigEarthNet-v1.0.tar.gz")
    config = BuildConfig(spec=locate_archive(tarball, with_s1=False), lists_dir=synth_v1 / "splits", shard_size=40,
                         skip_bad=True)  # fmt: skip
    build(config, tmp_path / "straight", progress=False)

    class Stop(Exception):
        pass

    def stop(*args: object) -> None:
        raise Stop

    out = tmp_path / "stopped"
    with monkeypatch.context() as patch:
        patch.setattr(build_module, "write_shards", stop)  # killed after its label scan
        with pytest.raises(Stop):
            build(config, out, progress=False)
    kept = out / ".ben-hub" / "labels"
    key = scan_cache.scan_key(config.spec, True)
    assert sorted(p.name for p in kept.iterdir()) == [f"{key}.arrow", f"{key}.json"]
    assert [p["patch_id"] for p in json.loads((kept / f"{key}.json").read_text())] == [broken.parent.name]

    def no_scan(*args: object) -> None:
        raise AssertionError("the labels were read again")

    with monkeypatch.context() as patch:
        patch.setattr(v1, "scan", no_scan)
        build(config, out, progress=False)
    assert tree_digest(out) == tree_digest(tmp_path / "straight") and not kept.exists()
    stat = tarball.stat()
    os.utime(tarball, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # downloaded again
    assert scan_cache.scan_key(config.spec, True) != key
