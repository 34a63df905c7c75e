"""``verify OWNER/NAME``: a published repository checked on the Hub without downloading its shards.

The Hub lists every file of a commit with its size and, for LFS files (every shard ``push`` uploads), the
sha256 of its content.  So a published build can be held to its own ``manifest.json`` by reading that listing,
the files beside the shards that ben-hub wrote (manifest, statistics, settings, card and its images: well under
1 MB; nothing else a repository holds is read), each shard's parquet footer (the last 256 KiB of the file, by
an HTTP range request; a second one for a longer footer), and, by range requests to where the Hub redirects the
shard, the column chunks of its patch ids, labels and flags (:mod:`ben_hub.ranges`: about one request a row
group, about 73 bytes a patch), instead of the shards themselves (about 70 GB for the full v1 archive).  Every
file is read at one commit, the one ``--revision`` (default: ``main``) names when the check starts, so a push in
progress cannot mix two versions.  Checks, stopping at the first mismatch (:class:`~ben_hub.errors.RepoError`):

1. every shard the manifest lists is on the Hub, and no parquet file under ``data/`` is missing from it;
2. each shard's size and sha256 (the Hub's LFS record; a shard stored outside LFS is downloaded and hashed)
   equal the manifest's;
3. each shard's row count (its footer) equals the manifest's, and the split sizes add up;
4. every patch id is stored once;
5. ``stats.json`` equals the statistics recounted from the rows' labels and flags (rows, positives per class,
   labels per patch, flags, split quality: all of it but the band statistics);
6. ``README.md`` equals the card rendered from those files, as :func:`ben_hub.verify.check_card` does locally.

The band statistics need every pixel and are left to ``verify OWNER/NAME --download`` (the whole repository
downloaded, then every check of :mod:`ben_hub.verify`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from . import stats
from .archive.base import FLAG_COLUMNS
from .errors import HubError, RepoError
from .hub import RemoteFile, is_local, list_files, resolve_repo, with_retries
from .ranges import read_columns
from .repo import OWN_FILES, load_json, load_manifest
from .stats import LABEL_COLUMNS
from .verify import (
    card_images,
    check_card,
    check_present,
    check_shard,
    check_split_sizes,
    check_stored_once,
    compare_stats,
    verify,
)

T = TypeVar("T")
TAIL_BYTES = 256 * 1024
"""Read from the end of a shard first: its footer (about 70 bytes a column chunk: ~140 KB for 2,048 rows of 14
bands in 32-row groups) and the 8 bytes after it."""
FETCHERS = 8
"""Concurrent requests for footers (each waits on the network, not on a core)."""
NOT_CHECKED = "stats.json's band statistics recounted from the pixels"


@dataclass(frozen=True)
class HubRepo:
    """A dataset repository on the Hub (``endpoint``: a private deployment, or a test's stand-in); a read that
    meets a 429, a 5xx or a dropped connection is tried again up to ``max_retries`` times, ``backoff_s`` doubling."""

    repo_id: str
    revision: str | None = None
    endpoint: str | None = None
    token: str | None = None
    max_retries: int = 5
    backoff_s: float = 2.0


class Fetcher:
    """GETs (whole or a range) of the files of one commit, redirects followed, the token sent to the Hub only."""

    def __init__(self, repo: HubRepo, commit: str) -> None:
        from huggingface_hub import constants, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session

        endpoint = repo.endpoint or constants.ENDPOINT  # HF_ENDPOINT, as HfApi reads it
        self.url: Callable[[str], str] = lambda path: hf_hub_url(
            repo.repo_id, path, repo_type="dataset", revision=commit, endpoint=endpoint
        )
        self.session, self.headers = get_session(), build_hf_headers(token=repo.token)
        self.repo, self.commit = repo, commit
        self.located: dict[str, str] = {}  # path -> the URL the Hub redirected its first read to

    def get(self, path: str) -> bytes:
        """The file's bytes; transient failures are retried (:func:`ben_hub.hub.with_retries`, as
        :class:`HubRepo` says)."""
        return self._read(path, None)[0]

    def tail(self, path: str, n: int) -> tuple[bytes, int]:
        """The file's last ``n`` bytes (all of it when it is shorter) and its size.  Where the Hub redirects the
        file (its storage, for LFS files) is kept, so :meth:`span` asks there directly."""
        return self._read(path, f"bytes=-{n}")

    def span(self, path: str, start: int, end: int) -> bytes:
        """The file's bytes ``start .. end - 1``, from where its :meth:`tail` was found (the token goes only to
        the Hub's own origin)."""
        ranged, url = f"bytes={start}-{end - 1}", self.located.get(path)
        try:
            data = self._read(path, ranged, url)[0]
        except HubError:
            if url is None:
                raise
            self.located.pop(path, None)  # a signed storage address may have expired: ask the Hub again
            data = self._read(path, ranged)[0]
        if len(data) != end - start:
            raise RepoError(f"{path} of {self.repo.repo_id} at {self.commit[:12]} ends before byte {end:,}; push it "
                            "again")  # fmt: skip
        return data

    def _read(self, path: str, ranged: str | None, url: str | None = None) -> tuple[bytes, int]:
        from huggingface_hub.utils import hf_raise_for_status

        target = url or self.url(path)
        own = httpx2.URL(target).netloc == httpx2.URL(self.url(path)).netloc
        headers = {**(self.headers if own else {}), **({"Range": ranged} if ranged else {})}

        def once() -> tuple[bytes, int]:
            response = self.session.get(target, headers=headers, follow_redirects=True)
            hf_raise_for_status(response)
            self.located.setdefault(path, str(response.url))
            body, total = response.content, response.headers.get("Content-Range", "").rpartition("/")[2]
            if response.status_code == 206:
                return body, int(total) if total.isdigit() else -1
            return whole_range(body, ranged), len(body)  # 200: the server ignored the range

        return with_retries(once, self.repo, f"reading {path} of {self.repo.repo_id} at {self.commit[:12]}")


