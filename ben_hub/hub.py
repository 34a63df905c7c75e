"""Publishing to the Hugging Face Hub (``push``) and fetching a published repository (``resolve_repo``).

``push`` publishes the build: the shards ``manifest.json`` lists and ben-hub's files beside them
(:data:`ben_hub.repo.OWN_FILES`); any other file in the folder (a shard the manifest does not list, notes) is left
out and named.  It is resumable at file granularity: it lists what the target revision already holds and uploads
only files whose content differs (LFS files compared by sha256, regular files by git blob id), ``files_per_batch``
files at a time (``preupload_lfs_files``; each file hashed once, for the plan, and that sha256 is its upload's),
then makes **one commit** of them all, which also deletes the revision's
files that are ben-hub's but not this build's (parquet under ``data/``, or of those names): an earlier push's shards
would otherwise be read with this build's by the configurations' globs.  So the revision goes from the earlier
build to this one at once, and a ``load_dataset`` during a long push reads the one or the other, never a mix (with
a commit per batch it read new shards beside old ones until the last).  Other files on the Hub (a licence, the
owner's notes) are kept.  An interrupted push, run again, sends only what is missing: an LFS object uploaded
before the interruption but not yet committed is not sent again (the LFS batch API reports it present).  Each
batch and the commit are retried with exponential backoff on 429/5xx and connection errors.  The token comes from
``HF_TOKEN`` or the login cache and is passed to ``huggingface_hub`` only: never printed, logged or written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx2
from huggingface_hub import CommitOperation, CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from tqdm.auto import tqdm

from .card import render_card, write_card
from .errors import HubError, RepoError
from .repo import OWN_FILES, build_files, is_repo_id, is_shard_path, load_manifest, require_finished
from .space import reported_full_disk

T = TypeVar("T")


@dataclass(frozen=True)
class PushConfig:
    """Where and how to publish; ``endpoint`` is for tests and private Hub deployments."""

    repo_id: str
    private: bool = False
    revision: str | None = None
    create_pr: bool = False
    commit_message: str = "Upload balanced BigEarthNet (ben-hub)"
    files_per_batch: int = 64
    max_retries: int = 5
    backoff_s: float = 2.0
    endpoint: str | None = None


@dataclass(frozen=True)
class LocalFile:
    path: str
    size: int
    sha256: str
    git_oid: str
    modified_ns: int = dataclasses.field(default=0, compare=False)  # when hashed: a later change is refused


def local_file(root: Path, path: str) -> LocalFile:
    """The file at ``path`` (relative to ``root``) with its size, sha256 and git object id
    (``sha1("blob <size>\\0" + content)``), both digests from one read of it."""
    stat = (root / path).stat()
    size = stat.st_size
    sha256, blob = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with (root / path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)
            blob.update(block)
    return LocalFile(path, size, sha256.hexdigest(), blob.hexdigest(), stat.st_mtime_ns)


@dataclass(frozen=True)
class RemoteFile:
    """A file of a Hub repository's listing: its size, the sha256 of its content when the Hub keeps it in LFS, and
    its git blob id."""

    path: str
    size: int
    sha256: str | None
    git_oid: str


def list_files(
    api: HfApi, repo_id: str, revision: str | None, policy: RetryPolicy, what: str
) -> dict[str, RemoteFile] | None:
    """Every file of the dataset ``repo_id`` at ``revision`` (default: the main branch), ``None`` when the repository
    or the revision does not exist.

    One GET per page of the Hub's recursive tree listing (up to 1,000 entries a page), each tried as ``policy``
    says (:func:`with_retries`), and only so: ``HfApi.list_repo_tree`` retries a refused or dropped connection 5 times
    on its own (23 s), under any retries of ours, and offline it would take that long to say so.
    """
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url: str | None = f"{api.endpoint}/api/datasets/{repo_id}/tree/{quote(revision or 'main', safe='')}"
    params: dict[str, str] | None = {"recursive": "true", "expand": "false"}
    headers = build_hf_headers(token=api.token)
    files: dict[str, RemoteFile] = {}
    while url is not None:

        def page(url: str = url, params: dict[str, str] | None = params) -> httpx2.Response | None:
            response = get_session().get(url, params=params, headers=headers, follow_redirects=True)
            try:
                hf_raise_for_status(response)
            except (RepositoryNotFoundError, RevisionNotFoundError):
                return None
            return response

        response = with_retries(page, policy, what)
        if response is None:
            return None
        for entry in response.json():
            if entry.get("type") == "file":
                lfs = entry.get("lfs")
                sha256 = lfs["oid"] if lfs else None
                files[entry["path"]] = RemoteFile(entry["path"], int(entry["size"]), sha256, entry["oid"])
        url, params = response.links.get("next", {}).get("url"), None  # the cursor is in the next page's address
    return files


def check_repo_id(repo_id: str) -> None:
    """Raise :class:`HubError` unless ``repo_id`` is ``OWNER/NAME`` as the Hub spells repository ids."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    valid = is_repo_id(repo_id)
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        valid = False
    if not valid:
        raise HubError(
            f"{repo_id!r} is not a Hub repository id: give OWNER/NAME (your user or organisation name, a slash, and "
            "the repository's name: letters, digits, '-', '_' and '.')"
        )


