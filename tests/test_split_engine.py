"""The split engine: properties on random label matrices, the real reBEN labels, and the CLI."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ben_hub.cli import main
from ben_hub.labels import LABELS_19
from ben_hub.repo import cell_of
from ben_hub.splits import PAPER_RATIOS, split, target_sizes
from ben_hub.splits.quality import quality, shorten
from ben_hub.splits.sources import from_metadata, from_repository
from ben_hub.verify import verify

from .conftest import V2_META, needs_shared

RATIOS = st.sampled_from(
    [(0.6, 0.2, 0.2), (0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (0.7, 0.15, 0.15), (1 / 3, 1 / 3, 1 / 3)]
)


@st.composite
def label_matrices(draw: st.DrawFn, min_rows_per_label: int = 0) -> np.ndarray:
    q = draw(st.integers(1, 12))
    n = draw(st.integers(max(1, min_rows_per_label * q), 300 + min_rows_per_label * q))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.random((n, q)) < rng.uniform(0.0, 0.6, q) ** 2


@settings(max_examples=150, deadline=None)
@given(Y=label_matrices(), ratios=RATIOS, seed=st.integers(0, 1000))
def test_fast_assigns_every_row_once_with_exact_sizes(Y: np.ndarray, ratios: tuple, seed: int) -> None:
    a = split(Y, "fast", ratios, seed)
    assert a.shape == (len(Y),) and a.min() >= 0 and a.max() <= 2
    assert np.bincount(a, minlength=3).tolist() == target_sizes(len(Y), ratios).tolist()
    assert split(Y, "fast", ratios, seed).tolist() == a.tolist()


@settings(max_examples=150, deadline=None)
@given(Y=label_matrices(min_rows_per_label=20), ratios=RATIOS, seed=st.integers(0, 1000))
def test_fast_puts_every_label_with_enough_positives_in_every_split(Y: np.ndarray, ratios: tuple, seed: int) -> None:
    # With exact split sizes this can be impossible on tiny matrices (two labels competing for the one row of
    # a small split), hence at least 20 rows per label here.
    a = split(Y, "fast", ratios, seed)
    sizes = target_sizes(len(Y), ratios)
    for label in range(Y.shape[1]):
        positives = Y[:, label]
        # each split wants at least one positive of this label: count * ratio >= 1 for every split
        if positives.sum() * min(ratios) >= 1 and (sizes > 0).all():
            assert set(a[positives].tolist()) == {0, 1, 2}, label


def test_fast_balances_better_than_random_on_skewed_labels() -> None:
    rng = np.random.default_rng(0)
    Y = rng.random((20_000, 30)) < np.geomspace(0.3, 0.0005, 30)
    ld = {
        m: quality(Y, split(Y, m, (0.6, 0.2, 0.2), 0), (0.6, 0.2, 0.2))["LD"] for m in ("fast", "iterstrat", "random")
    }
    assert ld["fast"] < ld["random"] / 5 and ld["fast"] <= ld["iterstrat"] * 1.05


def test_quality_counts_are_direct_counts() -> None:
    Y = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 0]], bool)
    a = np.array([0, 0, 1, 2, 0], np.int8)
    r = quality(Y, a, (0.6, 0.2, 0.2), ["x", "y"])
    assert r["per_label"][0]["per_split"] == {"train": 2, "validation": 0, "test": 1}
    assert (
        r["zero_pairs"] == 2
        and r["avoidable_zero_pairs"] == 1
        and r["sizes"] == {"train": 3, "validation": 1, "test": 1}
    )
    # by hand: x has D^x/(D-D^x) = 3/2; train 2/(3-2), validation 0/1, test 1/0 -> 0 (zero denominator);
    # y has 2/3; train 1/(3-1), validation 1/0 -> 0, test 0/1
    expected_ld = np.mean([abs(2 - 1.5), abs(0 - 1.5), abs(0 - 1.5), abs(0.5 - 2 / 3), abs(0 - 2 / 3), abs(0 - 2 / 3)])
    assert r["LD"] == pytest.approx(expected_ld)
    # lists measured against their own shares may leave a split empty (target 0): no deviation there, not NaN
    with np.errstate(all="raise"):
        empty = quality(Y, np.array([0, 0, 1, 1, 0], np.int8), (0.6, 0.4, 0.0), ["x", "y"])
    assert empty["per_label"][0]["worst_relative_deviation"] == pytest.approx(1 / 6, abs=1e-6)  # x: 1/3, 0.4 wanted
    assert empty["worst_relative_deviation"] == pytest.approx(0.25)  # y: 1 of 2 in validation, 0.4 wanted


@needs_shared()
def test_report_counts_on_real_reben_labels_equal_a_direct_count(tmp_path: Path) -> None:
    data = from_metadata(V2_META / "metadata.parquet")
    assert data.Y.shape == (480_038, 19)
    assert data.official is not None  # reBEN's metadata names each patch's split
    r = quality(data.Y, data.official, (0.6, 0.2, 0.2), data.names)
    table = pq.read_table(V2_META / "metadata.parquet", columns=["labels", "split"]).to_pylist()
    assert r["sizes"] == {s: sum(row["split"] == s for row in table) for s in ("train", "validation", "test")}
    for label in ("Beaches, dunes, sands", "Arable land"):
        row = r["per_label"][LABELS_19.index(label)]
        for s in ("train", "validation", "test"):
            assert row["per_split"][s] == sum(label in t["labels"] and t["split"] == s for t in table)


def test_split_cli_writes_assignment_and_reports(synth_v1: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["split", str(synth_v1), "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    reports = json.loads((tmp_path / "s" / "quality.json").read_text())
    assert set(reports) == {"original", "fast"} and reports["fast"]["labels"] == 43
    lines = (tmp_path / "s" / "assignment.csv").read_text().splitlines()
    assert lines[0] == "patch_id,split" and len(lines) - 1 == reports["fast"]["rows"]
    assert (tmp_path / "s" / "label_counts.png").read_bytes()[:4] == b"\x89PNG"
    lists = {"train": "train", "validation": "val", "test": "test"}  # the official split's list files
    official = {line.split(",")[0]: split for split, name in lists.items()
                for line in (synth_v1 / "splits" / "original" / f"{name}.csv").read_text().split()}  # fmt: skip
    pairs = Counter((official[p], s) for p, s in (line.split(",") for line in lines[1:]))  # recounted from the files
    splits = ["train", "validation", "test"]
    assert reports["fast"]["official_overlap"] == [[pairs[o, s] for s in splits] for o in splits]
    assert "official_overlap" not in reports["original"]
    both = pairs["test", "test"]
    said = f"{both:,} test patches in both test splits, {both / reports['fast']['sizes']['test']:.1%} of this one's"
    assert (
        said in result.output
        and f"| test | {pairs['test', 'train']:,} | " in (tmp_path / "s" / "quality.md").read_text()
    )


def test_split_cli_on_a_built_repository_with_folds(built_v1: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["split", str(built_v1), "-o", str(tmp_path / "k"), "--folds", "4"])
    assert result.exit_code == 0, result.output
    reports = json.loads((tmp_path / "k" / "quality.json").read_text())
    manifest = json.loads((built_v1 / "manifest.json").read_text())
    official = manifest["rows"] - manifest["splits"]["excluded"]["excluded"]["num_examples"]
    folds = ["fold0", "fold1", "fold2", "fold3"]
    expected = dict(zip(folds, target_sizes(official, [0.25] * 4).tolist(), strict=True))
    assert (
        list(reports) == ["fast"] and reports["fast"]["sizes"] == expected and "official_overlap" not in reports["fast"]
    )
    assert {line.split(",")[1] for line in (tmp_path / "k" / "assignment.csv").read_text().splitlines()[1:]} == {
        "fold0",
        "fold1",
        "fold2",
        "fold3",
    }


def test_labels_of_a_built_repository_are_its_rows_in_patch_order(built_v1: Path) -> None:
    data = from_repository(built_v1)
    stored, cells = {}, {}
    for shard in json.loads((built_v1 / "manifest.json").read_text())["shards"]:
        for row in pq.read_table(built_v1 / shard["path"], columns=["patch_id", "labels"]).to_pylist():
            stored[row["patch_id"]], cells[row["patch_id"]] = row["labels"], cell_of(shard["path"])
    assert data.patch_ids == sorted(stored) and data.Y.shape == (len(stored), 43)
    assert [np.flatnonzero(y).tolist() for y in data.Y] == [sorted(stored[p]) for p in data.patch_ids]
    assert data.official is not None
    expected = [-1 if cells[p] == "excluded" else ("train", "validation", "test").index(cells[p].split("-")[0])
                for p in data.patch_ids]  # fmt: skip
    assert data.official.tolist() == expected


@pytest.mark.parametrize(
    ("labels", "message"),
    [([["Urban fabric", "Moon craters"]], "has the label 'Moon craters', not one of the 19 classes' names;"),
     ([[], None], "has no labels (and 1 more rows);")],
)  # fmt: skip
def test_split_names_a_bad_metadata_row(synth_v2: Path, tmp_path: Path, labels: list, message: str) -> None:
    table = pq.read_table(synth_v2 / "metadata.parquet").sort_by("patch_id")
    rows = table.to_pylist()
    for i, names in enumerate(labels):
        rows[4 + i]["labels"] = names
    path = tmp_path / "metadata.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    result = CliRunner().invoke(main, ["split", str(path), "-o", str(tmp_path / "s")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}: patch {rows[4]['patch_id']} {message}" in " ".join(result.output.split())
    assert not (tmp_path / "s" / "assignment.csv").exists()


def test_split_cli_lists_method_reports_coverage(synth_v1: Path, tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    names = [line.split(",")[0] for line in (synth_v1 / "splits" / "original" / "val.csv").read_text().split()]
    (lists / "val.csv").write_text("\n".join([*names[:10], "S2A_MSIL2A_20990101T000000_1_1"]) + "\n")
    (lists / "test.csv").write_text("\n".join(names[10:20]) + "\n")
    result = CliRunner().invoke(
        main, ["split", str(synth_v1), "-o", str(tmp_path / "l"), "--method", "lists", "--resampled-lists", str(lists)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "l" / "quality.json").read_text())["lists"]
    assert report["sizes"]["validation"] == 10 and report["sizes"]["test"] == 10
    assert report["lists"]["extra"] == 1 and report["lists"]["missing"] == 0


def test_a_split_s_lists_build_that_split_and_the_card_says_whose_lists(synth_v2: Path, tmp_path: Path) -> None:
    """``split`` writes train/val/test lists beside its assignment; ``build --method lists --resampled-lists`` of
    them files every patch in that split, records the lists' digest and the split's options in ``build.json`` and
    says so in the card (not "the lists published with the paper"); a build begun from other lists is not resumed;
    folds get no lists."""
    chosen = tmp_path / "chosen"
    runner = CliRunner()
    result = runner.invoke(main, ["split", str(synth_v2), "-o", str(chosen), "--block", "3", "--seed", "4",
                                  "--ratios", "0.8", "0.1", "0.1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assigned = dict(line.split(",") for line in (chosen / "assignment.csv").read_text().splitlines()[1:])
    listed = {name: (chosen / file).read_text().split() for name, file in
              (("train", "train.csv"), ("validation", "val.csv"), ("test", "test.csv"))}  # fmt: skip
    assert {p: name for name, ids in listed.items() for p in ids} == assigned
    assert (
        f"lists: {chosen}/train.csv, val.csv, test.csv (build --method lists --resampled-lists {chosen})"
        in result.output
    )
    out = tmp_path / "repo"
    args = ["build", str(synth_v2), "-o", str(out), "--method", "lists", "--resampled-lists", str(chosen), "--quiet"]
    assert runner.invoke(main, args).exit_code == 0
    built = {p: cell_of(str(path.relative_to(out))).split("-")[1] for path in sorted((out / "data").rglob("*.parquet"))
             if cell_of(str(path.relative_to(out))) != "excluded"
             for p in pq.read_table(path, columns=["patch_id"]).column(0).to_pylist()}  # fmt: skip
    assert built == assigned
    recorded = json.loads((out / "build.json").read_text())["resampled_lists"]
    made_by = "--method fast --ratios 0.8 0.1 0.1 --block 3 --seed 4"
    assert recorded["made_by"] == made_by and len(recorded["sha256"]) == 64
    card = " ".join((out / "README.md").read_text().split())
    assert (f"by `lists`: split lists given to the build, written by `ben-hub split {made_by}`"
            f" (not the paper's; their contents' sha256 `{recorded['sha256'][:16]}`)") in card  # fmt: skip
    shares = [round(100 * len(listed[name]) / len(assigned)) for name in ("train", "validation", "test")]
    assert shares[0] >= 75 and f"a {shares[0]}/{shares[1]}/{shares[2]} re-split of the same patches by `lists`" in card
    # the lists' shares, not the build's own --ratios (the default 60/20/20, which lists do not use); its quality is
    # measured against them too (ED 0: the sizes are the lists'), and verify recounts it so
    sizes = [len(listed[name]) for name in ("train", "validation", "test")]
    measured = json.loads((out / "stats.json").read_text())["quality"]["resampled"]
    assert measured["ratios"] == pytest.approx([n / sum(sizes) for n in sizes]) and measured["ED"] == pytest.approx(0)
    assert verify(out)["card_skipped"] is None
    again_split = runner.invoke(main, ["split", str(synth_v2), "-o", str(tmp_path / "again-split"), "--method",
                                       "lists", "--resampled-lists", str(chosen)])  # fmt: skip
    assert again_split.exit_code == 0, again_split.output
    by_lists = json.loads((tmp_path / "again-split" / "quality.json").read_text())["lists"]
    assert by_lists["ratios"] == pytest.approx(measured["ratios"]) and by_lists["ED"] == pytest.approx(0)
    assert "published with the paper" not in card
    (chosen / "test.csv").write_text("".join(f"{p}\n" for p in listed["test"][1:]))  # other lists, same folder
    (chosen / "val.csv").write_text("".join(f"{p}\n" for p in [*listed["validation"], listed["test"][0]]))
    (out / "manifest.json").unlink()  # as if stopped before it finished
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "holds a build with other settings (resampled_lists" in again.output
    folds = tmp_path / "folds"
    assert runner.invoke(main, ["split", str(synth_v2), "-o", str(folds), "--folds", "3"]).exit_code == 0
    assert not (folds / "train.csv").exists() and (folds / "assignment.csv").exists()


@pytest.mark.parametrize("command", ["build", "split"])
def test_lists_given_to_another_method_are_refused_not_ignored(command: str, synth_v2: Path, tmp_path: Path) -> None:
    """``--resampled-lists`` without ``--method lists`` once built the default split and ignored the lists."""
    result = CliRunner().invoke(main, [command, str(synth_v2), "-o", str(tmp_path / "out"), "--resampled-lists",
                                       str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"--resampled-lists {tmp_path} is read by --method lists only, not --method" in result.output
    assert "add --method lists to split by those lists, or drop --resampled-lists" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
    ratios = CliRunner().invoke(main, [command, str(synth_v2), "-o", str(tmp_path / "out"), "--method", "lists",
                                       "--ratios", "0.8", "0.1", "0.1"])  # fmt: skip
    assert ratios.exit_code == 1 and "--ratios 0.8 0.1 0.1 with --method lists: the lists decide the split" in (
        " ".join(ratios.output.split())
    )
    assert not (tmp_path / "out").exists()


def test_subset_of_a_source_that_is_no_archive_folder_is_refused_not_ignored(synth_v2: Path, tmp_path: Path) -> None:
    metadata = synth_v2 / "metadata.parquet"  # reBEN metadata: every patch it lists is split, --subset or not
    result = CliRunner().invoke(main, ["split", str(metadata), "-o", str(tmp_path / "out"), "--subset"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"--subset splits the patches an archive folder holds; {metadata} is not an archive folder: drop" in (
        " ".join(result.output.split())
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("ratios", "folds", "said"),
    [
        ((0.5, 0.5, 0.5), None, r"ratios \(0.5, 0.5, 0.5\) must be non-negative and sum to 1"),
        ((-0.2, 0.6, 0.6), None, r"must be non-negative"),
        ((1.0,), None, r"1 parts asked: a split makes 2 to 100"),
        (PAPER_RATIOS, 1, r"1 folds asked: give 2 to 100"),
        (PAPER_RATIOS, 128, r"128 folds asked: give 2 to 100"),  # split ids are int8: 128 parts would wrap
    ],
)
def test_ratios_and_folds_no_split_can_meet_are_refused_before_reading(
    ratios: tuple[float, ...], folds: int | None, said: str
) -> None:
    from ben_hub.errors import SplitError
    from ben_hub.splits.report import SplitRequest

    with pytest.raises(SplitError, match=said):
        SplitRequest(ratios=ratios, folds=folds)
    assert SplitRequest(folds=100).shares == (0.01,) * 100


def test_folds_with_ratios_or_lists_are_refused_not_ignored() -> None:
    """Folds are equal parts: ``--ratios`` beside ``--folds`` was silently dropped; lists give three splits."""
    from ben_hub.errors import SplitError
    from ben_hub.splits.report import SplitRequest

    with pytest.raises(SplitError, match=r"--folds 5 with --ratios 0.7 0.15 0.15 \(folds are equal parts\): drop"):
        SplitRequest(ratios=(0.7, 0.15, 0.15), folds=5)
    with pytest.raises(SplitError, match=r"--folds 5 with --method lists \(lists give train, validation and test"):
        SplitRequest(method="lists", folds=5)
    assert SplitRequest(method="iterstrat", folds=5).shares == (0.2,) * 5


def test_plot_tick_labels_mark_their_cut() -> None:
    """Long CORINE names are cut for the plot's ticks, visibly: 19-class names run to 86 characters."""
    assert shorten("Pastures") == "Pastures"
    long = max(LABELS_19, key=len)
    cut = shorten(long)
    assert len(long) > 28 and len(cut) <= 28 and cut.endswith("\u2026")
    assert long.startswith(cut[:-1])
