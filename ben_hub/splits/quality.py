"""Split quality: the measures of Sechidis et al. (2011) and what a user wants to see per label.

For splits ``j`` of sizes ``S_j`` with ``S_j^l`` positives of label ``l``, a dataset of ``D`` rows with ``D^l``
positives, and desired sizes ``c_j``:

* Label Distribution ``LD = 1/q sum_l 1/k sum_j | S_j^l / (S_j - S_j^l) - D^l / (D - D^l) |`` (lower is better;
  a ratio with a zero denominator counts as 0);
* Examples Distribution ``ED = 1/k sum_j | S_j - c_j |``;
* zero pairs: (split, label) pairs without a positive, and those of them that were avoidable (the label has
  at least as many positives as there are splits);
* per label: count, share in each split, and worst relative deviation ``max_j |share_j - r_j| / r_j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import split_names, target_sizes
from .spatial import REACH_M


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def counts(Y: np.ndarray, assignment: np.ndarray, k: int = 3) -> np.ndarray:
    """``(k, q)`` positives per split and label."""
    return np.stack([Y[assignment == j].sum(axis=0) for j in range(k)]).astype(np.int64)


def quality(
    Y: np.ndarray,
    assignment: np.ndarray,
    ratios: Sequence[float],
    names: Sequence[str] | None = None,
    n_rarest: int = 5,
) -> dict[str, Any]:
    """All measures of one split as a JSON-ready dict."""
    Y = np.asarray(Y, dtype=bool)
    k = len(ratios)
    sizes = np.bincount(assignment, minlength=k)[:k]
    return quality_from_counts(counts(Y, assignment, k), sizes, ratios, names, n_rarest)


def quality_from_counts(
    per_split: np.ndarray,
    split_sizes: Sequence[int] | np.ndarray,
    ratios: Sequence[float],
    names: Sequence[str] | None = None,
    n_rarest: int = 5,
) -> dict[str, Any]:
    """The measures from ``(k, q)`` positives per split and label and the split sizes (no label matrix)."""
    per_split = np.asarray(per_split, dtype=np.int64)
    k, q = per_split.shape
    sizes = np.asarray(split_sizes, dtype=np.float64)
    n = int(sizes.sum())
    names = list(names) if names is not None else [str(i) for i in range(q)]
    total = per_split.sum(axis=0).astype(np.float64)
    ld_terms = np.abs(_ratio(per_split, sizes[:, None] - per_split) - _ratio(total, n - total)[None, :])
    share = _ratio(per_split.astype(np.float64), total[None, :])
    wanted = np.broadcast_to(np.asarray(ratios, dtype=np.float64)[:, None], share.shape)
    deviation = _ratio(np.abs(share - wanted), wanted)  # a split with no target share (an empty one): no deviation
    zero = per_split == 0
    present = total > 0
    targets = target_sizes(n, ratios)
    names_k = split_names(k)
    rarest = np.argsort(total, kind="stable")[:n_rarest]
    return {
        "rows": n, "labels": q, "ratios": list(ratios),
        "LD": float(ld_terms.mean()), "ED": float(np.abs(sizes - np.asarray(ratios) * n).mean()),
        "sizes": dict(zip(names_k, sizes.astype(int).tolist(), strict=True)),
        "size_error_vs_target": dict(zip(names_k, (sizes - targets).astype(int).tolist(), strict=True)),
        "zero_pairs": int((zero & present[None, :]).sum()),
        "avoidable_zero_pairs": int((zero & (total >= k)[None, :]).sum()),
        "worst_relative_deviation": float(deviation[:, present].max()) if present.any() else 0.0,
        "per_label": [
            {"label": names[i], "count": int(total[i]),
             "per_split": dict(zip(names_k, per_split[:, i].tolist(), strict=True)),
             "share": dict(zip(names_k, np.round(share[:, i], 6).tolist(), strict=True)),
             "worst_relative_deviation": round(float(deviation[:, i].max()), 6) if present[i] else None}
            for i in range(q)
        ],
        "rarest": [names[i] for i in rarest],
    }  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown summary plus a per-label table."""
    splits = list(report["sizes"])
    lines = [
        f"LD {report['LD']:.3g} · ED {report['ED']:.3g} · (split, label) pairs with no positive: "
        f"{report['zero_pairs']} ({report['avoidable_zero_pairs']} avoidable) · worst relative deviation "
        f"{report['worst_relative_deviation']:.3g}",
        "",
        "| label | count | " + " | ".join(f"{s} share" for s in splits) + " | worst rel. dev. |",
        "|---|---:|" + "---:|" * len(splits) + "---:|",
    ]
    if "nearby" in report:
        lines[1:1] = ["", f"{nearby_text(REACH_M, report.get('nearby_from'))}: {touching_text(report['nearby'])}"]
    if "touching" in report:
        where = PLACES[report["place"]]
        lines[1:1] = ["", f"Patches next to a patch of another split{where}: {touching_text(report['touching'])}"]
    for row in report["per_label"]:
        shares = " | ".join(f"{row['share'][s]:.3f}" for s in splits)
        dev = "" if row["worst_relative_deviation"] is None else f"{row['worst_relative_deviation']:.3f}"
        lines.append(f"| {row['label']} | {row['count']:,} | {shares} | {dev} |")
    return "\n".join(lines + country_lines(report) + overlap_lines(report)) + "\n"


