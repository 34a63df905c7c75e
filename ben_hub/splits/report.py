"""Split a label source and write the assignment and its quality report (JSON, markdown, Fig. 4 plot)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..shards import write_json_atomic, write_text_atomic
from . import SPLITS, split
from .quality import markdown, plot, quality
from .sources import load_source


def split_and_report(
    source: Path, out: Path, method: str, ratios: Sequence[float], seed: int, lists_dir: Path | None = None
) -> str:
    """Write ``assignment.csv`` (patch_id,split), ``quality.json``, ``quality.md`` and ``label_counts.png``.

    The split covers the official set (patches with an official split); when that set has an official
    split, the report also scores it, so the two can be compared.  Returns a one-paragraph summary.
    """
    data = load_source(source, lists_dir)
    member = data.official >= 0 if data.official is not None else np.ones(len(data.patch_ids), bool)
    Y = data.Y[member]
    ids = [p for p, m in zip(data.patch_ids, member, strict=True) if m]
    assignment = split(Y, method, ratios, seed)
    reports = {method: quality(Y, assignment, ratios, data.names)}
    if data.official is not None and len(ratios) == 3:
        reports = {"original": quality(Y, data.official[member], ratios, data.names), **reports}
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out / "assignment.csv",
        "patch_id,split\n" + "".join(f"{p},{SPLITS[a]}\n" for p, a in zip(ids, assignment, strict=True)),
    )
    write_json_atomic(out / "quality.json", reports)
    write_text_atomic(out / "quality.md", "".join(f"## {name}\n\n{markdown(r)}\n" for name, r in reports.items()))
    plot(reports, str(out / "label_counts.png"), f"{source.name}: label counts per split")
    return "\n".join(
        f"{name}: LD {r['LD']:.3g}, ED {r['ED']:.3g}, zero pairs {r['zero_pairs']}, sizes {r['sizes']}"
        for name, r in reports.items()
    )