def is_published(local: LocalFile, remote: RemoteFile | None) -> bool:
    if remote is None or remote.size != local.size:
        return False
    return remote.sha256 == local.sha256 if remote.sha256 else remote.git_oid == local.git_oid


@dataclass(frozen=True)
class PushPlan:
    """What a push does to make the target revision hold the build."""

    upload: list[LocalFile]
    """The build's files the revision lacks or holds with other content."""
    published: list[LocalFile]
    """The build's files the revision already holds."""
    delete: list[str]
    """Files of the revision that are ben-hub's (parquet files under ``data/``, or named as
    :data:`ben_hub.repo.OWN_FILES`) but not the build's: shards of an earlier push, which the configurations' globs
    would read with this build's."""
    left_out: list[str]
    """Files in the folder that are not the build's (:func:`build_files`), not published."""


def check_against_manifest(root: Path, manifest: dict[str, Any], files: list[LocalFile]) -> None:
    """Raise :class:`RepoError` for a shard whose size or sha256 (computed for the push anyway) is not what
    ``manifest.json`` (``manifest``) records: it changed after the build, and the published repository would not
    verify."""
    recorded = {shard["path"]: (shard["bytes"], shard["sha256"]) for shard in manifest["shards"]}
    for file in files:
        if file.path in recorded and recorded[file.path] != (file.size, file.sha256):
            raise RepoError(f"{root / file.path}: its content is not what manifest.json records (sha256/size); it "
                            "changed after the build: build again (or restore the file) before pushing")  # fmt: skip


@dataclass(frozen=True)
class LocalBuild:
    """The build's files with their digests (each file read once), and the folder's others (:func:`build_files`)."""

    files: list[LocalFile]
    left_out: list[str]


def local_build(root: Path) -> LocalBuild:
    manifest = load_manifest(root)
    paths, left_out = build_files(root, manifest)
    files = [local_file(root, path) for path in paths]
    check_against_manifest(root, manifest, files)
    return LocalBuild(files, left_out)


def plan_push(local: LocalBuild, remote: dict[str, RemoteFile]) -> PushPlan:
    """What makes a revision listed as ``remote`` hold the build ``local``."""
    paths = {f.path for f in local.files}
    delete = sorted(p for p in set(remote) - paths if is_shard_path(p) or p in OWN_FILES)
    published = [f for f in local.files if is_published(f, remote.get(f.path))]
    there = set(published)
    upload = [f for f in local.files if f not in there]
    return PushPlan(upload, published, delete, local.left_out)


@dataclass(frozen=True)
class Landed:
    """Where a push's commit is: its id and address, and with ``create_pr`` the pull request's address and ref."""

    oid: str
    commit_url: str
    pr_url: str | None
    revision: str | None


