"""``examples.png``: what the patches look like, one true-colour patch for each of the most frequent labels.

Drawn for the dataset card from the repository's own rows: the ``resampled`` training split in storage order, the
first patch that carries each of the :data:`EXAMPLES` most frequent labels there (no patch twice), titled with that
label and the number of its other labels.  Colours are B04, B03 and B02 stretched per patch between the 2nd and
98th percentiles of the three bands together (:func:`true_colour`; torchgeo's BigEarthNet plots stretch the same
way): a picture for the eye, not a product; the stored values are untouched.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from .labels import NOMENCLATURES
from .repo import cell_in_split, cell_of, load_json, load_manifest
from .shards import save_png

EXAMPLES = 12
"""Patches drawn: 3 rows of 4."""
COLUMNS = 4
TRUE_COLOUR = ("B04", "B03", "B02")
"""Red, green and blue: Sentinel-2's 10 m bands at 665, 560 and 490 nm."""


def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    """An 8-bit ``(h, w, 3)`` RGB picture of three bands: their values (reflectance x 10,000 for S2) mapped
    linearly from the ``low``-th percentile of all three (black) to the ``high``-th (white), clipped beyond."""
    stack = np.stack([red, green, blue], axis=-1).astype(np.float64)
    lo, hi = np.percentile(stack, [low, high])
    scaled = (stack - lo) / max(hi - lo, 1e-12)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def frequent_labels(root: Path, count: int) -> tuple[str, list[tuple[int, str]]]:
    """The label column the card's statistics count (``labels``, 43 classes, where the repository has it, else
    ``labels_19``), and its ``count`` labels with the most patches in ``resampled``'s training split (ties: class
    order) as (class id, name); none when that split is empty."""
    train = load_json(root, "stats.json")["configs"].get("resampled", {}).get("train")
    if not train:
        return "labels_19", []
    column = "labels" if "labels" in train["labels"] else "labels_19"
    counts = train["labels"][column]
    ranked = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    return column, [(i, NOMENCLATURES[len(counts)][i]) for i in ranked[:count] if counts[i] > 0]


def pick_examples(root: Path, count: int = EXAMPLES) -> list[dict[str, Any]]:
    """For each frequent label in turn, the first training patch (storage order) that carries it and was not picked
    for a more frequent one: ``{"label", "others", "patch_id", "shard", "row"}`` (``others``: how many other labels
    it has).  Only the patch ids and labels are read, shard by shard, until every label has its patch."""
    column, wanted = frequent_labels(root, count)
    shards = [
        s["path"] for s in load_manifest(root)["shards"] if cell_in_split(cell_of(s["path"]), "resampled", "train")
    ]
    found: dict[int, dict[str, Any]] = {}
    for path in shards:
        if len(found) == len(wanted):
            break
        table = pq.read_table(root / path, columns=["patch_id", column])
        ids, labels = table.column("patch_id").to_pylist(), table.column(column).to_pylist()
        for row, (patch, carried) in enumerate(zip(ids, labels, strict=True)):
            free = [(i, name) for i, name in wanted if i in carried and i not in found]
            if free:  # the most frequent label of this patch still without one
                found[free[0][0]] = {"label": free[0][1], "others": len(carried) - 1, "patch_id": patch,
                                     "shard": path, "row": row}  # fmt: skip
                if len(found) == len(wanted):
                    break
    return [found[i] for i, _ in wanted if i in found]


def read_rgb(root: Path, shard: str, row: int) -> np.ndarray:
    """The true-colour picture of one stored row (:func:`true_colour`), its bands read as ``verify --archive``
    reads them (:class:`ben_hub.audit.StoredRows`: the row's row group, the three columns only)."""
    from .audit import StoredRows

    key = f"{shard}#{row}"
    values = StoredRows([root / shard], {key: (0, row)}).row(key, TRUE_COLOUR)
    return true_colour(*(values[band] for band in TRUE_COLOUR))


def short_title(label: str, width: int = 28, lines: int = 2) -> str:
    """``label`` wrapped at ``width`` characters, in at most ``lines`` lines (the last ending in ``...`` if cut)."""
    wrapped = textwrap.wrap(label, width)
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], wrapped[lines - 1] + "..."]
    return "\n".join(wrapped)


def plot_examples(root: Path, path: Path, count: int = EXAMPLES) -> bool:
    """Draw the picked patches to ``path`` (PNG, deterministic: no timestamp or software tag); ``False`` when the
    training split has none to draw."""
    from matplotlib.figure import Figure  # no pyplot: no backend machinery, no global figure state

    picks = pick_examples(root, count)
    if not picks:
        return False
    columns = min(COLUMNS, len(picks))
    rows = -(-len(picks) // columns)
    fig = Figure(figsize=(2.0 * max(columns, 3), 2.4 * rows))  # 3 columns' width at least: room for the title
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, pick in zip(axes.flat, picks, strict=False):
        ax.imshow(read_rgb(root, pick["shard"], pick["row"]), interpolation="nearest")
        more = f"\n+{pick['others']} other label{'s' * (pick['others'] != 1)}" if pick["others"] else ""
        ax.set_title(short_title(pick["label"]) + more, fontsize=7)
    fig.suptitle("One training patch per frequent label (B04, B03, B02; 2-98% stretch)", fontsize=9)
    fig.tight_layout()
    save_png(fig, path, dpi=100)
    return True
