"""``verify OWNER/NAME``: a published repository checked where it is (a local stand-in for the Hub), without
downloading its shards; ``--download`` downloads it and runs every check."""

import hashlib
import itertools
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import huggingface_hub.constants
import pytest
from click.testing import CliRunner

from ben_hub import remote
from ben_hub.cli import main
from ben_hub.errors import HubError, RepoError
from ben_hub.hub import PushConfig, push
from ben_hub.remote import HubRepo, verify_remote
from ben_hub.repo import split_sizes

from .conftest import TOKEN
from .hub_server import FakeHub

REPO_ID = "someone/balanced-bigearthnet"


@pytest.fixture()
def published(built_v1: Path, tmp_path: Path, hub: FakeHub) -> Path:
    """The built repository pushed to the stand-in Hub as ``REPO_ID`` (the local copy it was pushed from)."""
    local = Path(shutil.copytree(built_v1, tmp_path / "balanced-bigearthnet"))
    push(local, PushConfig(REPO_ID, endpoint=hub.url, files_per_batch=6, backoff_s=0), progress=False)
    return local


def head_files(hub: FakeHub) -> dict[str, bytes]:
    """The files of the main branch's last commit (what a check reads), to tamper with."""
    return hub.snapshots[hub.heads[(REPO_ID, "main")]][1]


