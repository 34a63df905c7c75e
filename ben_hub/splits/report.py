"""Split a label source and write the assignment and its quality report (JSON, markdown, Fig. 4 plot)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import SplitError
from ..lists import SPLIT_FILES
from ..shards import write_json_atomic, write_text_atomic
from ..space import reported_full_disk
from . import (
    MAX_PARTS,
    PAPER_RATIOS,
    SPLITS,
    check_classes,
    check_lists,
    check_ratios,
    from_list_files,
    list_provenance,
    spatial,
    split,
    split_names,
)
from .quality import country_gap_text, markdown, plot, quality, shared_test_text, touching_text
from .sources import LabelSource, load_source


@dataclass(frozen=True)
class SplitRequest:
    """What to split and how; saved as ``request.json`` beside the outputs.

    Attributes:
        method: ``iterstrat``, ``fast``, ``random`` or ``lists``.
        ratios: target shares (three for train/validation/test, or k equal ones for ``folds``).
        seed: random seed.
        folds: when set, split into this many equal folds instead of ``ratios``.
        lists: with ``method='lists'``: folder with ``val.csv``, ``test.csv`` (``train.csv`` optional, else
            the rest); ``None`` = the paper's published lists.
        block: when set, stratify whole squares of ``block x block`` patches (:func:`.spatial.block_groups`), with
            ``method='fast'``.
        classes: the nomenclature split on and measured (43 or 19); ``None``: the source's (43 where it has them,
            v1; else 19, reBEN).  19 for v1 groups its 43-class labels as ``labels_19`` does.
    """

    method: str = "fast"
    ratios: tuple[float, ...] = PAPER_RATIOS
    seed: int = 0
    folds: int | None = None
    lists: Path | None = None
    block: int | None = None
    classes: int | None = None

    def __post_init__(self) -> None:
        """Raises :class:`SplitError` for ratios, a fold count or a nomenclature no split can meet (before any label
        is read)."""
        check_classes(self.classes)
        check_lists(self.method, self.lists, self.ratios)
        if self.folds is not None and not 2 <= self.folds <= MAX_PARTS:
            raise SplitError(f"{self.folds} folds asked: give 2 to {MAX_PARTS}")
        if self.folds is not None and (self.method == "lists" or tuple(self.ratios) != PAPER_RATIOS):
            given = "--method lists (lists give train, validation and test)" if self.method == "lists" else (
                f"--ratios {' '.join(f'{r:g}' for r in self.ratios)} (folds are equal parts)")  # fmt: skip
            raise SplitError(f"--folds {self.folds} with {given}: drop one of them")
        spatial.check_block(self.block, self.method)
        check_ratios(self.shares)

    @property
    def shares(self) -> tuple[float, ...]:
        return tuple([1 / self.folds] * self.folds) if self.folds else self.ratios


def split_and_report(
    source: Path,
    out: Path,
    request: SplitRequest,
    lists_dir: Path | None = None,
    subset: bool = False,
    workers: int = 1,
    hub: tuple[str | None, str | None] = (None, None),
    countries: Path | None = None,
) -> str:
    """Write ``assignment.csv`` (patch_id,split), ``quality.json``, ``quality.md``, ``label_counts.png``, and for a
    train/validation/test split its lists (``train.csv``, ``val.csv``, ``test.csv``: a name a line, as the paper
    published its own), which ``build --method lists --resampled-lists OUT`` takes as its ``resampled`` split.

    The split covers the official set (patches with an official split); when the source knows the official
    split, the report scores it too, so the two can be compared.  ``subset``: an archive folder with part of
    BigEarthNet (the patches present are split); ``workers``: processes reading a large v1 archive's JSONs;
    ``hub``: the revision and endpoint for a ``source`` that is a repository on the Hub (``OWNER/NAME``);
    ``countries``: reBEN metadata giving a v1 archive's patches their country (``build --countries``).
    Returns a short summary.
    """
    data = load_source(source, lists_dir, subset, workers, hub, countries=countries).with_classes(
        request.classes, source
    )
    member = data.official >= 0 if data.official is not None else np.ones(len(data.patch_ids), bool)
    Y, ids = data.Y[member], [p for p, m in zip(data.patch_ids, member, strict=True) if m]
    country = data.country.filter(pa.array(member)) if data.country is not None else None
    tiles = data.tile_sources.filter(pa.array(member)) if data.tile_sources is not None else None
    located = located_points(data.centres[member] if data.centres is not None else None, ids, tiles)
    extra: dict[str, Any] = {}
    where = spatial.grid(ids)
    if request.method == "lists":
        assignment, extra["lists"] = from_list_files(ids, request.lists)
    elif request.block is not None:
        groups = spatial.block_groups(ids, request.block, tiles)
        strata = spatial.with_countries(Y, country)
        assignment = spatial.grouped_split(strata, groups, request.shares, request.seed)
        extra["block"], extra["stratified_on_country"] = request.block, strata is not Y
    else:
        assignment = split(Y, request.method, request.shares, request.seed)
    name = request.method if request.block is None else f"{request.method}, {request.block}x{request.block} blocks"
    targets = request.shares  # lists other than the paper's decide their sizes: measured against those, not 60/20/20
    if request.method == "lists" and list_provenance(request.lists) is not None:
        targets = tuple((np.bincount(assignment, minlength=len(SPLITS)) / max(len(assignment), 1)).tolist())
    reports = {name: placed(quality(Y, assignment, targets, data.names) | extra, (where, located), country,
                            assignment)}  # fmt: skip
    if data.official is not None and not request.folds:
        official = data.official[member]
        scored = quality(Y, official, PAPER_RATIOS, data.names)
        reports[name]["official_overlap"] = overlap(official, assignment, len(request.shares))
        reports = {"original": placed(scored, (where, located), country, official), **reports}
    with reported_full_disk(out):
        listed = write_outputs(out, request, ids, assignment, reports, source.name)
    return "\n".join(
        f"{name}: LD {r['LD']:.3g}, ED {r['ED']:.3g}, zero pairs {r['zero_pairs']}, sizes {r['sizes']}"
        + (f", touching another split {touching_text(r['touching'])}" if "touching" in r else "")
        + (f", {NEARBY_FROM[r['nearby_from']]} {touching_text(r['nearby'])}" if "nearby" in r else "")
        + (f"; countries {country_gap_text(r)}" if "countries" in r else "")
        + (f"; {shared_test_text(r)}" if "official_overlap" in r else "")
        for name, r in reports.items()
    ) + (
        f"\nlists: {out}/train.csv, val.csv, test.csv (build --method lists --resampled-lists {out})" if listed else ""
    )


def overlap(official: np.ndarray, assignment: np.ndarray, k: int) -> list[list[int]]:
    """Patches per (official split, this split) pair: one row per official split (train, validation, test), one
    column per split of ``assignment``; a build files each patch in that cell (``data/<official>-<resampled>/``)."""
    pairs = np.bincount(official.astype(np.int64) * k + assignment, minlength=len(PAPER_RATIOS) * k)
    return pairs.reshape(len(PAPER_RATIOS), k).tolist()


NEARBY_FROM = {"coordinates": "by coordinates", "names": "by the names' centres"}
"""Where a report's ``nearby`` centres came from (``nearby_from``), as the summary line says it."""