def overlap_lines(report: dict[str, Any]) -> list[str]:
    """The split against the official one (``official_overlap``): patches per pair of splits, and the test patches
    both hold out (:func:`shared_test_text`); nothing for the official split itself or without it."""
    counts = report.get("official_overlap")
    if not counts:
        return []
    table = overlap_table(counts, list(report["sizes"]), "official \\ this split")
    return ["", f"Against the official split, patches per pair of splits; {shared_test_text(report)}:", "", *table]


def overlap_table(counts: list[list[int]], columns: list[str], corner: str) -> list[str]:
    """Markdown rows of patches per pair of splits, a row per official split (train, validation, test) and a column
    per split of the other (``columns``), with the totals of each: a split report's and the card's overlap table."""
    lines = [f"| {corner} | " + " | ".join(columns) + " | all |", "|---|" + "---:|" * (len(columns) + 1)]
    totals = [sum(column) for column in zip(*counts, strict=True)]
    for name, row in [*zip(("train", "validation", "test"), counts, strict=True), ("all", totals)]:
        lines.append(f"| {name} | " + " | ".join(f"{n:,}" for n in [*row, sum(row)]) + " |")
    return lines


def shared_test_text(report: dict[str, Any]) -> str:
    """``23,739 test patches in both test splits, 24.7% of this one's``: where a build's harness compares models of
    both configurations on the same patches."""
    counts, splits = report["official_overlap"], list(report["sizes"])
    both = counts[2][splits.index("test")] if "test" in splits else 0
    size = report["sizes"].get("test", 0)
    return f"{both:,} test patches in both test splits" + (f", {both / size:.1%} of this one's" if size else "")


def country_lines(report: dict[str, Any]) -> list[str]:
    """Each country's patches and the share of them in each split, beside each split's share of all patches, and the
    country farthest from those (:func:`country_gap`); nothing when the patches have no country."""
    if not report.get("countries"):
        return []
    table = country_table({"": report["sizes"]}, {"": report["countries"]})
    return ["", f"Countries: each one's patches and their share per split; {country_gap_text(report)}", "", *table]


def country_table(sizes: dict[str, dict[str, int]], countries: dict[str, dict[str, list[int]]]) -> list[str]:
    """Markdown rows: per source (a configuration; ``""`` for one alone), each split's share of all patches, then
    each country's patches and their share per split; the sources hold the same patches, split differently."""
    first = next(iter(sizes))
    total = sum(sizes[first].values())
    heads = " | ".join(f"{source} {split}".strip() for source in sizes for split in sizes[source])
    whole = " | ".join(f"{n / total:.1%}" for source in sizes for n in sizes[source].values())
    lines = [f"| country | patches | {heads} |", "|---|---:|" + "---:|" * sum(map(len, sizes.values())),
             f"| all | {total:,} | {whole} |"]  # fmt: skip
    for name, counts in countries[first].items():
        shares = " | ".join(f"{n / sum(counts):.1%}" for source in sizes for n in countries[source][name])
        lines.append(f"| {name} | {sum(counts):,} | {shares} |")
    return lines


