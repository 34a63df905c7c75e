"""Column mirrors: a published repository's shards on local disk holding only the columns a reader needs.

Training on RGB reads 3 of a shard's 14 band columns, about a quarter of its bytes (B02, B03 and B04 are 27% of
a real row group), yet downloading a split fetches whole shards: about 42 GB for ``resampled`` train.  A
mirror instead writes each shard as a *sparse* file of its full size holding its footer and the byte ranges of
the chosen columns' chunks (:mod:`ben_hub.ranges`; B02 to B04 lie side by side, so one range a row group), and
nothing where the other columns are: a hole, which the filesystem stores as no blocks.  Any parquet reader
that reads those columns reads them as from the published shard (the loader seeks to a chunk's pages and reads
them), and the small files (``manifest.json``, ``stats.json``, the card, ...) are downloaded whole.

A mirror lives in ``$BEN_HUB_CACHE/columns/OWNER--NAME/<columns digest>/<commit>`` (the commit last, as a
snapshot folder of the Hub cache is named) and is marked by :data:`MARK`, which names its repository, commit and
columns; ``verify`` refuses it (its shards' other bytes are holes).  Each shard is written to a temporary file
and renamed into place, so a run stopped part of the way resumes with the shards it lacks.  On a filesystem
that keeps no holes each shard takes its full size: a warning says so once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from .errors import HubError, RepoError
from .fetch import default_cache_dir
from .ranges import fetch_spans, spans_beyond
from .remote import ROW_COLUMNS, Fetcher, HubRepo, each_shard, footer, listing, resolve_commit
from .repo import load_manifest
from .shards import atomic_path, remove_stale_temps, temp_path, write_json_atomic
from .space import LOG, reported_full_disk

MARK = ".ben-hub-mirror.json"
ALWAYS = ROW_COLUMNS
"""Columns every mirror keeps beside those asked for (ids, labels and flags: about 0.1% of a shard)."""


def mirror_folder(repo_id: str, commit: str, columns: list[str]) -> Path:
    digest = hashlib.sha256(json.dumps(sorted(columns)).encode()).hexdigest()[:12]
    return default_cache_dir() / "columns" / repo_id.replace("/", "--") / digest / commit


def write_sparse(fetch: Fetcher, root: Path, path: str, columns: list[str]) -> None:
    """One shard as a sparse file: its footer and ``columns``' chunks at their offsets, holes elsewhere."""
    tail, size, metadata = footer(fetch, path)
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = temp_path(target)
    try:
        with tmp.open("wb") as handle:
            handle.truncate(size)
            for start, data in fetch_spans(spans_beyond(metadata, columns, size, tail), partial(fetch.span, path)):
                handle.seek(start)
                handle.write(data)
            handle.seek(size - len(tail))
            handle.write(tail)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def holes_kept(path: Path) -> bool:
    """Whether the filesystem stored ``path``'s holes as holes (its blocks hold less than its size)."""
    status = path.stat()
    return getattr(status, "st_blocks", 0) * 512 < status.st_size


def column_mirror(repo: HubRepo, patterns: list[str], columns: list[str], progress: bool = True) -> Path:
    """The mirror of the files of ``repo`` that ``patterns`` match (``fnmatch`` globs, as
    :func:`ben_hub.repo.split_patterns` gives them), its shards holding ``columns`` and :data:`ALWAYS`, at the
    commit the revision names now; made or completed here, and returned.  A mirror of that commit that keeps
    more columns serves as it is.  Without the Hub (``HF_HUB_OFFLINE=1``, or the first ask for the commit fails), a
    mirror that holds all of it is used, as ``huggingface_hub`` uses its cache (:func:`offline_mirror`); with none,
    the commit is asked for again with the retries every read has."""
    from huggingface_hub import HfApi, constants

    kept = sorted({*columns, *ALWAYS})
    if constants.HF_HUB_OFFLINE:
        return offline_mirror(repo, patterns, kept, "HF_HUB_OFFLINE is set")
    api = HfApi(endpoint=repo.endpoint, token=repo.token)
    try:
        commit = resolve_commit(api, replace(repo, max_retries=0))  # once: a mirror here need not wait for retries
    except HubError as err:
        try:
            found = offline_mirror(repo, patterns, kept, str(err))
        except HubError:
            commit = resolve_commit(api, repo)  # no mirror to fall back on: try as every read is tried
        else:
            LOG.warning("%s; reading the mirror at %s instead", err, found)
            return found
    root = next(iter(covering(repo.repo_id, commit, kept)), None) or mirror_folder(repo.repo_id, commit, kept)
    kept = (mirror_of(root) or {"columns": kept})["columns"]  # a mirror keeping more columns stays as it is
    fetch = Fetcher(repo, commit)
    wanted = {p: f for p, f in listing(api, repo, commit).items() if any(fnmatch.fnmatch(p, g) for g in patterns)}
    with reported_full_disk(root, "run the same command again (the shards finished are kept)"):
        for path in sorted(p for p in wanted if not p.endswith(".parquet")):
            if not (root / path).is_file():
                write_file(root / path, fetch.get(path))
        listed = manifest_shards(root, f"{repo.repo_id} at {commit[:12]}")
        todo = [p for p, f in sorted(wanted.items())
                if p in listed and not done(root / p, f.size)]  # fmt: skip
        shards = [{"path": p} for p in todo]
        warned = False
        for shard, _ in each_shard(shards, lambda s: write_sparse(fetch, root, s["path"], kept), progress):
            if not warned and not holes_kept(root / shard["path"]):
                LOG.warning("the filesystem at %s keeps no holes: each shard of the mirror takes its full size", root)
                warned = True
        write_json_atomic(root / MARK, {"repo": repo.repo_id, "commit": commit, "columns": kept})
    return root