def cli_verify(hub: FakeHub, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", REPO_ID, "--endpoint", hub.url, "--quiet", *args])
    return result.exit_code, result.output


def test_a_published_repository_verifies_without_downloading_a_shard(published: Path, hub: FakeHub) -> None:
    """Each shard: its footer from the Hub (one range from the end), then the byte ranges of its patch ids, labels
    and flags straight from the storage the Hub redirected to, without the token: under 1% of its bytes."""
    head_files(hub)["notes/raw-archive.tar"] = b"\0" * 4096  # not ben-hub's: never read
    hub.tree_page = 3  # the listing comes in pages
    code, output = cli_verify(hub)
    assert hub.tree_pages == -(-len(head_files(hub)) // 3) > 1
    manifest = json.loads((published / "manifest.json").read_text())
    commit = hub.heads[(REPO_ID, "main")]
    assert code == 0, output
    shards = len(manifest["shards"])
    assert f"ok: {shards} shards, {manifest['rows']:,} patches on the Hub at {REPO_ID}@{commit[:12]}" in output
    assert "every check passed; not checked: stats.json's band statistics recounted from the pixels (--download)" in (
        output
    )
    paths = {s["path"] for s in manifest["shards"]}
    read: dict[str, list[str | None]] = {}
    for path, wanted in hub.gets:
        read.setdefault(path, []).append(wanted)
    assert {p: r for p, r in read.items() if p in paths} == {p: [f"bytes=-{remote.TAIL_BYTES}"] for p in paths}
    small = {p for p in head_files(hub) if not p.startswith(("data/", "notes/"))}
    assert {p: r for p, r in read.items() if p not in paths} == {p: [None] for p in small}
    oids = {hashlib.sha256(head_files(hub)[p]).hexdigest(): p for p in paths}
    spans: dict[str, int] = {}
    for oid, wanted in hub.storage_gets:
        if oid not in oids or wanted == f"bytes=-{remote.TAIL_BYTES}":  # an image the card shows; a footer
            continue
        first, last = re.fullmatch(r"bytes=(\d+)-(\d+)", wanted or "").groups()  # type: ignore[union-attr]
        spans[oids[oid]] = spans.get(oids[oid], 0) + int(last) - int(first) + 1
    assert set(spans) == paths and all(n < len(head_files(hub)[p]) / 100 for p, n in spans.items())
    assert hub.auth_headers == {f"Bearer {TOKEN}"} and hub.storage_auth == set()  # the token stays with the Hub


def test_a_footer_longer_than_the_first_read_takes_a_second_range(
    published: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "TAIL_BYTES", 1024)
    summary = verify_remote(HubRepo(REPO_ID, endpoint=hub.url), progress=False)
    assert summary["patches"] == json.loads((published / "manifest.json").read_text())["rows"]
    ranges = [r for p, r in hub.gets if p.startswith("data/")]
    assert ranges.count("bytes=-1024") == summary["shards"] == len(ranges) - ranges.count("bytes=-1024")


def change_shard(files: dict[str, bytes], shard: str) -> None:
    data = bytearray(files[shard])
    data[len(data) // 2] ^= 0xFF
    files[shard] = bytes(data)


def edit_json(name: str, change: Callable[[dict], None]) -> Callable[[dict[str, bytes], str], None]:
    def edit(files: dict[str, bytes], shard: str) -> None:
        content = json.loads(files[name])
        change(content)
        files[name] = json.dumps(content, indent=2).encode()

    return edit


def first_cell_rows(stats: dict) -> None:
    stats["cells"][sorted(stats["cells"])[0]]["rows"] += 1


def first_label_count(stats: dict) -> None:
    stats["configs"]["original"]["train"]["labels"]["labels"][0] += 1


def first_flag_count(stats: dict) -> None:
    stats["cells"]["excluded"]["flags"]["seasonal_snow"] += 1


def store_twice(files: dict[str, bytes], shard: str) -> None:
    """A shard replaced by a copy of another one with as many rows, the manifest updated to match it."""
    manifest = json.loads(files["manifest.json"])
    first, second = next((a, b) for a, b in itertools.combinations(manifest["shards"], 2) if a["rows"] == b["rows"])
    files[second["path"]] = files[first["path"]]
    second.update(bytes=first["bytes"], sha256=first["sha256"])
    manifest["splits"] = split_sizes(manifest["shards"])
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()


def first_shard_rows(manifest: dict) -> None:
    manifest["shards"][0]["rows"] += 1


def card_number(files: dict[str, bytes], shard: str) -> None:
    """A digit of the card's resampled train row changed (the local test's edit)."""
    text = files["README.md"].decode()
    files["README.md"] = re.sub(
        r"(\| resampled \| train \| )(\d)", lambda m: m.group(1) + str((int(m.group(2)) + 1) % 10), text, count=1
    ).encode()


TAMPERING: dict[str, tuple[Callable[[dict[str, bytes], str], object], str]] = {
    "a shard changed": (change_shard, r"shard data/.*: content differs from manifest.json \(sha256/size\)"),
    "a shard deleted": (lambda files, shard: files.pop(shard), r"missing shard data/.*; push it again"),
    "a stray shard": (
        lambda files, shard: files.update({"data/train-train/part-99999-of-99999.parquet": files[shard]}),
        r"data/train-train/part-99999-of-99999.parquet is not in manifest.json",
    ),
    "rows in the manifest": (edit_json("manifest.json", first_shard_rows), r"holds \d+ rows, manifest.json says"),
    "rows in stats.json": (
        edit_json("stats.json", first_cell_rows),
        r"stats.json: cells\.[a-z-]+\.rows: the shards give \d+, the file says",
    ),
    "a label count in stats.json": (
        edit_json("stats.json", first_label_count),
        r"stats.json: configs\.original\.train\.labels\.labels\[0\]: ",
    ),
    "a flag count in stats.json": (
        edit_json("stats.json", first_flag_count),
        r"stats.json: cells\.excluded\.flags\.seasonal_snow: ",
    ),
    "a patch stored twice": (store_twice, r"patch \S+ is stored twice \(data/\S+ and data/\S+\): splits overlap"),
    "no card (a push cut short)": (lambda files, shard: files.pop("README.md"), r"has no README.md: its push stopped"),
    "a number in the card": (card_number, r"README.md line \d+ differs from the card rendered from the data"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_on_the_hub_is_named(published: Path, hub: FakeHub, case: str) -> None:
    tamper, message = TAMPERING[case]
    files = head_files(hub)
    before = dict(files)
    first = json.loads(files["manifest.json"])["shards"][0]["path"]
    tamper(files, first)
    assert files != before
    with pytest.raises(RepoError, match=message):
        verify_remote(HubRepo(REPO_ID, endpoint=hub.url), progress=False)
    code, output = cli_verify(hub)
    assert code == 1 and "Traceback" not in output and "Error:" in output


def test_a_revision_a_missing_repository_and_every_check_after_download(
    published: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(published, PushConfig("someone/pr", endpoint=hub.url, create_pr=True, backoff_s=0), progress=False)
    result = CliRunner().invoke(main, ["verify", "someone/pr", "--revision", "refs/pr/1", "--endpoint", hub.url])
    assert result.exit_code == 0 and "on the Hub at someone/pr@" in result.output, result.output
    result = CliRunner().invoke(main, ["verify", "someone/nothing", "--endpoint", hub.url])
    assert result.exit_code == 1 and "cannot read the Hub dataset someone/nothing" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["verify", "./no-such-folder"])
    assert result.exit_code == 1 and "no folder './no-such-folder'" in result.output
    result = CliRunner().invoke(main, ["verify", "no-such-folder"])  # a mistyped path, not a Hub id: said at once
    assert result.exit_code == 1 and "no folder 'no-such-folder' here (and it is not a Hub dataset id" in result.output
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()  # offline, no retry can succeed: none is waited for (the default policy's backoff)
    result = CliRunner().invoke(main, ["verify", "someone/pr", "--endpoint", hub.url])
    assert result.exit_code == 1 and "HF_HUB_OFFLINE is set, so the Hub is not asked; unset it" in result.output
    assert time.monotonic() - started < 10
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    result = CliRunner().invoke(
        main, ["verify", "someone/pr", "--revision", "refs/pr/1", "--endpoint", hub.url, "--download", "-j", "1"]
    )
    patches = json.loads((published / "manifest.json").read_text())["rows"]
    assert result.exit_code == 0 and f"patches, {patches:,} " not in result.output, result.output
    assert f"{patches:,} patches, every check passed" in result.output  # the local summary: every check ran
    shard = json.loads(head_files(hub)["manifest.json"])["shards"][0]["path"]
    change_shard(head_files(hub), shard)
    code, output = cli_verify(hub, "--download", "-j", "1")  # every shard downloaded, its sha256 computed here
    assert code == 1 and f"shard {shard}: content differs from manifest.json" in output


def test_quiet_hides_the_hubs_own_progress_bars(
    built_v1: Path, tmp_path: Path, hub: FakeHub, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--quiet`` (``progress=False``) holds for ``huggingface_hub``'s upload and download bars too, and leaves
    its setting as it found it."""
    from huggingface_hub.utils import are_progress_bars_disabled

    local = Path(shutil.copytree(built_v1, tmp_path / "repo"))
    capfd.readouterr()
    push(local, PushConfig(REPO_ID, endpoint=hub.url, backoff_s=0), progress=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    code, output = cli_verify(hub, "--download", "-j", "1")
    quiet = capfd.readouterr()
    assert code == 0 and "Upload" not in quiet.err + output and "Fetching" not in quiet.err + output
    assert not are_progress_bars_disabled()
    push(local, PushConfig("someone/loud", endpoint=hub.url, backoff_s=0), progress=True)
    assert "Upload" in capfd.readouterr().err  # the bars that --quiet hid


def test_reads_that_fail_for_a_while_are_tried_again(published: Path, hub: FakeHub) -> None:
    """A 503 (or 429, or a dropped connection) is retried with backoff; one that lasts ends the check, named."""
    hub.fail_downloads = 3
    summary = verify_remote(HubRepo(REPO_ID, endpoint=hub.url, backoff_s=0), progress=False)
    assert summary["card_skipped"] is None and hub.fail_downloads == 0
    hub.fail_downloads = 1000
    with pytest.raises(HubError, match=r"reading .* at [0-9a-f]{12} failed: HTTP 503 \(try 3\)"):
        verify_remote(HubRepo(REPO_ID, endpoint=hub.url, max_retries=2, backoff_s=0), progress=False)
    hub.fail_downloads, hub.expire_storage, asked = 0, 1, len(hub.gets)
    verify_remote(HubRepo(REPO_ID, endpoint=hub.url, backoff_s=0), progress=False)  # a storage address expired:
    assert hub.expire_storage == 0 and any(r and r[6] != "-" for _, r in hub.gets[asked:])  # asked the Hub again
    hub.fail_api_reads = 3  # the first read, the revision's commit, is tried again too
    verify_remote(HubRepo(REPO_ID, endpoint=hub.url, max_retries=3, backoff_s=0), progress=False)
    assert hub.fail_api_reads == 0
    hub.fail_api_reads = 1000
    with pytest.raises(HubError, match=rf"(?s)cannot read the Hub dataset {REPO_ID}: .*HTTP 503 \(try 3\).*HF_TOKEN"):
        verify_remote(HubRepo(REPO_ID, endpoint=hub.url, max_retries=2, backoff_s=0), progress=False)


def test_a_host_name_that_does_not_resolve_is_not_retried_and_a_dropped_connection_is() -> None:
    """No DNS answer for the endpoint (a typo, or offline) cannot come right by waiting: said at the first try, where
    the default policy would wait a minute; a refused connection is tried again."""
    import socket

    import httpx2

    from ben_hub.hub import with_retries

    tries = []

    def fail(cause: BaseException) -> None:
        tries.append(cause)
        try:
            raise cause
        except BaseException as err:
            raise httpx2.ConnectError(str(err)) from err

    unresolved = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(HubError, match=r"listing failed after 1 try: .*Name or service not known; check the network"):
        with_retries(lambda: fail(unresolved), HubRepo(REPO_ID, max_retries=3, backoff_s=0), "listing")
    assert len(tries) == 1
    with pytest.raises(HubError, match=r"listing failed after 4 tries: .*refused"):
        with_retries(lambda: fail(ConnectionRefusedError(111, "refused")), HubRepo(REPO_ID, max_retries=3, backoff_s=0),
                     "listing")  # fmt: skip
    assert len(tries) == 5
