"""``verify``: recompute a repository from its shards and compare with what it claims.

Checks, in order, stopping at the first mismatch (raised as :class:`~ben_hub.errors.RepoError`):

1. every shard in ``manifest.json`` exists, and no parquet file under ``data/`` is missing from it;
2. each shard's sha256 and byte size equal the manifest's;
3. each shard's row count (parquet metadata) equals the manifest's, and the split sizes add up;
4. every patch id is stored once (splits are disjoint, cells cover each patch once);
5. ``stats.json`` equals statistics recomputed by streaming the shards;
6. ``README.md`` equals the card rendered from those files (an edited number shows up here), when the card's
   stamp names this ben-hub version and card template and renderer; a card from another one is not compared
   (it would differ in wording, not in data), and the summary says so.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .card import card_repo_id, card_stamp, render_card, stamp_of
from .errors import RepoError
from .repo import is_shard_path, load_json, load_manifest, require_finished, split_sizes
from .shards import sha256_file
from .space import LOG
from .stats import compute_stats, small_columns


def check_present(manifest: dict[str, Any], present: set[str], fix: str, stray_fix: str) -> None:
    """Every shard the manifest lists is among ``present`` (relative paths), and no parquet file of ``present``
    under ``data/`` is missing from the manifest; ``fix`` and ``stray_fix`` say what to do about a missing shard
    and about one the manifest does not list (the configurations' globs would read it)."""
    listed = {s["path"] for s in manifest["shards"]}
    for shard in manifest["shards"]:
        if shard["path"] not in present:
            raise RepoError(f"missing shard {shard['path']} (listed in manifest.json); {fix}")
    for path in sorted(p for p in present if is_shard_path(p)):
        if path not in listed:
            raise RepoError(f"{path} is not in manifest.json: a stray or foreign shard, which load_dataset would read "
                            f"with the others; {stray_fix}")  # fmt: skip


def check_files(root: Path, manifest: dict[str, Any]) -> None:
    present = {s["path"] for s in manifest["shards"] if (root / s["path"]).is_file()}
    present |= {str(p.relative_to(root)) for p in (root / "data").rglob("*.parquet")}
    check_present(manifest, present, "rebuild or re-download it", "move it out of the repository")


def check_shard(shard: dict[str, Any], size: int, sha256: str | None, rows: int | None) -> None:
    """One shard as found (``sha256``/``rows``: ``None`` when not read, as after a size that differs) against its
    manifest entry."""
    if size != shard["bytes"] or sha256 != shard["sha256"]:
        raise RepoError(
            f"shard {shard['path']}: content differs from manifest.json (sha256/size); the file "
            "was changed or corrupted"
        )
    if rows != shard["rows"]:
        raise RepoError(f"shard {shard['path']} holds {rows} rows, manifest.json says {shard['rows']}")


def check_split_sizes(manifest: dict[str, Any]) -> None:
    if split_sizes(manifest["shards"]) != manifest["splits"]:
        raise RepoError("manifest.json split sizes do not add up from its shards")


def check_shards(root: Path, manifest: dict[str, Any]) -> None:
    for shard in manifest["shards"]:
        path = root / shard["path"]
        size = path.stat().st_size
        sha256 = sha256_file(path) if size == shard["bytes"] else None
        rows = pq.ParquetFile(path).metadata.num_rows if sha256 == shard["sha256"] else None
        check_shard(shard, size, sha256, rows)
    check_split_sizes(manifest)


def check_stored_once(shards: Iterable[tuple[str, pa.ChunkedArray]]) -> int:
    """Each patch id in one shard only, once: ``(shard path, its patch ids)``; returns how many patches."""
    seen: dict[str, str] = {}
    for path, ids in shards:
        for patch in ids.to_pylist():
            if patch in seen:
                raise RepoError(f"patch {patch} is stored twice ({seen[patch]} and {path}): splits overlap")
            seen[patch] = path
    return len(seen)


def first_difference(expected: Any, actual: Any, where: str = "") -> str | None:
    """A path like ``configs.original.train.labels.labels[5]: 12 != 11`` to the first differing value."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            found = first_difference(expected.get(key), actual.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = first_difference(e, a, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if expected == actual else f"{where}: the shards give {expected!r}, the file says {actual!r}"


def check_stats(root: Path, workers: int, tables: list[pa.Table]) -> None:
    """Check 5; ``tables``: each shard's small columns (:func:`ben_hub.stats.small_columns`), as check 4 read them."""
    compare_stats(compute_stats(root, workers, tables=tables), load_json(root, "stats.json"))


ADDED_LATER = ("spatial", "countries", "nearby")
"""Sections of ``stats.json`` that builds before them lack: compared only where the file has them."""


def compare_stats(recounted: dict[str, Any], recorded: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """:class:`RepoError` naming the first value of ``stats.json`` (``recorded``) that the shards' recount does
    not give (the sections in ``skip`` not compared)."""
    skip = skip + tuple(key for key in ADDED_LATER if key not in recorded)
    found = first_difference(
        json.loads(json.dumps({k: v for k, v in recounted.items() if k not in skip})),
        {k: v for k, v in recorded.items() if k not in skip},
    )
    if found:
        raise RepoError(f"stats.json: {found}")


def card_images(text: str) -> list[str]:
    """The images a card shows from its own repository (relative links only: no scheme)."""
    return re.findall(r"!\[[^\]]*\]\(([^)\s:]+)\)", text)


RERENDER = (
    "README.md was edited after it was rendered; `ben-hub card REPO_DIR` renders it again from the repository's files "
    "(and `ben-hub push` publishes it)"
)


def check_card(root: Path, repo_id: str | None) -> str | None:
    """Compare ``README.md`` with the card rendered from the repository's files; ``None`` when they agree, else
    why they were not compared (rendered by another ben-hub version or template: other text from the same data).

    Raises:
        RepoError: at the first line that differs, for a card from this version and template.
    """
    text = (root / "README.md").read_text(encoding="utf-8")
    for image in card_images(text):
        if not (root / image).is_file():
            raise RepoError(f"README.md shows {image}, which is not in {root}: `ben-hub card REPO_DIR` draws it again")
    stamp = stamp_of(text)
    if stamp != card_stamp():
        made = stamp[5:-4] if stamp else "rendered by an earlier ben-hub (it has no stamp)"
        return (
            f"README.md was not compared with the data: it was {made}, and this ben-hub "
            f"({card_stamp()[5:-4].removeprefix('rendered by ')}) renders other text from the same data; every "
            "other check ran. `ben-hub card REPO_DIR` renders the card again"
        )
    expected = render_card(root, repo_id or card_repo_id(text)).splitlines()
    actual = text.splitlines()
    for number, (line_e, line_a) in enumerate(zip(expected, actual, strict=False), start=1):
        if line_e != line_a:
            raise RepoError(
                f"README.md line {number} differs from the card rendered from the data:\n  card: "
                f"{line_a}\n  data: {line_e}\n{RERENDER}"
            )
    if len(expected) != len(actual):
        diff = next(iter(difflib.unified_diff(expected, actual, lineterm="", n=0)), "")
        raise RepoError(f"README.md has {len(actual)} lines, the rendered card {len(expected)} {diff}".strip()
                        + f"\n{RERENDER}")  # fmt: skip
    return None


def verify(root: Path, repo_id: str | None = None, workers: int = 1) -> dict[str, Any]:
    """Run every check; returns a summary (``card_skipped``: why the card was not compared, also logged as a
    warning), raises :class:`RepoError` at the first mismatch."""
    from .mirror import refuse_mirror

    refuse_mirror(root, "verify the repository itself")
    require_finished(root)
    manifest = load_manifest(root)
    check_files(root, manifest)
    check_shards(root, manifest)
    tables = list(small_columns(root, manifest["shards"]))  # read once, for checks 4 and 5
    patches = check_stored_once(zip((s["path"] for s in manifest["shards"]), (t.column("patch_id") for t in tables),
                                    strict=True))  # fmt: skip
    check_stats(root, workers, tables)
    card = check_card(root, repo_id)
    if card:
        LOG.warning("%s", card)
    return {"shards": len(manifest["shards"]), "patches": patches, "splits": manifest["splits"], "card_skipped": card}