def country_gap(report: dict[str, Any]) -> tuple[str, str, float, float] | None:
    """The country and split where the country's share of its patches in that split is farthest from that split's
    share of all patches: ``(country, split, its share, the split's share)``; ``None`` without countries."""
    countries = report.get("countries")
    if not countries:
        return None
    total = sum(report["sizes"].values())
    whole = {split: n / total for split, n in report["sizes"].items()}
    gaps = [(abs(counts[j] / sum(counts) - whole[split]), name, split, counts[j] / sum(counts))
            for name, counts in countries.items() if sum(counts)
            for j, split in enumerate(report["sizes"])]  # fmt: skip
    _, name, split, share = max(gaps)
    return name, split, share, whole[split]


def country_gap_text(report: dict[str, Any], lead: str = "farthest from the split sizes: ") -> str:
    """``farthest from the split sizes: Kosovo, train 8.0% (all patches: 60.0%)``; ``""`` without countries."""
    gap = country_gap(report)
    if gap is None:
        return ""
    name, split, share, whole = gap
    return f"{lead}{name}, {split} {share:.1%} (all patches: {whole:.1%})"


PLACES = {
    "tile": ", or at its place on another date (8-neighbourhood in each tile's grid of 1.2 km patches)",
    "acquisition": " (8-neighbourhood in each acquisition's grid of 1.2 km patches; v1 names do not tell a tile's "
    "other dates)",
}
"""How :func:`markdown` says what the ``touching`` shares count, by the unit of the patch names' places."""


def nearby_text(reach_m: float, source: str | None = "coordinates") -> str:
    """What :func:`ben_hub.splits.spatial.nearby_points`' shares measure, to precede them (card and report alike):
    from the patches' coordinates, or (``source='names'``) from the centres the names give (reBEN names; v1 names with
    their ``tile_source``: :func:`ben_hub.splits.spatial.name_points`)."""
    if source == "names":
        return (f"By the centres the names give (each tile's MGRS square corner plus the name's 1.2 km steps; within "
                f"{reach_m / 1000:.1f} km of a patch of another split, which also finds the ground a UTM zone's "
                "neighbouring tiles share)")  # fmt: skip
    return (f"By the patches' coordinates (centres within {reach_m / 1000:.1f} km of a patch of another split, which "
            "also finds overlapping tiles, other UTM zones and dates)")  # fmt: skip


def touching_text(shares: dict[str, float]) -> str:
    """``train 6.4%, validation 20.9%, test 8.5%``."""
    return ", ".join(f"{split} {share:.1%}" for split, share in shares.items())


def shorten(name: str, width: int = 28) -> str:
    """``name`` cut to ``width`` characters for a tick label, the cut marked by an ellipsis."""
    return name if len(name) <= width else name[: width - 1].rstrip(" ,") + "…"


def plot(
    reports: dict[str, dict[str, Any]], path: str, title: str = "", tick_labels: Sequence[str] | None = None
) -> None:
    """Fig. 4 of the paper: positives per label and split (log scale), one line style per split source.

    ``reports`` maps a source name (``original``, ``resampled``) to a :func:`quality` report.
    """
    from matplotlib.figure import Figure  # no pyplot: no backend machinery, no global figure state

    first = next(iter(reports.values()))
    order = np.argsort([-row["count"] for row in first["per_label"]], kind="stable")
    names = list(tick_labels) if tick_labels is not None else [shorten(row["label"]) for row in first["per_label"]]
    labels = [names[i] for i in order]
    fig = Figure(figsize=(max(8, 0.28 * len(labels)), 4.5))
    ax = fig.subplots()
    styles = ["-", "--", ":"]
    for style, (source, report) in zip(styles, reports.items(), strict=False):
        names_k = split_names(len(report["sizes"]))  # JSON round trips sort the keys: restore split order
        for color, split in zip(("C0", "C1", "C2", "C3", "C4", "C5"), names_k, strict=False):
            values = [report["per_label"][i]["per_split"][split] or np.nan for i in order]  # log scale: no zeros
            ax.plot(range(len(labels)), values, style, color=color, marker=".", label=f"{source} {split}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_ylabel("patches with the label")
    ax.set_title(title or "Label counts per split")
    ax.legend(fontsize=7, ncol=2, handlelength=4)  # long enough handles to show each source's dashes
    fig.tight_layout()
    from ..shards import save_png  # here: shards imports stats, which imports this module

    save_png(fig, Path(path), dpi=120)
