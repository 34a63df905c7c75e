"""The card's example patches (``examples.png``, :mod:`ben_hub.gallery`): which patches, their colours, the card."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest

from ben_hub.errors import RepoError
from ben_hub.gallery import pick_examples, read_rgb, short_title, true_colour
from ben_hub.repo import load_json
from ben_hub.verify import verify


def test_true_colour_stretches_the_three_bands_together_between_percentiles() -> None:
    ramp = np.arange(100, dtype=np.uint16).reshape(10, 10) * 10  # 0 ... 990
    rgb = true_colour(ramp, ramp // 2, ramp // 4, low=0, high=100)
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[9, 9].tolist() == [255, 128, 64]  # one scale for all three
    clipped = true_colour(ramp, ramp, ramp)  # 2-98%: the darkest and brightest 2% saturate
    assert clipped[0, 0, 0] == 0 and clipped[0, 1, 0] == 0 and clipped[9, 9, 0] == 255
    flat = np.full((4, 4), 7, np.uint16)
    assert true_colour(flat, flat, flat).max() == 0  # a flat patch: no division by zero


def test_short_title_keeps_two_lines() -> None:
    assert short_title("Pastures") == "Pastures"
    long = short_title("Land principally occupied by agriculture, with significant areas of natural vegetation")
    assert long == "Land principally occupied by\nagriculture, with..."


def test_each_frequent_label_gets_the_first_training_patch_that_carries_it(built_v1: Path) -> None:
    """Checked against a plain reading of the split through ``datasets``: the same patches, in label-frequency order,
    each the first (storage order) with its label that no more frequent label took, and their true colours."""
    picks = pick_examples(built_v1)
    per_label = load_json(built_v1, "stats.json")["quality"]["resampled"]["per_label"]
    train = [int(e["per_split"]["train"]) for e in per_label]
    order = sorted(range(len(train)), key=lambda i: (-train[i], i))[:12]
    assert [p["label"] for p in picks] == [per_label[i]["label"] for i in order]
    rows = datasets.load_dataset(str(built_v1), "resampled", split="train").with_format("numpy", dtype=np.uint16)
    taken: set[str] = set()
    for pick, label in zip(picks, order, strict=True):
        first = next(r for r in rows.select_columns(["patch_id", "labels"]) if label in r["labels"]
                     and r["patch_id"] not in taken)  # fmt: skip
        assert pick["patch_id"] == first["patch_id"]
        taken.add(pick["patch_id"])
        row = rows[[str(i) for i in rows["patch_id"]].index(pick["patch_id"])]
        assert pick["others"] == len(row["labels"]) - 1
        assert np.array_equal(read_rgb(built_v1, pick["shard"], pick["row"]), true_colour(row["B04"], row["B03"],
                                                                                           row["B02"]))  # fmt: skip


def test_the_card_shows_the_examples_and_verify_misses_them(built_v1: Path, tmp_path: Path) -> None:
    assert (built_v1 / "examples.png").read_bytes()[:4] == b"\x89PNG"
    assert "](examples.png)" in (built_v1 / "README.md").read_text()
    repo = Path(shutil.copytree(built_v1, tmp_path / "repo"))
    (repo / "examples.png").unlink()
    with pytest.raises(RepoError, match=r"README.md shows examples.png, which is not in .*: `ben-hub card REPO_DIR`"):
        verify(repo)