def proposing(api: HfApi, config: PushConfig, local: LocalBuild) -> Landed | None:
    """An open pull request of ``config.repo_id`` whose revision holds the build exactly (nothing to upload, nothing
    of ben-hub's to delete), ``None`` when none does: a rerun of ``push --create-pr``, or a retried commit whose
    first try opened it with its answer lost, finds it rather than opening another with the same content."""
    name = config.repo_id
    listing = functools.partial(api.get_repo_discussions, name, repo_type="dataset",
                                discussion_type="pull_request", discussion_status="open")  # fmt: skip
    for pr in with_retries(lambda: list(listing()), config, f"listing the open pull requests of {name}"):
        ref = pr.git_reference
        remote = list_files(api, name, ref, config, f"listing the files of {name}'s pull request #{pr.num}")
        if remote is None or ref is None:  # gone since the listing
            continue
        plan = plan_push(local, remote)
        if not plan.upload and not plan.delete:
            info = with_retries(functools.partial(api.dataset_info, name, revision=ref), config, f"reading #{pr.num}")
            url = f"{api.endpoint}/datasets/{name}/commit/{info.sha}"
            return Landed(str(info.sha), url, pr.url, ref)
    return None


class RetryPolicy(Protocol):
    """How often and how patiently a Hub request is tried (:class:`PushConfig`, :class:`ben_hub.remote.HubRepo`)."""

    @property
    def max_retries(self) -> int: ...

    @property
    def backoff_s(self) -> float: ...


