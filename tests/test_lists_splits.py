import shutil
from pathlib import Path

import numpy as np
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from ben_hub import lists
from ben_hub.errors import ListError, SplitError
from ben_hub.splits import fold_plan, from_lists, split, target_sizes

from .conftest import SPLITS, needs_shared


def test_parse_list_tolerates_bom_crlf_blank_lines_and_pairs() -> None:
    text = "\ufeffS2A_MSIL2A_20170613T101031_87_48\r\n\r\nS2B_MSIL2A_20170924T93020_69_24,S1A_IW_GRDH_1SDV_X_1_2\r\n"
    assert lists.parse_list(text, "x.csv") == ["S2A_MSIL2A_20170613T101031_87_48", "S2B_MSIL2A_20170924T93020_69_24"]


def test_parse_list_names_file_and_line_of_bad_entries() -> None:
    with pytest.raises(ListError, match=r"x.csv, line 2: 'hello world'"):
        lists.parse_list("S2A_MSIL2A_20170613T101031_87_48\nhello world\n", "x.csv")
    with pytest.raises(ListError, match=r"line 2: .* listed twice"):
        lists.parse_list("S2A_MSIL2A_1_2\nS2A_MSIL2A_1_2\n", "x.csv")


@needs_shared()
@pytest.mark.parametrize("key", [k for k in lists.PUBLIC_LISTS if k != "resampled-paper/train"])
def test_shared_lists_have_the_pinned_content(key: str) -> None:
    source = lists.PUBLIC_LISTS[key]
    lists.verify_list(source, lists.read_list(SPLITS / source.relpath), key)


@needs_shared()
def test_fetch_uses_a_verified_cache_and_rejects_a_corrupt_one(tmp_path: Path) -> None:
    source = lists.PUBLIC_LISTS["original/validation"]
    cached = tmp_path / "lists" / source.relpath
    cached.parent.mkdir(parents=True)
    shutil.copy(SPLITS / source.relpath, cached)
    assert len(lists.fetch_public_list("original/validation", tmp_path)) == 123_723
    cached.write_text("S2A_MSIL2A_20170613T101031_87_48\n")
    with pytest.raises(ListError, match="differ from the published original/validation list"):
        lists.fetch_public_list("original/validation", tmp_path)


def test_target_sizes_and_fold_plans() -> None:
    assert target_sizes(7, (0.6, 0.2, 0.2)).tolist() == [4, 2, 1]
    assert target_sizes(519_284, (0.6, 0.2, 0.2)).sum() == 519_284
    assert fold_plan((0.6, 0.2, 0.2)) == [3, 1, 1]
    assert fold_plan((0.7, 0.15, 0.15)) == [14, 3, 3]
    with pytest.raises(SplitError):
        target_sizes(10, (0.5, 0.2, 0.2))
    with pytest.raises(SplitError, match="multiples"):
        fold_plan((0.6001, 0.2, 0.1999))


def test_iterstrat_method_is_the_papers_call() -> None:
    rng = np.random.default_rng(3)
    Y = rng.random((600, 7)) < rng.uniform(0.01, 0.5, 7)
    expected = np.empty(600, np.int8)
    folds = MultilabelStratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(600), Y.astype(int))
    for fold, (_, test_index) in enumerate(folds):
        expected[test_index] = [0, 0, 0, 1, 2][fold]
    assert split(Y, "iterstrat", (0.6, 0.2, 0.2), 0).tolist() == expected.tolist()


def test_random_method_honours_sizes_and_seed() -> None:
    Y = np.zeros((101, 3), bool)
    a = split(Y, "random", (0.6, 0.2, 0.2), 1)
    assert np.bincount(a).tolist() == target_sizes(101, (0.6, 0.2, 0.2)).tolist()
    assert a.tolist() == split(Y, "random", (0.6, 0.2, 0.2), 1).tolist()
    assert a.tolist() != split(Y, "random", (0.6, 0.2, 0.2), 2).tolist()


def test_from_lists_reports_missing_and_extra_and_rejects_overlap() -> None:
    result = from_lists(["a", "b", "c"], {"train": ["a"], "test": ["c", "z"]})
    assert result.assignment.tolist() == [0, -1, 2] and result.missing == ["b"] and result.extra == ["z"]
    with pytest.raises(SplitError, match="a is listed in both train and test"):
        from_lists(["a"], {"train": ["a"], "test": ["a"]})


@needs_shared()
def test_the_papers_lists_are_known_by_content_and_others_by_their_digest(tmp_path: Path) -> None:
    """A copy of the paper's val/test lists with CRLF endings and shuffled lines is still the paper's (``None``, as
    the default); one name moved makes other lists, recorded by a digest that follows their contents."""
    from ben_hub.splits import list_provenance

    assert list_provenance(None) is None and list_provenance(SPLITS / "resampled-paper") is None
    rng = np.random.default_rng(0)
    held = {}
    for file in ("val.csv", "test.csv"):
        held[file] = lists.read_list(SPLITS / "resampled-paper" / file)
        shuffled = [held[file][i] for i in rng.permutation(len(held[file]))]
        (tmp_path / file).write_bytes("".join(f"{n}\r\n" for n in shuffled).encode())
    assert list_provenance(tmp_path) is None
    (tmp_path / "val.csv").write_text("\n".join(held["val.csv"][1:]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join([*held["test.csv"], held["val.csv"][0]]) + "\n")
    moved = list_provenance(tmp_path)
    assert moved is not None and set(moved) == {"sha256"}  # no request.json: the lists alone
    (tmp_path / "train.csv").write_text("S2A_MSIL2A_20170613T101031_87_48\n")
    with_train = list_provenance(tmp_path)
    assert with_train is not None and with_train["sha256"] != moved["sha256"]
