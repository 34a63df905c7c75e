"""The nomenclature a split is stratified on and measured by (``--classes 43|19``), for ``split`` and ``build``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub import splits
from ben_hub.archive import locate_archive
from ben_hub.build import BuildConfig
from ben_hub.cli import main
from ben_hub.errors import SplitError
from ben_hub.labels import LABELS_19, LABELS_43, matrix_to_19, to_19
from ben_hub.loader import multi_hot
from ben_hub.splits.quality import quality
from ben_hub.verify import verify

from .conftest import v1_config


def stored(repo: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Every official-set patch of a built repository in patch-id order: ids, 43- and 19-class multi-hot labels,
    and its resampled split (from its cell)."""
    tables, cells = [], []
    for path in sorted((repo / "data").rglob("*.parquet")):
        if path.parent.name != "excluded":
            table = pq.read_table(path, columns=["patch_id", "labels", "labels_19"])
            tables.append(table)
            cells += [path.parent.name.split("-")[1]] * table.num_rows
    table = pa.concat_tables(tables)
    order = np.argsort(table.column("patch_id").to_numpy(zero_copy_only=False), kind="stable")
    labels = multi_hot(table.column("labels"), 43, bool)[order]
    return (
        [table.column("patch_id")[int(i)].as_py() for i in order],
        labels,
        multi_hot(table.column("labels_19"), 19, bool)[order],
        [cells[int(i)] for i in order],
    )


def test_the_19_class_matrix_is_the_stored_labels_19(built_v1: Path) -> None:
    """v1's 43-class labels grouped into the 19 classes give the labels_19 a build stores, and each row is to_19 of
    the row's 43-class ids (random matrices too, the ten dropped classes included)."""
    _, labels, labels_19, _ = stored(built_v1)
    assert labels.any() and np.array_equal(matrix_to_19(labels), labels_19)
    rng = np.random.default_rng(3)
    Y = rng.random((300, 43)) < 0.1
    grouped = matrix_to_19(Y)
    assert grouped.shape == (300, 19) and grouped.dtype == bool
    for row, out in zip(Y, grouped, strict=True):
        assert list(np.flatnonzero(out)) == to_19(list(np.flatnonzero(row)))


def test_a_build_stratified_on_the_19_classes(synth_v1: Path, tmp_path: Path) -> None:
    """--classes 19: the resampled split is the method's split of the 19-class matrix, build.json records it, both
    configurations' quality is measured on the 19 classes, the card says so and verify recounts it; --classes 43 on
    v1 is the default (same identity, so the same digests)."""
    out = tmp_path / "nineteen"
    args = ["build", str(synth_v1), "-o", str(out), "--lists-dir", str(synth_v1 / "splits"), "--no-s1",
            "--method", "fast", "--shard-size", "40", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--classes", "19"])
    assert result.exit_code == 0, result.output
    identity = json.loads((out / "build.json").read_text())
    assert identity["classes"] == 19
    _, labels, labels_19, cells = stored(out)
    expected = splits.split(labels_19, "fast", splits.PAPER_RATIOS, 0)
    assert cells == [splits.SPLITS[i] for i in expected]
    on_43 = splits.split(labels, "fast", splits.PAPER_RATIOS, 0)
    assert not np.array_equal(expected, on_43)  # the nomenclature changes the split
    recorded = json.loads((out / "stats.json").read_text())
    resampled = recorded["quality"]["resampled"]
    assert [row["label"] for row in resampled["per_label"]] == list(LABELS_19)
    assert len(recorded["quality"]["original"]["per_label"]) == 19
    assert resampled["LD"] == pytest.approx(quality(labels_19, expected, splits.PAPER_RATIOS, LABELS_19)["LD"])
    card = (out / "README.md").read_text()
    assert "iterative stratification on the 19-class labels for the target ratios" in card
    assert "as defined by Sechidis et al. (2011), on the 19-class labels" in card
    assert verify(out)["card_skipped"] is None
    default = v1_config(synth_v1, method="fast").identity()
    assert "classes" not in default and v1_config(synth_v1, method="fast", classes=43).identity() == default
    plain = tmp_path / "plain"  # the default build measures on 43 and says so
    assert CliRunner().invoke(main, [*args[:3], str(plain), *args[4:]]).exit_code == 0
    assert "(2011), on the 43-class labels" in (plain / "README.md").read_text()
    assert len(json.loads((plain / "stats.json").read_text())["quality"]["resampled"]["per_label"]) == 43


def test_split_on_the_19_classes_and_what_is_refused(built_v1: Path, synth_v2: Path, tmp_path: Path) -> None:
    """`split --classes 19` of a v1 repository splits and reports on the 19 classes; reBEN has no 43-class labels,
    said from the CLI (exit 1, no traceback) and from BuildConfig; a nomenclature of neither size is refused."""
    out = tmp_path / "split"
    result = CliRunner().invoke(main, ["split", str(built_v1), "-o", str(out), "--classes", "19"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "quality.json").read_text())
    ids, _, labels_19, _ = stored(built_v1)
    assignment = splits.split(labels_19, "fast", splits.PAPER_RATIOS, 0)
    assert report["fast"]["LD"] == pytest.approx(quality(labels_19, assignment, splits.PAPER_RATIOS, LABELS_19)["LD"])
    assert [row["label"] for row in report["original"]["per_label"]] == list(LABELS_19)
    rows = (out / "assignment.csv").read_text().splitlines()[1:]
    assert rows == [f"{p},{splits.SPLITS[a]}" for p, a in zip(ids, assignment, strict=True)]
    plain = CliRunner().invoke(main, ["split", str(built_v1), "-o", str(tmp_path / "plain")])
    plain_report = json.loads((tmp_path / "plain" / "quality.json").read_text())
    assert plain.exit_code == 0 and len(plain_report["fast"]["per_label"]) == len(LABELS_43)
    refused = CliRunner().invoke(
        main, ["split", str(synth_v2 / "metadata.parquet"), "-o", str(tmp_path / "x"), "--classes", "43"]
    )
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "has only the 19-class labels (reBEN's nomenclature), not 43: drop --classes" in refused.output
    with pytest.raises(SplitError, match=r"reBEN \(v2\) has only the 19-class labels: drop --classes 43"):
        BuildConfig(spec=locate_archive(synth_v2), classes=43)
    with pytest.raises(SplitError, match="20 classes asked"):
        BuildConfig(spec=locate_archive(synth_v2), classes=20)
    wrong = CliRunner().invoke(main, ["split", str(built_v1), "-o", str(tmp_path / "y"), "--classes", "20"])
    assert wrong.exit_code == 2 and "'20' is not one of '43', '19'" in wrong.output
