"""``verify --archive``: a built repository compared with its archive, pixel for pixel (:mod:`ben_hub.audit`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub import audit as audit_module
from ben_hub.archive import locate_archive
from ben_hub.audit import AuditReport, Difference, audit, band_difference, choose, differences_file
from ben_hub.build import BuildConfig, build
from ben_hub.cli import main
from ben_hub.errors import ArchiveError
from ben_hub.repo import load_manifest
from ben_hub.tiff import read_geoinfo, read_tiff, write_tiff

from .test_tarball import make_tar

ALL_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "VV", "VH")


def patch_folders(archive: Path, part: str = "BigEarthNet-v1.0") -> list[Path]:
    return sorted(p for p in (archive / part).iterdir() if p.is_dir())


def change_pixel(tif: Path, row: int, col: int, value: float) -> None:
    """Rewrite one GeoTIFF with one pixel changed (same georeferencing)."""
    data = tif.read_bytes()
    array = read_tiff(data).copy()
    array[row, col] = value
    tif.write_bytes(write_tiff(array, read_geoinfo(data)))


def found(report: AuditReport) -> dict[tuple[str, str], str]:
    return {(d.patch_id, d.what): d.detail for d in report.differences}


def test_a_fresh_build_equals_its_archive_folder(built_v1: Path, synth_v1: Path) -> None:
    report = audit(built_v1, locate_archive(synth_v1))
    assert report.ok and report.differences == [] and report.unstored == 0
    assert report.compared == report.stored == 160
    assert report.bands == ALL_BANDS


def test_changed_pixels_labels_and_files_are_each_named(built_v1: Path, v1_copy: Path, tmp_path: Path) -> None:
    s2 = patch_folders(v1_copy)
    pixel, label, gone, twin, moved, cut = s2[3], s2[10], s2[20], s2[30], s2[40], s2[50]
    b05 = cut / f"{cut.name}_B05.tif"
    b05.write_bytes(b05.read_bytes()[:100])  # a truncated file
    b02 = moved / f"{moved.name}_B02.tif"
    geo = read_geoinfo(b02.read_bytes())
    assert geo is not None
    b02.write_bytes(write_tiff(read_tiff(b02.read_bytes()), replace(geo, ulx=geo.ulx + 1200)))
    change_pixel(pixel / f"{pixel.name}_B04.tif", 7, 9, 1)
    doc_path = label / f"{label.name}_labels_metadata.json"
    doc = json.loads(doc_path.read_text())
    doc["labels"] = ["Vineyards"] if doc["labels"] != ["Vineyards"] else ["Pastures"]
    doc_path.write_text(json.dumps(doc))
    (gone / f"{gone.name}_B8A.tif").unlink()
    s1_docs = (v1_copy / "BigEarthNet-S1-v1.0").glob("*/*.json")
    twin_doc = next(p for p in s1_docs if json.loads(p.read_text())["corresponding_s2_patch"] == twin.name)
    vv = next(twin_doc.parent.glob("*_VV.tif"))
    change_pixel(vv, 0, 119, float("nan"))
    twin_json = json.loads(twin_doc.read_text())
    twin_doc.write_text(json.dumps({**twin_json, "corresponding_s2_patch": "someone_else"}))

    report = audit(built_v1, locate_archive(v1_copy))
    in_processes = audit(built_v1, locate_archive(v1_copy), workers=2)
    sampled = audit(built_v1, locate_archive(v1_copy), sample=160)  # reads only the sampled patches' JSON files

    differences = found(report)
    assert differences[(pixel.name, "B04")].startswith("1 of 14,400 pixels differ; first at row 7, column 9: stored ")
    assert differences[(pixel.name, "B04")].endswith("archive 1")
    assert set(differences) >= {(label.name, "labels"), (label.name, "labels_19")}
    assert differences[(gone.name, "B8A")].startswith("no B8A file in ")
    assert differences[(cut.name, "B05")].startswith(f"the archive's B05 file in {cut} cannot be read: ")
    assert "skip" not in differences[(cut.name, "B05")]  # the build's advice is not this check's
    assert "archive nan" in differences[(twin.name, "VV")]
    assert "names 'someone_else' as its S2 patch" in differences[(twin.name, "s1_patch_id")]
    assert found(report)[(moved.name, "ulx")] == f"stored {geo.ulx!r}, B02's georeferencing {geo.ulx + 1200!r}"
    assert (moved.name, "B02") not in differences  # same pixels
    assert report.differing == 6 and not report.ok
    assert (pixel.name, "B03") not in differences  # only what changed
    for other in (in_processes, sampled):
        assert other.differences == report.differences and other.differing == report.differing
    assert report.verdict().startswith("6 of 160 compared patches differ from the archive")
    s2_tar = make_tar(v1_copy / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar.gz")
    make_tar(v1_copy / "BigEarthNet-S1-v1.0", tmp_path / "BigEarthNet-S1-v1.0.tar.gz")
    streamed = audit(built_v1, locate_archive(s2_tar))  # the labels read from the JSONs in the S2 stream
    assert sorted(found(streamed)) == sorted(differences) and streamed.differing == 6
    assert found(streamed)[(label.name, "labels")] == differences[(label.name, "labels")]


def test_every_difference_goes_to_the_report_file_in_the_same_order_with_any_workers(
    built_v1: Path, v1_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in patch_folders(v1_copy)[::20]:  # 8 patches, each with a changed pixel in 3 bands
        for band in ("B02", "B8A", "B09"):
            change_pixel(folder / f"{folder.name}_{band}.tif", 0, 0, 7)
    monkeypatch.setattr(audit_module, "KEPT", 5)
    written = []
    for workers in (1, 2):
        path = tmp_path / f"differences-{workers}.jsonl"
        with differences_file(path) as sink:
            report = audit(built_v1, locate_archive(v1_copy), workers=workers, sink=sink)
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(lines) == report.found == 24 and report.differing == 8
        assert [Difference(**line) for line in lines[:5]] == report.differences  # the screen: the first 5
        written.append(path.read_bytes())
    assert written[0] == written[1]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_comparison_leaves_no_report_file(built_v1: Path, synth_v2: Path, tmp_path: Path) -> None:
    path = tmp_path / "differences.jsonl"
    with pytest.raises(ArchiveError), differences_file(path) as sink:
        audit(built_v1, locate_archive(synth_v2), sink=sink)
    assert list(tmp_path.iterdir()) == []


def test_another_archives_tarball_is_one_error(built_v1: Path, synth_v2: Path, tmp_path: Path) -> None:
    """A v1 S2 tarball is compared in one pass, its labels with its pixels: one that holds none of the stored
    patches is found out at the end of that pass, as the other archive it is, not 160 missing folders."""
    other = make_tar(synth_v2 / "BigEarthNet-S2", tmp_path / "BigEarthNet-v1.0.tar.gz")
    said = r"none of the .* patches to compare is in the archive at .*\(v1 layout{}\): pass the archive this"
    for sample, held in ((None, ", 120 patches"), (10, "")):
        with pytest.raises(ArchiveError, match=said.format(held)):
            audit(built_v1, locate_archive(other, with_s1=False), sample=sample, with_s1=False)


def test_every_patch_also_finds_archive_patches_neither_stored_nor_skipped(built_v1: Path, v1_copy: Path) -> None:
    source = patch_folders(v1_copy)[0]
    extra_name = source.name.replace("_0", "_999", 1) if "_0" in source.name else source.name + "_999"
    extra = v1_copy / "BigEarthNet-v1.0" / extra_name
    extra.mkdir()
    for path in source.iterdir():
        shutil.copy(path, extra / path.name.replace(source.name, extra_name))

    everything = audit(built_v1, locate_archive(v1_copy))
    sampled = audit(built_v1, locate_archive(v1_copy), sample=20)

    assert everything.unstored == 1 and found(everything) == {
        (extra_name, "unstored"): "in the archive, but neither stored nor listed in skipped.json"
    }
    assert "archive patches neither stored nor in skipped.json: 1" in everything.verdict()
    assert sampled.ok and sampled.compared == 20 and not sampled.every  # a sample checks stored patches only
    whole = audit(built_v1, locate_archive(v1_copy), sample=everything.stored)  # verify's default on a small build
    assert whole.every and whole.unstored == 1 and whole.compared == everything.compared


def test_a_sample_is_seeded_sized_and_in_storage_order() -> None:
    ids = [f"p{i:03d}" for i in range(200)]
    first, again, other = choose(ids, 25, 0), choose(ids, 25, 0), choose(ids, 25, 1)
    assert first == again != other
    assert len(first) == 25 == len(set(first))
    assert first == sorted(first, key=ids.index)
    assert choose(ids, 500, 0) == ids == choose(ids, None, 0)


def test_band_difference_compares_bits() -> None:
    a = np.zeros((4, 4), np.float32)
    assert band_difference(a, a.copy()) is None
    b = a.copy()
    b[1, 2] = -0.0  # equal as floats, not as stored bits
    assert band_difference(a, b) == "1 of 16 pixels differ; first at row 1, column 2: stored 0.0, archive -0.0"
    nan, other_nan = a.copy(), a.copy()
    nan[0, 0], other_nan[0, 0] = np.nan, np.frombuffer(b"\x01\x00\xc0\x7f", np.float32)[0]
    assert band_difference(nan, nan.copy()) is None  # the same NaN is equal
    assert band_difference(nan, other_nan) is not None  # another NaN payload is not
    assert band_difference(a, np.zeros((2, 8), np.float32)) == "stored shape (4, 4), archive (2, 8)"


def test_tarballs_are_streamed_once_per_part(
    built_v1: Path, synth_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both parts read once each: v1's labels come from the S2 JSON files as they stream by with the bands."""
    from ben_hub.archive import tar

    s2 = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "BigEarthNet-v1.0.tar.gz")
    s1 = make_tar(synth_v1 / "BigEarthNet-S1-v1.0", tmp_path / "BigEarthNet-S1-v1.0.tar.gz")  # found beside it
    reads: list[Path] = []
    opened = tar.opened

    def counted(path: Path, *args: Any) -> Any:
        reads.append(path)
        return opened(path, *args)

    monkeypatch.setattr(tar, "opened", counted)
    clean = audit(built_v1, locate_archive(s2))
    assert clean.ok and clean.compared == 160 and clean.bands == ALL_BANDS
    assert reads == [s2, s1]

    (tmp_path / "lacking").mkdir()
    lacking = make_tar(synth_v1 / "BigEarthNet-v1.0", tmp_path / "lacking" / "s2.tar.gz", skip="_B8A.tif")
    report = audit(built_v1, locate_archive(lacking, s1_dir=synth_v1 / "BigEarthNet-S1-v1.0"), sample=10)
    assert report.differing == 10 and {d.what for d in report.differences} == {"B8A"}
    assert report.differences[0].detail.startswith(f"no B8A file in {lacking}:")