def whole_range(body: bytes, ranged: str | None) -> bytes:
    """The part of a whole file's ``body`` that a ``Range`` header (``bytes=-N`` or ``bytes=A-B``) asked for."""
    if ranged is None:
        return body
    first, _, last = ranged.removeprefix("bytes=").partition("-")
    return body[-int(last) :] if not first else body[int(first) : int(last) + 1]


def footer(fetch: Fetcher, path: str) -> tuple[bytes, int, pq.FileMetaData]:
    """A shard's last bytes (its parquet footer at least), its size and its footer, by one range request (two for
    a long footer)."""
    tail, size = fetch.tail(path, TAIL_BYTES)
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise RepoError(f"shard {path} on the Hub does not end as a parquet file does; push it again")
    need = struct.unpack("<I", tail[-8:-4])[0] + 8
    if need > len(tail):
        tail, size = fetch.tail(path, need)
    try:
        return tail, size, pq.read_metadata(pa.BufferReader(tail[-need:]))
    except (OSError, ValueError) as err:
        raise RepoError(f"shard {path} on the Hub has an unreadable parquet footer ({err}); push it again") from None


def shard_columns(fetch: Fetcher, path: str, pick: Callable[[list[str]], list[str]]) -> tuple[int, pa.Table]:
    """A shard's row count (its footer) and the columns that ``pick`` chooses from its schema's names, read by
    range requests (:func:`ben_hub.ranges.read_columns`), without the bands."""
    tail, size, metadata = footer(fetch, path)
    columns = pick(metadata.schema.to_arrow_schema().names)
    try:
        table, _ = read_columns(size, tail, functools.partial(fetch.span, path), columns)
    except (OSError, ValueError) as err:
        raise RepoError(f"shard {path} on the Hub cannot be read ({err}); push it again") from None
    return int(metadata.num_rows), table


def sha256_of(fetch: Fetcher, path: str) -> str:
    """The sha256 of a file the Hub does not keep in LFS (so lists no sha256 for): downloaded and hashed."""
    return hashlib.sha256(fetch.get(path)).hexdigest()


