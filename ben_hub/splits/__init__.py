"""Split engine: assign every patch of a label matrix to ``train`` / ``validation`` / ``test``.

Methods live in :data:`METHODS` (a registry); each takes a boolean label matrix ``Y`` of shape
``(n_patches, n_labels)``, target ratios and a seed, and returns an ``int8`` vector of split indices into
:data:`SPLITS`.  The ``lists`` method instead maps explicit patch lists (see :func:`from_lists`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SplitError
from ..lists import PUBLIC_LISTS, SPLIT_FILES, content_digest, fetch_public_list, read_list

SPLITS: tuple[str, str, str] = ("train", "validation", "test")
PAPER_RATIOS: tuple[float, float, float] = (0.6, 0.2, 0.2)
Method = Callable[[np.ndarray, Sequence[float], int], np.ndarray]


def split_names(k: int) -> list[str]:
    """``train``/``validation``/``test`` for three parts, ``fold0`` ... ``fold{k-1}`` otherwise."""
    return list(SPLITS) if k == len(SPLITS) else [f"fold{j}" for j in range(k)]


MAX_PARTS = 100
"""Most parts (splits or folds) a split makes: split ids are ``int8``, and iterstrat's folds are at most 100."""


def check_lists(method: str, lists: Path | None, ratios: Sequence[float] = PAPER_RATIOS) -> None:
    """Raise :class:`SplitError` for list files given to a method other than ``lists``, which would ignore them, and
    for ratios other than the paper's given to ``lists``, whose sizes the lists decide."""
    if lists is not None and method != "lists":
        raise SplitError(f"--resampled-lists {lists} is read by --method lists only, not --method {method}: add "
                         "--method lists to split by those lists, or drop --resampled-lists")  # fmt: skip
    if method == "lists" and tuple(ratios) != PAPER_RATIOS:
        raise SplitError(f"--ratios {' '.join(f'{r:g}' for r in ratios)} with --method lists: the lists decide the "
                         "split sizes; drop --ratios")  # fmt: skip


def check_ratios(ratios: Sequence[float]) -> np.ndarray:
    """``ratios`` as an array, once checked: 2 to :data:`MAX_PARTS` shares, none negative, summing to 1.

    Raises:
        SplitError: saying which rule they break, with an example.
    """
    ratios_arr = np.asarray(ratios, dtype=np.float64)
    if ratios_arr.ndim != 1 or (ratios_arr < 0).any() or not np.isclose(ratios_arr.sum(), 1.0):
        raise SplitError(f"ratios {tuple(ratios)} must be non-negative and sum to 1, e.g. 0.6 0.2 0.2")
    if not 2 <= len(ratios_arr) <= MAX_PARTS:
        raise SplitError(
            f"{len(ratios_arr)} parts asked: a split makes 2 to {MAX_PARTS} (e.g. 0.6 0.2 0.2, or 5 folds)"
        )
    return ratios_arr


def target_sizes(n: int, ratios: Sequence[float]) -> np.ndarray:
    """Split sizes that sum to ``n``, by the largest-remainder rule (ties to the earlier split)."""
    exact = check_ratios(ratios) * n
    sizes = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: n - sizes.sum()]] += 1
    return sizes


def fold_plan(ratios: Sequence[float], max_folds: int = 100) -> list[int]:
    """Folds per split for k-fold methods: 0.6/0.2/0.2 -> [3, 1, 1] (the paper's 5 folds)."""
    fractions = [Fraction(r).limit_denominator(max_folds) for r in ratios]
    k = int(np.lcm.reduce([f.denominator for f in fractions]))
    if k > max_folds or any(abs(float(f) - r) > 1e-9 for f, r in zip(fractions, ratios, strict=True)):
        raise SplitError(
            f"ratios {tuple(ratios)} are not multiples of 1/k for k <= {max_folds}; "
            "use the 'fast' or 'random' method for arbitrary ratios"
        )
    return [int(f * k) for f in fractions]


def folds_to_splits(folds: np.ndarray, plan: Sequence[int]) -> np.ndarray:
    """Merge fold ids into split ids: the first ``plan[0]`` folds -> train, and so on."""
    edges = np.cumsum(plan)
    return np.searchsorted(edges, folds, side="right").astype(np.int8)


