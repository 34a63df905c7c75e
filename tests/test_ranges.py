"""Columns of a parquet file read by byte ranges (ben_hub/ranges.py), and ``split OWNER/NAME``: a published
repository's labels read on the Hub (the tests' stand-in) without its pixels, split as the folder is."""

import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub.cli import main
from ben_hub.errors import RepoError
from ben_hub.hub import PushConfig, push
from ben_hub.ranges import GAP, column_spans, read_columns
from ben_hub.remote import TAIL_BYTES, whole_range
from ben_hub.splits.sources import from_hub, from_repository, is_hub_id

from .hub_server import FakeHub

REPO_ID = "someone/balanced-bigearthnet"
COLUMNS = ["patch_id", "labels", "labels_19", "seasonal_snow", "cloud_or_shadow", "no_19_class_labels"]


def largest_shard(repo: Path) -> Path:
    return repo / max(json.loads((repo / "manifest.json").read_text())["shards"], key=lambda s: s["rows"])["path"]


def test_read_columns_asks_only_for_their_byte_ranges(built_v1: Path) -> None:
    """The columns equal pyarrow's reading of the whole file; beyond the tail it is given, only the spans of their
    column chunks are asked for (one a row group, and one more: the flags of one row group and the next one's
    ids are read together), under 1% of the file."""
    path = largest_shard(built_v1)
    data = path.read_bytes()
    metadata = pq.read_metadata(path)
    asked: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        asked.append((start, end))
        return data[start:end]

    tail = data[-TAIL_BYTES:]  # as verify and split read a shard's end first
    table, fetched = read_columns(len(data), tail, fetch, COLUMNS)
    assert table.equals(pq.read_table(path, columns=COLUMNS))
    spans = column_spans(metadata, COLUMNS)
    assert len(spans) == metadata.num_row_groups + 1 and metadata.num_row_groups > 1
    assert all(b[0] - a[1] >= GAP for a, b in itertools.pairwise(spans))
    assert sorted(asked) == [s for s in spans if s[0] < len(data) - len(tail)] != []  # the rest lie in the tail
    assert fetched == sum(e - s for s, e in asked) < len(data) / 100


def test_a_range_the_server_ignored_is_cut_from_the_whole_file() -> None:
    body = bytes(range(100))
    assert whole_range(body, "bytes=-10") == body[-10:]
    assert whole_range(body, "bytes=5-9") == body[5:10]
    assert whole_range(body, None) == body


def test_hub_ids_are_told_from_paths(tmp_path: Path) -> None:
    assert is_hub_id(Path("someone/balanced-bigearthnet"))
    assert not is_hub_id(tmp_path) and not is_hub_id(Path("/a/b")) and not is_hub_id(Path("a/b/c"))
    assert not is_hub_id(Path("data/metadata.parquet"))


@pytest.fixture()
def published(built_v1: Path, tmp_path: Path, hub: FakeHub) -> Path:
    local = Path(shutil.copytree(built_v1, tmp_path / "balanced-bigearthnet"))
    push(local, PushConfig(REPO_ID, endpoint=hub.url, files_per_batch=6, backoff_s=0), progress=False)
    return local


def test_split_of_a_published_repository_equals_the_folders(published: Path, hub: FakeHub, tmp_path: Path) -> None:
    """Same labels, same official split, same 5 folds and report as the folder it was pushed from; of each shard
    only its footer and its id and label ranges are read."""
    remote = from_hub(REPO_ID, endpoint=hub.url, progress=False)
    local = from_repository(published)
    assert remote.patch_ids == local.patch_ids and remote.names == local.names
    assert (remote.Y == local.Y).all() and remote.official is not None and local.official is not None
    assert (remote.official == local.official).all()
    args = ["--folds", "5", "--method", "iterstrat"]
    done = CliRunner().invoke(main, ["split", REPO_ID, "-o", str(tmp_path / "hub"), "--endpoint", hub.url, *args])
    assert done.exit_code == 0, done.output
    done = CliRunner().invoke(main, ["split", str(published), "-o", str(tmp_path / "folder"), *args])
    assert done.exit_code == 0, done.output
    for name in ("assignment.csv", "quality.json", "quality.md"):
        assert (tmp_path / "hub" / name).read_bytes() == (tmp_path / "folder" / name).read_bytes(), name
    shards = {s["path"] for s in json.loads((published / "manifest.json").read_text())["shards"]}
    assert {r for p, r in hub.gets if p in shards} == {"bytes=-262144"}  # each shard: its footer at the Hub
    total = sum((published / p).stat().st_size for p in shards)
    spans = [r for _, r in hub.storage_gets if r and not r.startswith("bytes=-")]
    assert sum(int(b) - int(a) + 1 for a, b in (r[6:].split("-") for r in spans)) < total / 100


