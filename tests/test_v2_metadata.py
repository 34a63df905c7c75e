"""reBEN's metadata as the label index: computed a column at a time, it must equal what each row says when read
one at a time (the way before it), on the synthetic archive, on a sample of the real published metadata and
on rows edited to every kind of bad; bad rows stop the build naming the patch and the file, or are skipped."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ben_hub.archive import ArchiveSpec, locate_archive, raise_error, v2
from ben_hub.archive.base import INDEX_COLUMNS, index_records
from ben_hub.build import BuildConfig, build
from ben_hub.errors import ArchiveError, PatchError
from ben_hub.geo import time_from_product
from ben_hub.labels import label_indices

from .conftest import V2_META, needs_shared

EXTRA = v2.EXTRA_NAME


def row_by_row(row: dict[str, Any], with_s1: bool) -> dict[str, Any]:
    """The index row of one metadata row, from the per-name helpers (what the scan did row by row before)."""
    patch, s1 = row["patch_id"], row["s1_name"]
    return {
        "patch_id": patch, "labels": None, "labels_19": label_indices(row["labels"], 19), "s1_patch_id": s1,
        "s2v1_name": row["s2v1_name"], "acquisition_time": time_from_product(patch),
        "tile_source": v2.tile_product(patch), "country": row["country"],
        "seasonal_snow": bool(row["contains_seasonal_snow"]), "cloud_or_shadow": bool(row["contains_cloud_or_shadow"]),
        "no_19_class_labels": False, "_s2_dir": f"{v2.tile_product(patch)}/{patch}",
        "_s1_dir": f"{v2.s1_scene(s1)}/{s1}" if with_s1 and s1 else None,
        "_official": row["split"] if row["_official"] else None,
    }  # fmt: skip


def expected_index(metadata: Path, with_s1: bool) -> list[dict[str, Any]]:
    rows = [{**r, "_official": True} for r in pq.read_table(metadata).to_pylist()]
    if (metadata.parent / EXTRA).is_file():
        rows += [{**r, "_official": False} for r in pq.read_table(metadata.parent / EXTRA).to_pylist()]
    return [row_by_row(r, with_s1) for r in sorted(rows, key=lambda r: r["patch_id"])]


def spec_of(folder: Path, with_s1: bool = True) -> ArchiveSpec:
    extra = folder / EXTRA
    return ArchiveSpec(
        "v2",
        s2=folder / "BigEarthNet-S2",
        s1=folder / "BigEarthNet-S1" if with_s1 else None,
        metadata=folder / "metadata.parquet",
        metadata_extra=extra if extra.is_file() else None,
    )


@pytest.mark.parametrize("with_s1", [True, False])
def test_index_equals_the_rows_read_one_at_a_time(synth_v2: Path, with_s1: bool) -> None:
    index = v2.index(spec_of(synth_v2, with_s1), raise_error)
    assert index.schema == pa.schema(INDEX_COLUMNS)
    assert index.to_pylist() == expected_index(synth_v2 / "metadata.parquet", with_s1)
    records = list(index_records(index))
    assert [r.patch_id for r in records] == index.column("patch_id").to_pylist()
    assert records[0].flags.keys() == {"seasonal_snow", "cloud_or_shadow"} and records[0].labels_43 is None


@needs_shared()
def test_index_of_a_sample_of_the_real_metadata(tmp_path: Path) -> None:
    """8,087 real rows (every 120th official and every 17th snow/cloud one): labels, splits, names, flags."""
    for name, step in (("metadata.parquet", 120), (EXTRA, 17)):
        table = pq.read_table(V2_META / name)
        pq.write_table(table.take(np.arange(0, table.num_rows, step)), tmp_path / name)
    index = v2.index(spec_of(tmp_path), raise_error)
    expected = expected_index(tmp_path / "metadata.parquet", True)
    assert len(expected) == 4001 + 4086 and index.to_pylist() == expected


def edit_row(change: dict[str, Any], which: str = "metadata.parquet") -> Any:
    """Rewrite the ``which`` file with ``change`` applied to its fourth row (in patch order); returns the patch."""

    def apply(folder: Path) -> tuple[str, str]:
        table = pq.read_table(folder / which)
        rows = table.sort_by("patch_id").to_pylist()
        rows[3].update(change)
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), folder / which)
        return rows[3]["patch_id"], str(folder / which)

    return apply


BAD = {
    "empty_labels": (edit_row({"labels": []}), "empty_labels", "no labels in metadata"),
    "null_labels": (edit_row({"labels": None}), "empty_labels", "no labels in metadata"),
    "unknown_label": (
        edit_row({"labels": ["Urban fabric", "Moon craters", "Lunar seas"]}),
        "unknown_label",
        "unknown label 'Moon craters'; reBEN labels are the 19-class names",
    ),
    "bad_split": (edit_row({"split": "val"}), "bad_split", "split 'val' is not train/validation/test"),
    "null_split": (edit_row({"split": None}), "bad_split", "split None is not train/validation/test"),
    "snow_file": (edit_row({"split": "holdout"}, EXTRA), "bad_split", "split 'holdout' is not"),
    "no_time": (edit_row({"patch_id": "S2A_MSIL2A_N9999_R022_T33UUP_26_57"}), "bad_patch_id", "no sensing time"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_metadata_row_stops_the_build_naming_patch_and_file(synth_v2: Path, tmp_path: Path, case: str) -> None:
    damage, reason, message = BAD[case]
    archive = Path(shutil.copytree(synth_v2, tmp_path / "v2"))
    patch, path = damage(archive)
    with pytest.raises(PatchError) as info:
        build(BuildConfig(spec=locate_archive(archive)), tmp_path / "out", progress=False)
    assert (info.value.patch_id, info.value.reason, info.value.path) == (patch, reason, path)
    assert message in str(info.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_bad_metadata_rows_are_skipped_in_patch_order(synth_v2: Path, tmp_path: Path) -> None:
    archive = Path(shutil.copytree(synth_v2, tmp_path / "v2"))
    table = pq.read_table(archive / "metadata.parquet").sort_by("patch_id")
    rows = table.to_pylist()
    rows[9]["labels"], rows[2]["split"] = ["Moon craters"], "val"
    rows[5]["labels"] = ["Pastures", "Arable land", "Pastures"]  # repeated and out of order: kept, once each, sorted
    pq.write_table(pa.Table.from_pylist(rows[::-1], schema=table.schema), archive / "metadata.parquet")
    result = build(BuildConfig(spec=locate_archive(archive), skip_bad=True), tmp_path / "out", progress=False)
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [(s["patch_id"], s["reason"]) for s in skipped] == [
        (rows[2]["patch_id"], "bad_split"),
        (rows[9]["patch_id"], "unknown_label"),
    ]
    total = len(rows) + pq.read_metadata(archive / EXTRA).num_rows
    assert result is not None and result["rows"] == total - 2
    index = v2.index(spec_of(archive), lambda error: None)
    kept = index.filter(pa.compute.equal(index.column("patch_id"), rows[5]["patch_id"]))
    assert kept.column("labels_19").to_pylist() == [label_indices(["Arable land", "Pastures"], 19)]


def test_the_benchmarks_row_scan_gives_the_same_index(synth_v2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench/scale.py`` times the scan a row at a time beside the columnar one: both must build one index."""
    from ben_hub.archive import LAYOUTS
    from ben_hub.archive.base import ONE_PROCESS

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "bench"))
    import row_scan

    monkeypatch.setitem(LAYOUTS, "v2", LAYOUTS["v2"])  # restored after the test
    row_scan.install()
    assert LAYOUTS["v2"].scan is row_scan.scan
    spec = spec_of(synth_v2)
    assert LAYOUTS["v2"].index(spec, raise_error, ONE_PROCESS).equals(v2.index(spec, raise_error))


def test_a_row_without_patch_id_names_the_file(synth_v2: Path, tmp_path: Path) -> None:
    archive = Path(shutil.copytree(synth_v2, tmp_path / "v2"))
    edit_row({"patch_id": None})(archive)
    with pytest.raises(ArchiveError, match=f"{archive / 'metadata.parquet'}: 1 rows have no patch_id; is it"):
        build(BuildConfig(spec=locate_archive(archive)), tmp_path / "out", progress=False)