def unresolvable(err: BaseException) -> bool:
    """Whether ``err`` comes of a host name that does not resolve (``EAI_NONAME``: a mistyped endpoint, or no DNS
    at all, as offline): no retry could succeed, where a refused or dropped connection may come back."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


TRANSPORT_ERRORS = (httpx2.TransportError, ConnectionError, TimeoutError)
"""A refused, dropped or timed-out connection (``OfflineModeIsEnabled`` is a ``ConnectionError`` too)."""


def hub_failure(err: Exception, what: str, attempt: int) -> tuple[HubError, bool] | None:
    """How :func:`with_retries` takes ``err`` at try ``attempt`` (from 0): the :class:`HubError` to raise and whether
    another try may succeed (a 429, a 5xx, a refused or dropped connection); ``None`` for an error that is not the
    Hub's, raised as it is.  ``huggingface_hub`` raises an LFS upload's failure as a ``RuntimeError`` ("Error while
    uploading 'PATH' to the Hub.") from the HTTP or connection error: that error is taken, the file named."""
    where = ""
    if isinstance(err, RuntimeError) and isinstance(err.__cause__, (HfHubHTTPError, *TRANSPORT_ERRORS)):
        where, err = f" ({str(err).rstrip('.')})", err.__cause__
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else 0
        if status in (401, 403):
            return HubError(
                f"{what}: the Hub refused the token ({status}); set HF_TOKEN to a token with access to the "
                "repository (write access, to push) or run `hf auth login`"
            ), False
        return HubError(
            f"{what} failed: HTTP {status} (try {attempt + 1}){where}: {err}"
        ), status == 429 or status >= 500
    if isinstance(err, OfflineModeIsEnabled):  # no try can succeed: said at once
        return HubError(f"{what}: HF_HUB_OFFLINE is set, so the Hub is not asked; unset it and run again"), False
    if isinstance(err, TRANSPORT_ERRORS):
        tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
        return HubError(
            f"{what} failed after {tries}{where}: {err}; check the network and the endpoint, then run the same "
            "command again (a push or a mirror resumes where it stopped)"
        ), not unresolvable(err)
    return None


def with_retries(action: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """Run ``action``, retrying a 429, a 5xx or a refused or dropped connection up to ``policy.max_retries`` times,
    the wait doubling from ``policy.backoff_s``; other failures of the Hub (a host name that does not resolve,
    offline mode, a 4xx), and the last, become a :class:`HubError` saying ``what`` (:func:`hub_failure`)."""
    for attempt in range(policy.max_retries + 1):
        try:
            return action()
        except Exception as err:
            judged = hub_failure(err, what, attempt)
            if judged is None:
                raise
            error, retryable = judged
            if not retryable or attempt == policy.max_retries:
                raise error from None
        time.sleep(policy.backoff_s * 2**attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def hub_bars(shown: bool) -> Iterator[None]:
    """``huggingface_hub``'s own progress bars (its uploads and downloads) hidden unless ``shown``, as ben-hub's
    are with ``--quiet``; their setting is restored afterwards."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    hide = not shown and not are_progress_bars_disabled()
    if hide:
        disable_progress_bars()
    try:
        yield
    finally:
        if hide:
            enable_progress_bars()


def batches(files: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


def check_replaceable(config: PushConfig, remote: dict[str, RemoteFile], plan: PushPlan) -> None:
    """Raise :class:`HubError` when the push would delete shards of a revision that is not a ben-hub build (no
    ``manifest.json``): another dataset's parquet files under ``data/``, or an unfinished push of another build."""
    shards = [path for path in plan.delete if is_shard_path(path)]
    if shards and "manifest.json" not in remote:
        where = f"{config.repo_id}" + (f" at {config.revision}" if config.revision else "")
        raise HubError(
            f"{where} holds {len(shards):,} parquet files under data/ that are not this build's (first: {shards[0]}) "
            "and no manifest.json: it is not a ben-hub build, and the configurations' globs would read its files "
            "with these; push to another repository, or delete them there first"
        )


def commit_action(
    api: HfApi, config: PushConfig, adds: list[CommitOperationAdd], deletions: list[str], local: LocalBuild
) -> Callable[[], Landed]:
    """One commit of a push, for :func:`with_retries`: ``adds`` and the deletion of ``deletions``.  An answer lost
    after the Hub applied the commit (a 502 at a proxy, a dropped connection) is retried; a retry lists the revision
    again and deletes only what is still there (the Hub answers 404 to deleting a file it lacks; the adds that
    landed are sent as no-ops, which ``huggingface_hub`` drops), and with ``create_pr`` first looks for the pull
    request the lost try opened (:func:`proposing`)."""
    tries = 0

    def commit() -> Landed:
        nonlocal tries
        tries += 1
        found = proposing(api, config, local) if config.create_pr and tries > 1 else None
        if found is not None:
            return found
        present = deletions
        if deletions and tries > 1:
            listed = list_files(api, config.repo_id, config.revision, config, f"listing {config.repo_id} again")
            present = [path for path in deletions if path in (listed or {})]
        operations: list[CommitOperation] = [*adds, *(CommitOperationDelete(path) for path in present)]
        info = api.create_commit(config.repo_id, operations, commit_message=config.commit_message,
                                 repo_type="dataset", revision=config.revision, create_pr=config.create_pr)  # fmt: skip
        revision = info.pr_revision if config.create_pr and info.pr_revision else config.revision
        return Landed(info.oid, info.commit_url, info.pr_url, revision)

    return commit


def upload_operation(root: Path, file: LocalFile) -> CommitOperationAdd:
    """``file``'s upload, its sha256 the one :func:`local_file` computed for the plan: ``huggingface_hub`` would
    otherwise read the whole file once more to hash it for the LFS upload (one more pass over every byte pushed:
    about 70 GB for the S2 bands of all 590,326 v1 patches, at the 118 KB a patch measured on the real examples).
    A file whose size or modification time changed since it was hashed is refused, not sent under a stale hash."""
    now = (root / file.path).stat()
    if (now.st_size, now.st_mtime_ns) != (file.size, file.modified_ns):
        raise RepoError(f"{root / file.path} changed after push hashed it ({file.size:,} bytes then, "
                        f"{now.st_size:,} now); leave the folder alone while it is pushed and run push "
                        "again")  # fmt: skip
    operation = CommitOperationAdd(file.path, str(root / file.path))
    operation.upload_info.sha256 = bytes.fromhex(file.sha256)
    return operation


def push(
    root: Path, config: PushConfig, token: str | None = None, dry_run: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Publish a finished repository; returns what was (or, with ``dry_run``, would be) uploaded."""
    from .mirror import refuse_mirror

    refuse_mirror(root, "push the build it came from, or copy the repository on the Hub")
    require_finished(root)
    check_repo_id(config.repo_id)
    api = HfApi(endpoint=config.endpoint, token=token or os.environ.get("HF_TOKEN") or None)
    card_text = render_card(root, config.repo_id)
    if not dry_run and (root / "README.md").read_text(encoding="utf-8") != card_text:
        write_card(root, config.repo_id)  # the card names the repository it is published as
    # a dry run tries once: offline, it says so at once rather than after a minute of retries
    listing = dataclasses.replace(config, max_retries=0) if dry_run else config
    what = f"listing the files of {config.repo_id}"
    listed = list_files(api, config.repo_id, config.revision, listing, what)  # none: not created yet
    remote, local = listed or {}, local_build(root)
    plan = plan_push(local, remote)
    check_replaceable(config, remote, plan)
    proposed = None
    if config.create_pr and listed is not None and (plan.upload or plan.delete):
        proposed = proposing(api, listing, local)  # pushed to a pull request already: the rerun opens no other
        plan = PushPlan([], local.files, [], local.left_out) if proposed else plan
    todo = plan.upload
    report: dict[str, Any] = {"repo_id": config.repo_id, "upload": [(f.path, f.size) for f in todo],
                              "already_published": len(plan.published), "bytes": sum(f.size for f in todo),
                              "delete": plan.delete, "left_out": plan.left_out}  # fmt: skip
    if proposed is not None:
        report.update(dataclasses.asdict(proposed), already_proposed=True)
    if dry_run or not (todo or plan.delete):
        return report
    with_retries(lambda: api.create_repo(config.repo_id, repo_type="dataset", private=config.private,
                                         exist_ok=True), config, "create_repo")  # fmt: skip
    adds: list[CommitOperationAdd] = []
    with (
        hub_bars(progress),
        tqdm(total=report["bytes"], unit="B", unit_scale=True, desc="push", disable=not progress) as bar,
    ):
        for chunk in batches(todo, config.files_per_batch):
            batch = [upload_operation(root, f) for f in chunk]
            upload = functools.partial(api.preupload_lfs_files, config.repo_id, batch, repo_type="dataset",
                                       revision=config.revision, create_pr=config.create_pr,
                                       free_memory=False)  # fmt: skip
            with_retries(upload, config, f"uploading files {len(adds) + 1}-{len(adds) + len(batch)} of {len(todo)}")
            adds += batch
            bar.update(sum(f.size for f in chunk))
    landed = with_retries(commit_action(api, config, adds, plan.delete, local), config, "the commit")
    report.update(dataclasses.asdict(landed), commits=[landed.oid])
    return report


def is_local(repo: str, revision: str | None = None) -> bool:
    """``True`` for a local folder, ``False`` for what may be a Hub dataset id (``OWNER/NAME``: ``push`` publishes
    nothing else; a bare ``NAME`` that is no folder here is a mistyped path).

    Raises:
        RepoError: for a path that names no folder, and for a folder given a revision.
    """
    if Path(repo).is_dir():
        if revision is not None:
            raise RepoError(f"{repo} is a local folder: a revision ({revision!r}) applies to Hub ids only; drop it")
        return True
    if repo.startswith((".", "~")) or not is_repo_id(repo):
        raise RepoError(f"no folder {repo!r} here (and it is not a Hub dataset id, OWNER/NAME): check the path")
    return False


def resolve_repo(
    repo: str,
    revision: str | None = None,
    endpoint: str | None = None,
    patterns: list[str] | None = None,
    progress: bool = True,
    columns: list[str] | None = None,
) -> tuple[Path, str | None]:
    """A local folder as is, or a Hub dataset id downloaded to the cache: ``(folder, repo id or None)``.

    ``patterns``: download only the files matching them (``fnmatch`` globs, as ``snapshot_download``'s
    ``allow_patterns``; :func:`ben_hub.repo.split_patterns` gives a configuration's splits), not every shard;
    ``progress``: ``huggingface_hub``'s download bars shown; ``columns``: of each shard download only these
    columns (and the ids, labels and flags), into a column mirror (:mod:`ben_hub.mirror`) instead of the Hub cache.
    """
    if is_local(repo, revision):
        return Path(repo), None
    if columns is not None:
        from .mirror import column_mirror
        from .remote import HubRepo

        return column_mirror(HubRepo(repo, revision, endpoint), patterns or ["*"], columns, progress), repo
    from huggingface_hub import constants, snapshot_download

    then = "run the same command again (files finished are kept), or set HF_HUB_CACHE to a larger disk"
    try:
        with reported_full_disk(Path(constants.HF_HUB_CACHE), then), hub_bars(progress):
            folder = snapshot_download(
                repo, repo_type="dataset", revision=revision, endpoint=endpoint, allow_patterns=patterns
            )
    except (HfHubHTTPError, httpx2.TransportError, LocalEntryNotFoundError) as err:
        raise HubError(
            f"no folder {repo!r} here, and the Hub dataset of that id cannot be downloaded ({err}); check the path, "
            f"or the id, the network and HF_TOKEN"
        ) from None
    return Path(folder), repo