def test_a_tarball_out_of_storage_order_is_digested_each_row_group_once(
    built_v1: Path, v1_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tarball's patches arrive in its packer's order.  Packed in name order, each stored row is read as its patch
    arrives (a group serves its rows); shuffled, the first patches arrive scattered over the row groups, so the
    stored rows are digested shard by shard, each group decoded once, and only a patch whose digests disagree is
    read again, its difference described as from the folder."""
    s2 = patch_folders(v1_copy)
    change_pixel(s2[5] / f"{s2[5].name}_B11.tif", 3, 4, 77)
    from_folder = audit(built_v1, locate_archive(v1_copy))
    probe = 96  # of 160 patches: in name order they touch at most the repository's 11 row groups, shuffled ~96
    monkeypatch.setattr(audit_module, "PROBE", probe)
    decoded: list[tuple[bool, Path, int]] = []  # (in the digest pass, shard, row group)
    compared: list[str] = []
    passes: list[tuple[str, ...]] = []
    group, values, digests = audit_module.StoredRows._group, audit_module.compare_values, audit_module.stored_digests

    def counted_group(self: audit_module.StoredRows, number: int, at: int, columns: tuple[str, ...]) -> Any:
        if (number, at, columns) not in self.cache:
            decoded.append((len(passes) > 0 and passes[-1] != (), self.paths[number], at))
        return group(self, number, at, columns)

    def counted_values(report: AuditReport, patch: str, *rest: Any) -> None:
        compared.append(patch)
        values(report, patch, *rest)

    def counted_digests(stored: Any, order: list[str], columns: tuple[str, ...], *rest: Any) -> Any:
        passes.append(columns)
        try:
            return digests(stored, order, columns, *rest)
        finally:
            passes.append(())

    monkeypatch.setattr(audit_module.StoredRows, "_group", counted_group)
    monkeypatch.setattr(audit_module, "compare_values", counted_values)
    monkeypatch.setattr(audit_module, "stored_digests", counted_digests)
    groups = sum(pq.ParquetFile(built_v1 / s["path"]).num_row_groups for s in load_manifest(built_v1)["shards"])
    for shuffle in (None, 1):
        for log in (decoded, compared, passes):
            log.clear()
        cached = 32 if shuffle is None else 1  # shuffled: the cache (here larger than the repository) cannot hide it
        monkeypatch.setattr(audit_module, "CACHED_ROW_GROUPS", cached)
        folder = tmp_path / f"shuffle-{shuffle}"
        folder.mkdir()
        s2_tar = make_tar(v1_copy / "BigEarthNet-v1.0", folder / "BigEarthNet-v1.0.tar.gz", shuffle=shuffle)
        make_tar(v1_copy / "BigEarthNet-S1-v1.0", folder / "BigEarthNet-S1-v1.0.tar.gz", shuffle=shuffle)
        streamed = audit(built_v1, locate_archive(s2_tar))
        assert streamed.differences == from_folder.differences and streamed.differing == 1
        assert streamed.differences[0].what == "B11" and "first at row 3, column 4" in streamed.differences[0].detail
        if shuffle is None:  # in storage order within each cell: no digests, each group read about once a part
            assert passes == [] and len(compared) == 2 * 160 and len(decoded) == 2 * groups
            continue
        assert [len(c) for c in passes[::2]] == [12 + 8, 2]  # the S2 part, then the S1 part: each switched
        digested = [d[1:] for d in decoded if d[0]]
        assert len(digested) == 2 * groups and len(set(digested)) == groups  # each group once a part
        assert len(decoded) - len(digested) <= 2 * probe + 1  # the probes, and the differing patch read again
        assert s2[5].name in compared and compared[probe:-probe] in ([], [s2[5].name])  # read again unless probed


def test_digests_tell_apart_what_band_difference_does() -> None:
    """Equal digests only for equal dtype, shape and bits (a NaN's payload, the sign of a zero); others by repr."""
    a = np.zeros((4, 4), np.float32)
    digest = audit_module.digest
    assert digest(a) == digest(a.copy()) == digest(np.asfortranarray(a))
    b = a.copy()
    b[1, 2] = -0.0
    nan, other_nan = a.copy(), a.copy()
    nan[0, 0], other_nan[0, 0] = np.nan, np.frombuffer(b"\x01\x00\xc0\x7f", np.float32)[0]
    different = [a, b, nan, other_nan, a.reshape(2, 8), a.view(np.uint32), a.astype(np.float64)]
    assert len({digest(x) for x in different}) == len(different)
    assert digest(nan) == digest(nan.copy())
    assert digest(["Pastures"]) == digest(["Pastures"]) != digest(["Pastures", "Vineyards"])
    assert digest(32632) != digest(32632.0) and digest(600000.0) == digest(600000.0)


def test_reben_from_its_tar_zst(synth_v2: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build(BuildConfig(spec=locate_archive(synth_v2), shard_size=40), repo, progress=False)
    tarball = make_tar(synth_v2 / "BigEarthNet-S2", tmp_path / "BigEarthNet-S2.tar.zst", zstd=True)
    report = audit(
        repo, locate_archive(tarball, metadata=synth_v2 / "metadata.parquet", s1_dir=synth_v2 / "BigEarthNet-S1")
    )
    assert report.ok and report.compared == report.stored == 120
    assert audit(repo, locate_archive(synth_v2, with_s1=False), with_s1=False).bands == ALL_BANDS[:12]


def test_the_wrong_archive_is_an_error_that_says_what_to_do(built_v1: Path, synth_v1: Path, synth_v2: Path) -> None:
    with pytest.raises(ArchiveError, match="stores VV, VH but the archive has no Sentinel-1 part: pass --s1-dir"):
        audit(built_v1, locate_archive(synth_v1, with_s1=False))
    with pytest.raises(ArchiveError, match=r"none of the 160 patches to compare is in the archive at .* \(v2 layout, "
                       r"120 patches\): pass the archive this repository was built from"):  # fmt: skip
        audit(built_v1, locate_archive(synth_v2), sample=None)


def test_cli_reports_differences_and_exits_1(built_v1: Path, v1_copy: Path, synth_v1: Path) -> None:
    patch = patch_folders(v1_copy)[5]
    change_pixel(patch / f"{patch.name}_B11.tif", 59, 0, 3)

    clean = CliRunner().invoke(main, ["verify", str(built_v1), "-j", "1", "--archive", str(synth_v1), "--quiet"])
    damaged = CliRunner().invoke(
        main, ["verify", str(built_v1), "-j", "1", "--archive", str(v1_copy), "--all", "--quiet"]
    )
    no_s1 = CliRunner().invoke(main, ["verify", str(built_v1), "--archive", str(v1_copy), "--no-s1", "--sample", "5"])

    assert clean.exit_code == 0, clean.output
    assert "compared 160 patches, all 160 stored" in clean.output  # the default sample (1,000) holds them all
    assert "VV, VH bit-identical; labels, georeferencing and S1 twins equal" in clean.output
    assert damaged.exit_code == 1
    reported = CliRunner().invoke(
        main, ["verify", str(built_v1), "--archive", str(v1_copy), "--quiet", "--report", str(v1_copy / "d.jsonl")]
    )
    assert reported.exit_code == 1 and "wrote 1 difference to" in reported.output
    assert json.loads((v1_copy / "d.jsonl").read_text())["what"] == "B11"
    assert f"{patch.name} B11: 1 of 3,600 pixels differ; first at row 59, column 0" in damaged.output
    assert "Error: 1 of 160 compared patches differ from the archive" in damaged.output
    assert "Traceback" not in damaged.output
    assert no_s1.exit_code == 0 and "B12 bit-identical; labels, georeferencing equal" in no_s1.output