def test_split_of_a_hub_repository_that_is_no_build(published: Path, hub: FakeHub, tmp_path: Path) -> None:
    files = hub.snapshots[hub.heads[(REPO_ID, "main")]][1]
    manifest = json.loads(files["manifest.json"])
    manifest["shards"][0]["rows"] += 1
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(RepoError, match=r"holds \d+ rows, its manifest.json says \d+; `ben-hub verify "):
        from_hub(REPO_ID, endpoint=hub.url, progress=False)
    del files["manifest.json"]
    done = CliRunner().invoke(main, ["split", REPO_ID, "-o", str(tmp_path / "x"), "--endpoint", hub.url])
    assert done.exit_code == 1 and "has no readable manifest.json" in done.output and "Traceback" not in done.output
    done = CliRunner().invoke(main, ["split", "someone/nothing", "-o", str(tmp_path / "x"), "--endpoint", hub.url])
    assert done.exit_code == 1 and "someone/nothing is no path here, and as a Hub dataset id: cannot" in done.output


def test_a_column_mirror_stopped_part_of_the_way_resumes(
    published: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror whose download broke off keeps the shards it finished (and no temporary file, and no mark); the
    same call again completes it, and each shard then reads, in its kept columns, as the published one."""
    from ben_hub import mirror
    from ben_hub.errors import HubError
    from ben_hub.remote import HubRepo

    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    repo, patterns = HubRepo(REPO_ID, endpoint=hub.url, backoff_s=0), ["*.json", "README.md", "data/*/*.parquet"]
    real, calls = mirror.write_sparse, []

    def flaky(*args: Any) -> None:
        calls.append(args[2])
        if len(calls) == 3:
            raise HubError("the connection broke off")
        real(*args)

    monkeypatch.setattr(mirror, "write_sparse", flaky)
    with pytest.raises(HubError, match="broke off"):
        mirror.column_mirror(repo, patterns, ["B04"], progress=False)
    (root,) = (tmp_path / "cache" / "columns").glob("*/*/*")
    assert not (root / mirror.MARK).exists() and not list(root.rglob("*.tmp"))
    partial = {p.relative_to(root).as_posix() for p in root.rglob("*.parquet")}
    monkeypatch.setattr(mirror, "write_sparse", real)
    shards = json.loads((published / "manifest.json").read_text())["shards"]
    lacking = root / next(s["path"] for s in shards if s["path"] not in partial)
    stale = lacking.parent / f".{lacking.name}.99999.tmp"  # left by a run killed while writing it
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"cut short")
    asked = len(hub.gets)
    assert mirror.column_mirror(repo, patterns, ["B04"], progress=False) == root
    assert not stale.exists()
    fetched = {p for p, r in hub.gets[asked:] if p.startswith("data/")}
    assert fetched == {s["path"] for s in shards} - partial and partial  # only the shards it lacked
    kept = json.loads((root / mirror.MARK).read_text())["columns"]
    assert "B04" in kept and "B03" not in kept
    for shard in shards:
        assert pq.read_table(root / shard["path"], columns=kept).equals(
            pq.read_table(published / shard["path"], columns=kept)
        )


def test_a_column_mirror_fetches_only_the_manifests_shards(
    published: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard an earlier push left on the Hub (which ``push`` now deletes) is not fetched: readers use the
    manifest's; a repository without a manifest is named."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from ben_hub import mirror
    from ben_hub.remote import HubRepo

    from .conftest import TOKEN

    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    api = HfApi(endpoint=hub.url, token=TOKEN)
    stale = "data/test-test/part-00000-of-00009.parquet"
    api.create_commit(REPO_ID, [CommitOperationAdd(stale, b"PAR1 an earlier build's")], commit_message="old",
                      repo_type="dataset")  # fmt: skip
    patterns = ["*.json", "README.md", "data/*-test/*.parquet"]
    root = mirror.column_mirror(HubRepo(REPO_ID, endpoint=hub.url, backoff_s=0), patterns, ["B04"], progress=False)
    shards = {s["path"] for s in json.loads((published / "manifest.json").read_text())["shards"]}
    fetched = {p.relative_to(root).as_posix() for p in root.rglob("*.parquet")}
    assert fetched and fetched <= shards and stale not in {p for p, _ in hub.gets}
    api.create_repo("someone/other", repo_type="dataset")
    api.create_commit("someone/other", [CommitOperationAdd(stale, b"PAR1")], commit_message="x", repo_type="dataset")
    with pytest.raises(RepoError, match=r"someone/other at [0-9a-f]{12} has no readable manifest.json"):
        mirror.column_mirror(HubRepo("someone/other", endpoint=hub.url, backoff_s=0), patterns, ["B04"], progress=False)


def test_a_column_mirror_serves_fewer_columns_and_works_offline(
    published: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror keeping B02-B04 serves a reader of B04 (no shard asked for again); without the Hub (offline, or
    the Hub unreachable: at once, without the retries' backoff) the mirror that holds what is asked for is read;
    one that lacks it is named, and an unreachable Hub is then tried again as every read is."""
    import huggingface_hub

    from ben_hub import mirror
    from ben_hub.errors import HubError
    from ben_hub.remote import HubRepo

    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    repo, patterns = HubRepo(REPO_ID, endpoint=hub.url, backoff_s=0), ["*.json", "README.md", "data/*-test/*.parquet"]
    rgb = mirror.column_mirror(repo, patterns, ["B02", "B03", "B04"], progress=False)
    asked = len(hub.gets)
    assert mirror.column_mirror(repo, patterns, ["B04"], progress=False) == rgb
    assert not [p for p, _ in hub.gets[asked:] if p.startswith("data/")]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    asked = len(hub.gets)
    assert mirror.column_mirror(repo, patterns, ["B03"], progress=False) == rgb and len(hub.gets) == asked
    with pytest.raises(HubError, match=r"HF_HUB_OFFLINE is set, and no column mirror of .* run it once with the Hub"):
        mirror.column_mirror(repo, patterns, ["B08"], progress=False)  # a band it does not keep
    with pytest.raises(HubError, match="no column mirror"):
        mirror.column_mirror(repo, ["data/*-train/*.parquet"], ["B04"], progress=False)  # shards it lacks
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    from ben_hub import hub as hub_module

    waits: list[float] = []
    monkeypatch.setattr(hub_module.time, "sleep", waits.append)
    unreachable = HubRepo(REPO_ID, endpoint="http://127.0.0.1:9")  # 5 retries: a minute of backoff, were it tried
    assert mirror.column_mirror(unreachable, patterns, ["B04"], progress=False) == rgb and waits == []
    with pytest.raises(HubError, match=r"cannot read the Hub dataset .* failed after 6 tries"):
        mirror.column_mirror(unreachable, ["data/*-train/*.parquet"], ["B04"], progress=False)  # none to fall on
    assert len(waits) == 5


def test_cli_mirror_then_train_offline(
    published: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ben-hub mirror`` where the Hub is reachable; then, offline, ``SplitReader`` of the Hub id reads the mirror
    (no request) and gives the folder's batches."""
    import huggingface_hub
    import numpy as np

    from ben_hub.loader import LoaderConfig, SplitReader

    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    args = ["mirror", REPO_ID, "--split", "test", "--band", "B08", "--band", "B04", "--endpoint", hub.url, "--quiet"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "B04, B08, cloud_or_shadow, labels, labels_19" in done.output
    assert "of the shards of resampled test" in done.output
    found = re.search(r"; ([\d,.]+) MB on disk for ([\d,.]+) MB of shards", done.output)
    assert found is not None
    stored, full = found.groups()
    assert float(stored.replace(",", "")) < float(full.replace(",", ""))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    asked, config = len(hub.gets) + len(hub.storage_gets), LoaderConfig(bands=("B08", "B04"), batch_size=16)
    remote = SplitReader(REPO_ID, "test", config)
    local = SplitReader(published, "test", config)
    for (xa, ya), (xb, yb) in zip(remote.batches(), local.batches(), strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert len(hub.gets) + len(hub.storage_gets) == asked