def iterstrat(Y: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """The paper's call: ``MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)``.

    With 0.6/0.2/0.2, k = 5 and folds 0-2 are train, 3 validation, 4 test, exactly as the paper did.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    plan = fold_plan(ratios)
    folds = np.empty(len(Y), dtype=np.int64)
    splitter = MultilabelStratifiedKFold(n_splits=sum(plan), shuffle=True, random_state=seed)
    # iterstrat converts y to bool itself: passing bool gives the same folds without a (n, q) int64 copy
    for fold, (_, test_index) in enumerate(splitter.split(np.zeros(len(Y)), Y.astype(bool, copy=False))):
        folds[test_index] = fold
    return folds_to_splits(folds, plan)


def random_split(Y: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """A uniformly random permutation cut at the target sizes (labels ignored)."""
    sizes = target_sizes(len(Y), ratios)
    out = np.repeat(np.arange(len(sizes), dtype=np.int8), sizes)
    return out[np.argsort(np.random.default_rng(seed).permutation(len(Y)), kind="stable")]


def fast(Y: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """ben-hub's own iterative stratification for the target ratios (see :mod:`.iterative`)."""
    from .iterative import fast_split

    return fast_split(Y, ratios, seed)


METHODS: dict[str, Method] = {"iterstrat": iterstrat, "fast": fast, "random": random_split}


def check_classes(classes: int | None) -> None:
    """Raises :class:`SplitError` for a nomenclature that is neither BigEarthNet's 43 classes nor its 19."""
    if classes not in (None, 43, 19):
        raise SplitError(f"{classes} classes asked: BigEarthNet's nomenclatures have 43 (v1) or 19 classes")


def split(
    Y: np.ndarray, method: str = "iterstrat", ratios: Sequence[float] = PAPER_RATIOS, seed: int = 0
) -> np.ndarray:
    """Assign each row of ``Y`` to a split with a registered method."""
    if method not in METHODS:
        raise SplitError(f"unknown split method {method!r}; choose one of {sorted(METHODS)} or 'lists'")
    if Y.ndim != 2:
        raise SplitError(f"the label matrix must be 2-D (patches x labels), got shape {Y.shape}")
    target_sizes(len(Y), ratios)  # validates the ratios
    return np.asarray(METHODS[method](np.asarray(Y, dtype=bool), ratios, seed), dtype=np.int8)


@dataclass(frozen=True)
class ListAssignment:
    """The result of mapping explicit lists onto a patch set.

    Attributes:
        assignment: split index per patch, ``-1`` for patches no list names.
        missing: patches of the set that no list names.
        extra: listed names that are not in the set.
    """

    assignment: np.ndarray
    missing: list[str]
    extra: list[str]


def from_lists(patch_ids: Sequence[str], lists: Mapping[str, Sequence[str]]) -> ListAssignment:
    """Map ``{split: names}`` onto ``patch_ids``; lists must be disjoint.

    Raises:
        SplitError: when a name appears in two lists (naming it and both lists).
    """
    owner: dict[str, int] = {}
    for index, name in enumerate(SPLITS):
        for patch in lists.get(name, ()):
            if patch in owner:
                raise SplitError(f"{patch} is listed in both {SPLITS[owner[patch]]} and {name}; lists must be disjoint")
            owner[patch] = index
    assignment = np.array([owner.pop(p, -1) for p in patch_ids], dtype=np.int8)
    missing = [p for p, a in zip(patch_ids, assignment, strict=True) if a < 0]
    return ListAssignment(assignment, missing, sorted(owner))


def from_list_files(
    ids: list[str], folder: Path | None, cache_dir: Path | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Assignment from list files (``None``: the paper's published lists), and what is missing or extra.

    ``train.csv`` may be absent: train is then every patch not in ``val.csv`` or ``test.csv``, as the paper
    published it.  Patches in no list are an error (the lists do not cover the set); extra names are reported.
    """
    loaded = {}
    for name in SPLITS:
        if folder is None:
            loaded[name] = fetch_public_list(f"resampled-paper/{name}", cache_dir)
        elif (folder / SPLIT_FILES[name]).exists():
            loaded[name] = read_list(folder / SPLIT_FILES[name])
    if "train" not in loaded:
        taken = set(loaded.get("validation", [])) | set(loaded.get("test", []))
        loaded["train"] = [p for p in ids if p not in taken]
    mapped = from_lists(ids, loaded)
    coverage = {"missing": len(mapped.missing), "extra": len(mapped.extra), "first_missing": mapped.missing[:10],
                "first_extra": mapped.extra[:10]}  # fmt: skip
    if mapped.missing:
        raise SplitError(
            f"{len(mapped.missing)} patches are in no list (first: {mapped.missing[0]}); the lists do "
            "not cover this patch set"
        )
    return mapped.assignment, coverage


def list_provenance(folder: Path | None) -> dict[str, Any] | None:
    """What a build records of the lists its ``lists`` split came from: ``None`` for the paper's (the published
    lists, the default; or a ``folder`` whose ``val.csv`` and ``test.csv``, and ``train.csv`` where there is one,
    hold their pinned content, whatever the line endings); for any other lists, the sha256 of their contents (each
    list's :func:`ben_hub.lists.content_digest`, by split) and, where ``ben-hub split`` wrote them, what it was asked
    (its ``request.json`` beside them: :func:`split_options`)."""
    if folder is None:
        return None
    digests = {name: content_digest(read_list(folder / SPLIT_FILES[name]))
               for name in SPLITS if (folder / SPLIT_FILES[name]).exists()}  # fmt: skip
    paper = {name: PUBLIC_LISTS[f"resampled-paper/{name}"].content_sha256 for name in SPLITS}
    if all(digests.get(name) == paper[name] for name in ("validation", "test")) and (
        digests.get("train", paper["train"]) == paper["train"]
    ):
        return None
    out: dict[str, Any] = {"sha256": content_digest(f"{name} {digest}" for name, digest in digests.items())}
    request = folder / "request.json"
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):  # none, or not ben-hub split's: lists alone
        out["made_by"] = split_options(json.loads(request.read_text(encoding="utf-8")))
    return out


def split_options(request: Mapping[str, Any]) -> str:
    """The ``ben-hub split`` options a saved ``request.json`` holds, as the card quotes them: ``--method fast
    --block 10 --seed 0`` (ratios, block and classes only when set)."""
    words = [f"--method {request['method']}"]
    if request.get("ratios") and list(request["ratios"]) != list(PAPER_RATIOS):
        words.append("--ratios " + " ".join(f"{r:g}" for r in request["ratios"]))
    words += [f"--{key} {request[key]}" for key in ("block", "classes") if request.get(key) is not None]
    return " ".join([*words, f"--seed {int(request['seed'])}"])