def located_points(
    centres: np.ndarray | None, ids: list[str], tiles: pa.Array | None = None
) -> tuple[np.ndarray, str] | None:
    """The patches' points for :func:`.spatial.nearby_points` and where they came from: their WGS84 ``centres``
    (a built repository's lon/lat) or, without them, the centres their names give (:func:`.spatial.name_points`:
    reBEN names, or v1 names with their ``tiles``' sources); ``None`` for neither."""
    if centres is not None:
        return spatial.sphere_points(centres[:, 0], centres[:, 1]), "coordinates"
    points = spatial.name_points(ids, tiles)
    return None if points is None else (points, "names")


def placed(
    report: dict[str, Any],
    places: tuple[spatial.Grid | None, tuple[np.ndarray, str] | None],
    country: pa.Array | None,
    assignment: np.ndarray,
) -> dict[str, Any]:
    """``report`` with, when the names give their places (``places``: the names' grid, and the patches' points with
    their source, :func:`located_points`), each split's share of patches that touch or repeat a patch of another
    split (:func:`.spatial.touching`); given points, each split's share within 1.8 km of another split's
    (``nearby``, ``nearby_from``: :func:`.spatial.nearby_points`, which also finds overlapping tiles, and dates the
    names do not tell); and, when the patches have countries, each country's patches per split (``countries``: name
    -> counts in split order)."""
    k, (where, located) = len(report["sizes"]), places
    if countries := spatial.country_counts(country, assignment, k):
        report = report | {"countries": countries}
    if located is not None:
        shares = spatial.nearby_points(located[0], assignment, k)
        report = report | {"nearby": dict(zip(report["sizes"], shares, strict=True)), "nearby_from": located[1]}
    if where is None:
        return report
    shares = spatial.touching(where, assignment, k)
    return report | {"touching": dict(zip(report["sizes"], shares, strict=True)), "place": where.unit}


def write_outputs(
    out: Path,
    request: SplitRequest,
    ids: list[str],
    assignment: np.ndarray,
    reports: dict[str, dict[str, Any]],
    title: str,
) -> bool:
    """Write the split's files (:func:`split_and_report`); ``True`` when they include its train/val/test lists."""
    names = split_names(len(request.shares))
    out.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{p},{names[a]}\n" for p, a in zip(ids, assignment, strict=True))
    write_text_atomic(out / "assignment.csv", "patch_id,split\n" + rows)
    listed = request.folds is None and names == list(SPLITS)
    if listed:  # lists a build takes: --method lists --resampled-lists OUT
        for j, name in enumerate(SPLITS):
            chosen = "".join(f"{patch}\n" for patch, at in zip(ids, assignment, strict=True) if at == j)
            write_text_atomic(out / SPLIT_FILES[name], chosen)
    write_json_atomic(
        out / "request.json", {**request.__dict__, "lists": str(request.lists) if request.lists else None}
    )
    write_json_atomic(out / "quality.json", reports)
    write_text_atomic(out / "quality.md", "".join(f"## {name}\n\n{markdown(r)}\n" for name, r in reports.items()))
    plot(reports, str(out / "label_counts.png"), f"{title}: label counts per split")
    return listed


__all__ = ["LabelSource", "SplitRequest", "split_and_report"]