def resolve_commit(api: Any, repo: HubRepo) -> str:
    """The commit that ``repo.revision`` (default: the main branch) names now (a 429, a 5xx or a dropped
    connection tried again, as every read is)."""
    where = f" at revision {repo.revision!r}" if repo.revision else ""
    try:
        return with_retries(
            lambda: str(api.dataset_info(repo.repo_id, revision=repo.revision).sha),
            repo,
            "asking for its commit",
        )
    except HubError as err:
        raise HubError(
            f"cannot read the Hub dataset {repo.repo_id}{where}: {err}; check the id (OWNER/NAME), the revision, "
            "the network and HF_TOKEN (a private repository needs a token that can read it)"
        ) from None


def listing(api: Any, repo: HubRepo, commit: str) -> dict[str, RemoteFile]:
    """The files of ``repo`` at ``commit`` (:func:`ben_hub.hub.list_files`)."""
    what = f"listing the files of {repo.repo_id} at {commit[:12]}"
    files = list_files(api, repo.repo_id, commit, repo, what)
    if files is None:
        raise HubError(f"{what}: the Hub no longer has that commit; run the same command again")
    return files


CARD_INPUTS = tuple(name for name in OWN_FILES if name != "README.md")
"""The files beside the shards that the checks and the card read (those a repository has), with ``README.md``."""


def fetch_small_files(fetch: Fetcher, files: dict[str, RemoteFile], dest: Path) -> None:
    """``README.md``, :data:`CARD_INPUTS` and the images the card shows, into ``dest`` (other files are not read:
    a repository may hold anything beside what ben-hub wrote)."""
    if "README.md" not in files:
        raise RepoError(f"{fetch.repo.repo_id} at {fetch.commit[:12]} has no README.md: its push stopped before the "
                        "card, which comes last (`ben-hub push` again)")  # fmt: skip
    (dest / "README.md").write_bytes(fetch.get("README.md"))
    shown = card_images((dest / "README.md").read_text(encoding="utf-8"))
    for path in sorted({p for p in (*CARD_INPUTS, *shown) if p in files}):
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fetch.get(path))


ROW_COLUMNS = ("patch_id", *LABEL_COLUMNS, *FLAG_COLUMNS)
"""What every reader of a published repository's rows takes besides the bands: the id, labels and flags (a column
mirror keeps them, :mod:`ben_hub.mirror`)."""
CHECKED_COLUMNS = tuple(dict.fromkeys((*ROW_COLUMNS, *stats.SMALL_COLUMNS)))
"""What a check on the Hub reads of every row: the columns that ``stats.json``'s counts and shares come from, and
the id."""


def row_columns(names: list[str]) -> list[str]:
    return [c for c in CHECKED_COLUMNS if c in names]


def each_shard(
    shards: list[dict[str, Any]], read: Callable[[dict[str, Any]], T], progress: bool
) -> Iterator[tuple[dict[str, Any], T]]:
    """``(shard, read(shard))`` in the manifest's order, :data:`FETCHERS` shards read at a time."""
    with ThreadPoolExecutor(FETCHERS) as pool, tqdm(total=len(shards), desc="shards", disable=not progress) as bar:
        for shard, result in zip(shards, pool.map(read, shards), strict=True):
            yield shard, result
            bar.update()


def check_remote_shards(
    fetch: Fetcher, manifest: dict[str, Any], files: dict[str, RemoteFile], progress: bool
) -> list[pa.Table]:
    """Checks 2 and 3: sizes and sha256 from the listing, row counts from the footers; returns each shard's
    :data:`CHECKED_COLUMNS` (read by range requests) for checks 4 and 5."""

    def read(shard: dict[str, Any]) -> tuple[int | None, pa.Table | None]:
        same_size = files[shard["path"]].size == shard["bytes"]
        return shard_columns(fetch, shard["path"], row_columns) if same_size else (None, None)

    tables = []
    for shard, (rows, table) in each_shard(manifest["shards"], read, progress):
        found = files[shard["path"]]
        sha256 = found.sha256 or (sha256_of(fetch, found.path) if found.size == shard["bytes"] else None)
        check_shard(shard, found.size, sha256, rows)
        tables.append(table)
    check_split_sizes(manifest)
    return tables