def manifest_shards(root: Path, source: str) -> set[str]:
    """The shards the mirror's ``manifest.json`` (from ``source``) lists: the parquet files a reader uses (a shard the
    Hub holds beside them, left by an earlier push, is not fetched)."""
    try:
        return {shard["path"] for shard in load_manifest(root)["shards"]}
    except (RepoError, ValueError, KeyError, TypeError) as err:
        raise RepoError(f"{source} has no readable manifest.json ({type(err).__name__}): it is not a ben-hub build, or "
                        "its push stopped before the end (`ben-hub push` again)") from None  # fmt: skip


def covering(repo_id: str, commit: str | None, kept: list[str]) -> list[Path]:
    """Mirrors of ``repo_id`` (at ``commit``; any, for ``None``) that keep every column of ``kept``, the most
    recently completed first."""
    base = default_cache_dir() / "columns" / repo_id.replace("/", "--")
    found = []
    for mark in base.glob(f"*/{commit or '*'}/{MARK}"):
        try:
            columns = set(json.loads(mark.read_text())["columns"])
        except (OSError, ValueError, KeyError):
            continue
        if columns >= set(kept):
            found.append(mark)
    return [m.parent for m in sorted(found, key=lambda m: m.stat().st_mtime_ns, reverse=True)]


def holds(root: Path, patterns: list[str]) -> bool:
    """Whether the mirror at ``root`` holds every file of its manifest that ``patterns`` match, at its size."""
    try:
        shards = json.loads((root / "manifest.json").read_text())["shards"]
    except (OSError, ValueError, KeyError):
        return False
    chosen = [s for s in shards if any(fnmatch.fnmatch(s["path"], g) for g in patterns)]
    return all(done(root / s["path"], s["bytes"]) for s in chosen)


def offline_mirror(repo: HubRepo, patterns: list[str], kept: list[str], why: str) -> Path:
    """Without the Hub: the newest mirror of ``repo`` (at ``repo.revision`` when that names a commit held here)
    that keeps ``kept`` and holds every file ``patterns`` ask for."""
    commit = repo.revision if repo.revision and len(repo.revision) == 40 else None
    for root in covering(repo.repo_id, commit, kept):
        if holds(root, patterns):
            return root
    raise HubError(
        f"{why}, and no column mirror of {repo.repo_id} here holds {', '.join(kept)} of the files asked for: run it "
        f"once with the Hub reachable (the mirror goes to {default_cache_dir() / 'columns'}; set BEN_HUB_CACHE to "
        "share one), then without"
    )


def done(target: Path, size: int) -> bool:
    """A shard is in place once renamed there, at its full size."""
    return target.is_file() and target.stat().st_size == size


def write_file(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def mirror_report(root: Path) -> tuple[list[str], int, int]:
    """The columns a mirror keeps, the bytes its shards take on disk, and their full sizes."""
    shards = list(root.rglob("*.parquet"))
    disk = sum(getattr(p.stat(), "st_blocks", 0) * 512 or p.stat().st_size for p in shards)
    return (mirror_of(root) or {"columns": []})["columns"], disk, sum(p.stat().st_size for p in shards)


def mirror_of(root: Path) -> dict[str, Any] | None:
    """What :data:`MARK` says of the mirror at ``root`` (``None``: not a mirror)."""
    mark = root / MARK
    return json.loads(mark.read_text()) if mark.is_file() else None


def refuse_mirror(root: Path, instead: str) -> None:
    """A :class:`~ben_hub.errors.RepoError` for a mirror given where a build is needed (``verify``, ``push``,
    ``card``): its shards hold holes where the other columns are; ``instead`` says what to do."""
    mark = mirror_of(root)
    if mark is not None:
        raise RepoError(f"{root} is a column mirror of {mark['repo']} (only {', '.join(mark['columns'])} of each "
                        f"shard), not a build: {instead} (`ben-hub verify {mark['repo']}`)")  # fmt: skip


__all__ = ["MARK", "column_mirror", "mirror_of", "mirror_report", "refuse_mirror"]