def hub_columns(
    repo: HubRepo, pick: Callable[[list[str]], list[str]], progress: bool = True
) -> tuple[list[dict[str, Any]], list[pa.Table]]:
    """The shards of a published repository (its ``manifest.json``'s list) and the columns that ``pick`` chooses
    from each one's schema, read by range requests without the rest of the shard, at the commit that the
    revision names when the read starts.  A shard whose footer counts other rows than the manifest is an error
    (``ben-hub verify`` tells more)."""
    from huggingface_hub import HfApi

    fetch = Fetcher(repo, resolve_commit(HfApi(endpoint=repo.endpoint, token=repo.token), repo))
    try:
        shards: list[dict[str, Any]] = json.loads(fetch.get("manifest.json"))["shards"]
    except HubError as err:
        raise RepoError(f"{repo.repo_id} has no readable manifest.json ({err}): it is not a ben-hub build, or its "
                        "push stopped before the end") from None  # fmt: skip
    tables = []
    for shard, (rows, table) in each_shard(shards, lambda s: shard_columns(fetch, s["path"], pick), progress):
        if rows != shard["rows"]:
            raise RepoError(f"shard {shard['path']} of {repo.repo_id} holds {rows} rows, its manifest.json says "
                            f"{shard['rows']}; `ben-hub verify {repo.repo_id}` checks the rest")  # fmt: skip
        tables.append(table)
    return shards, tables


def check_remote_rows(root: Path, manifest: dict[str, Any], tables: list[pa.Table]) -> int:
    """Checks 4 and 5: each patch stored once, and ``stats.json`` but its band statistics recounted from the
    rows' labels and flags; returns how many patches."""
    paths = [s["path"] for s in manifest["shards"]]
    patches = check_stored_once(zip(paths, (t.column("patch_id") for t in tables), strict=True))
    identity = load_json(root, "build.json")
    recount = stats.summarise(manifest["shards"], [stats.table_stats(t) for t in tables],
                              stats.resampled_targets(identity), identity.get("classes"))  # fmt: skip
    recount |= stats.placed_sections(manifest["shards"], tables)
    compare_stats(recount, load_json(root, "stats.json"), skip=("band_stats",))
    return patches


def verify_remote(repo: HubRepo, progress: bool = True) -> dict[str, Any]:
    """Check a published repository without downloading its shards; returns a summary (``commit``: the one
    checked, ``not_checked``: what needs ``--download``), raises :class:`RepoError` at the first mismatch."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=repo.endpoint, token=repo.token)
    commit = resolve_commit(api, repo)
    fetch = Fetcher(repo, commit)
    files = listing(api, repo, commit)
    if "manifest.json" not in files:
        raise RepoError(f"{repo.repo_id} at {commit[:12]} has no manifest.json: it is not a ben-hub build, or its "
                        "push stopped before the end (`ben-hub push` again)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ben-hub-verify-") as folder:
        root = Path(folder)
        fetch_small_files(fetch, files, root)
        manifest = load_manifest(root)
        check_present(manifest, set(files), "push it again (`ben-hub push` uploads only what is missing)",
                      "push the build again (`ben-hub push` deletes the shards an earlier push left)")  # fmt: skip
        tables = check_remote_shards(fetch, manifest, files, progress)
        patches = check_remote_rows(root, manifest, tables)
        card = check_card(root, repo.repo_id)
    return {
        "shards": len(manifest["shards"]),
        "patches": patches,
        "splits": manifest["splits"],
        "card_skipped": card,
        "commit": commit,
        "not_checked": NOT_CHECKED,
    }


def verify_repo(
    repo: str,
    revision: str | None = None,
    endpoint: str | None = None,
    download: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> tuple[Path | None, dict[str, Any]]:
    """``ben-hub verify REPO``: a local folder gets every check (:func:`ben_hub.verify.verify`); a Hub id is checked
    where it is (:func:`verify_remote`), or, with ``download``, downloaded and given every check.  Returns the
    folder checked (``None`` for a check on the Hub) and the summary."""
    if download or is_local(repo, revision):
        root, repo_id = resolve_repo(repo, revision, endpoint, progress=progress)
        return root, verify(root, repo_id, workers)
    return None, verify_remote(HubRepo(repo, revision, endpoint), progress)
