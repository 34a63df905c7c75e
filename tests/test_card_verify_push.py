"""The dataset card (numbers recomputed independently), verify (tampering caught), push (local fake Hub)."""

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from huggingface_hub import CommitOperation, CommitOperationAdd, CommitOperationDelete, DatasetCard, HfApi

from ben_hub.cli import main
from ben_hub.errors import HubError, RepoError
from ben_hub.hub import PushConfig, push
from ben_hub.labels import LABELS_43
from ben_hub.repo import split_sizes
from ben_hub.splits import SPLITS
from ben_hub.verify import verify

from .conftest import TOKEN
from .hub_server import FakeHub


@pytest.fixture()
def repo(built_v1: Path, tmp_path: Path) -> Path:
    """A private copy of the built repository that a test may tamper with."""
    return Path(shutil.copytree(built_v1, tmp_path / "balanced-bigearthnet"))


def test_card_parses_and_carries_hub_metadata(built_v1: Path) -> None:
    card = DatasetCard((built_v1 / "README.md").read_text())
    data = card.data.to_dict()
    assert data["license"] == "cdla-permissive-1.0" and data["task_ids"] == ["multi-label-image-classification"]
    assert {"remote-sensing", "sentinel-2", "sentinel-1", "multispectral"} <= set(data["tags"])
    assert [c["config_name"] for c in data["configs"]] == ["original", "resampled", "excluded"]
    assert {s["split"] for s in data["configs"][1]["data_files"]} == {"train", "validation", "test"}
    info = {i["config_name"]: i for i in data["dataset_info"]}
    assert info["resampled"]["features"][0] == {"name": "patch_id", "dtype": "string"}
    for section in (
        "## Loading",
        "## Schema",
        "## Labels",
        "## Exclusions",
        "## Split quality",
        "## Band statistics",
        "## Leaderboard",
        "## Citation",
        "## License",
    ):
        assert section in card.text
    assert (built_v1 / "label_counts.png").read_bytes()[:4] == b"\x89PNG"


def test_card_numbers_equal_an_independent_recount(built_v1: Path) -> None:
    text = (built_v1 / "README.md").read_text()
    ds = datasets.load_dataset(str(built_v1), "resampled", split="train").with_format("numpy", dtype=np.float64)
    labels = datasets.load_dataset(str(built_v1), "resampled", split="train")["labels"]
    rows = len(labels)
    mixed = LABELS_43.index("Mixed forest")
    count = sum(mixed in row for row in labels)
    line = next(line for line in text.splitlines() if line.startswith(f"| {mixed} | MF | Mixed forest |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3 + 3] == f"{count:,} ({count / rows:.2%})"  # columns: original x3, then resampled train
    b04 = np.concatenate([ds[i : i + 32]["B04"].reshape(-1) for i in range(0, rows, 32)])
    band_section = text.split("## Band statistics")[1]
    line = next(line for line in band_section.splitlines() if line.startswith("| `B04` |"))
    assert [c.strip() for c in line.strip("|").split("|")][3:5] == [f"{b04.mean():.2f}", f"{b04.std():.2f}"]
    cardinality = np.mean([len(row) for row in labels])
    assert f"| resampled | train | {cardinality:.3f} |" in text
    ids = {(config, split): set(datasets.load_dataset(str(built_v1), config, split=split)["patch_id"])
           for config in ("original", "resampled") for split in SPLITS}  # fmt: skip
    overlap = text.split("patches per cell:")[1].split("The ")[0]  # the configurations' overlap, cell by cell
    for split in SPLITS:
        shared = [len(ids["original", split] & ids["resampled", other]) for other in SPLITS]
        assert (
            f"| {split} | " + " | ".join(f"{n:,}" for n in shared) + f" | {len(ids['original', split]):,} |" in overlap
        )
    both = len(ids["original", "test"] & ids["resampled", "test"])
    assert f"The {both:,} patches of `test-test` are in both configurations' test split" in text and both > 0
    code = text.split("To load them alone")[1].split("```python\n")[1].split("```")[0]  # the card's own code, run
    repo_id = re.search(r'load_dataset_builder\("([^"]+)"', code)
    assert repo_id is not None
    namespace: dict[str, object] = {}
    exec(code.replace(f'"{repo_id.group(1)}"', repr(str(built_v1))), namespace)
    alone = namespace["shared"]
    assert isinstance(alone, datasets.Dataset)
    assert set(alone["patch_id"]) == ids["original", "test"] & ids["resampled", "test"]
    assert alone.features == datasets.load_dataset(str(built_v1), "resampled", split="test").features


def test_verify_passes_on_a_fresh_build(built_v1: Path) -> None:
    summary = verify(built_v1)
    assert summary["patches"] == 160


def rewrite_shard(repo: Path, change: Callable[[pa.Table], pa.Table], update_manifest: bool) -> str:
    manifest = json.loads((repo / "manifest.json").read_text())
    shard = manifest["shards"][0]
    path = repo / shard["path"]
    table = change(pq.read_table(path))
    pq.write_table(table, path, compression="zstd")
    if update_manifest:  # a careful forger: hashes match, so deeper checks must catch it
        shard.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), bytes=path.stat().st_size)
        manifest["splits"] = split_sizes(manifest["shards"])
        (repo / "manifest.json").write_text(json.dumps(manifest))
    return shard["path"]


def test_verify_catches_a_removed_row(repo: Path) -> None:
    path = rewrite_shard(repo, lambda t: t.slice(1), update_manifest=False)
    with pytest.raises(RepoError, match=f"shard {path}: content differs"):
        verify(repo)
    rewrite_shard(repo, lambda t: t.slice(1), update_manifest=True)
    with pytest.raises(RepoError, match=f"shard {path} holds"):
        verify(repo)


def test_verify_catches_a_flipped_label(repo: Path) -> None:
    def flip(table: pa.Table) -> pa.Table:
        labels = table.column("labels").to_pylist()
        labels[0] = sorted(set(labels[0]) ^ {32})  # toggle Burnt areas
        return table.set_column(
            table.schema.get_field_index("labels"), "labels", pa.array(labels, pa.list_(pa.int64()))
        )

    rewrite_shard(repo, flip, update_manifest=True)
    with pytest.raises(RepoError, match=r"stats.json: .*labels"):
        verify(repo)


def test_verify_catches_a_missing_shard(repo: Path) -> None:
    victim = sorted((repo / "data").rglob("*.parquet"))[-1]
    victim.unlink()
    with pytest.raises(RepoError, match=f"missing shard {victim.relative_to(repo)}"):
        verify(repo)


def test_a_build_stopped_before_its_card_is_unfinished_to_verify_and_push_and_a_rerun_finishes_it(
    synth_v1: Path, tmp_path: Path, hub: FakeHub
) -> None:
    from ben_hub import card
    from ben_hub.build import build

    from .conftest import v1_config

    out = tmp_path / "stopped"
    with pytest.MonkeyPatch.context() as patch:  # killed after the manifest, before the card
        patch.setattr(card, "write_card", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            build(v1_config(synth_v1), out, progress=False)
    assert (out / "manifest.json").is_file() and not (out / "README.md").exists()
    unfinished = f"{out} has no label_counts.png: it is not a finished ben-hub build; run the same `ben-hub build`"
    with pytest.raises(RepoError, match=re.escape(unfinished)):
        verify(out)  # was a FileNotFoundError traceback on README.md
    config = PushConfig("someone/stopped", endpoint=hub.url, backoff_s=0)
    with pytest.raises(RepoError, match=re.escape(unfinished)):
        push(out, config, dry_run=True, progress=False)  # was a plan to publish it without its card
    assert hub.repos == {}
    build(v1_config(synth_v1), out, progress=False)
    assert verify(out)["card_skipped"] is None  # the rerun wrote the card, and it agrees with the data


def test_verify_catches_an_edited_card_number(repo: Path) -> None:
    text = (repo / "README.md").read_text()
    edited = re.sub(
        r"(\| resampled \| train \| )(\d)", lambda m: m.group(1) + str((int(m.group(2)) + 1) % 10), text, count=1
    )
    assert edited != text
    (repo / "README.md").write_text(edited)
    with pytest.raises(RepoError, match=r"README\.md line"):
        verify(repo)
    result = CliRunner().invoke(main, ["verify", str(repo), "-j", "1"])
    assert result.exit_code == 1 and "README.md line" in result.output
    assert "README.md was edited after it was rendered" in result.output and "`ben-hub card REPO_DIR`" in result.output


def test_a_card_from_another_version_or_template_is_not_compared_and_says_so(repo: Path) -> None:
    from ben_hub.card import card_stamp, stamp_of

    text = (repo / "README.md").read_text()
    assert stamp_of(text) == card_stamp() and text.endswith(f"\n\n{card_stamp()}\n")
    wording = text.replace("Loading", "Loading the data", 1)  # another template's wording, the same data
    other = wording.replace(card_stamp(), "<!-- rendered by ben-hub 0.0.9 from card template 0123456789abcdef -->")
    (repo / "README.md").write_text(wording)
    with pytest.raises(RepoError, match=r"README\.md line"):  # this version's stamp: compared line by line
        verify(repo)
    (repo / "README.md").write_text(other)
    assert verify(repo)["card_skipped"].startswith(
        "README.md was not compared with the data: it was rendered by ben-hub 0.0.9 from card template 0123456789ab"
    )
    (repo / "README.md").write_text(text.replace(card_stamp(), ""))  # before cards had a stamp
    result = CliRunner().invoke(main, ["verify", str(repo), "-j", "1"])
    assert result.exit_code == 0 and "rendered by an earlier ben-hub (it has no stamp)" in result.output
    assert "ben-hub: warning: README.md was not compared" in result.output
    assert "every other check passed" in result.output and "`ben-hub card REPO_DIR`" in result.output


def test_push_uploads_the_repository_byte_for_byte(repo: Path, hub: FakeHub) -> None:
    config = PushConfig("someone/balanced-bigearthnet", endpoint=hub.url, files_per_batch=5, backoff_s=0)
    dry = push(repo, config, dry_run=True, progress=False)
    assert hub.repos == {} and len(dry["upload"]) == len(
        [p for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts]
    )
    report = push(repo, config, progress=False)
    files = hub.files("someone/balanced-bigearthnet")
    local = {
        str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts
    }
    assert files == local and len(report["commits"]) == len(hub.commits) == 1  # uploads in batches of 5, one commit
    assert hub.commits[0]["paths"] == sorted(local) and hub.lfs_batches >= -(-len(hub.lfs_puts) // 5) > 1
    assert set(hub.lfs_puts.values()) == {1}  # each LFS file (the shards, the plots) sent once
    assert 'load_dataset("someone/balanced-bigearthnet", "resampled")' in files["README.md"].decode()
    assert hub.auth_headers == {f"Bearer {TOKEN}"}
    verify(repo)  # the re-rendered card still verifies
    hub.tree_page, pages = 4, hub.tree_pages  # the Hub pages its listings: every page is read
    again = push(repo, config, progress=False)
    assert again["upload"] == [] and len(hub.commits) == len(report["commits"])
    assert hub.tree_pages - pages == -(-len(local) // 4) > 1


def test_push_hashes_each_file_once_and_refuses_one_changed_since(
    repo: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upload carries the sha256 that the plan computed: huggingface_hub reads no file again to hash it, and
    the stand-in checks every LFS upload against its sha256.  A file changed after it was hashed, longer or of
    the same size, is refused by name, not sent under a stale hash."""
    import huggingface_hub.lfs

    from ben_hub.hub import local_file, upload_operation

    def never(*_: object, **__: object) -> bytes:
        raise AssertionError("huggingface_hub read a file again to hash it")

    monkeypatch.setattr(huggingface_hub.lfs, "sha_fileobj", never)
    push(repo, PushConfig("someone/once", endpoint=hub.url, backoff_s=0), progress=False)
    local = {
        str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts
    }
    assert hub.files("someone/once") == local and hub.lfs_puts and set(hub.lfs_puts.values()) == {1}
    for change in (lambda text: text + "\n", lambda text: text.replace("a", "b", 1)):  # longer; same size
        listed = local_file(repo, "README.md")
        card = repo / "README.md"
        time.sleep(0.05)  # a later modification time than the listing's, on any file system's clock
        card.write_text(change(card.read_text()))
        with pytest.raises(RepoError, match=r"README.md changed after push hashed it .* run push again"):
            upload_operation(repo, listed)


def test_push_publishes_the_build_only_and_removes_what_an_earlier_push_left(repo: Path, hub: FakeHub) -> None:
    """The folder's other files stay here; on the Hub, the shards and ben-hub files of an earlier, different build
    are deleted (the configurations' globs would read its shards with these), anything else there is kept."""
    from ben_hub.remote import HubRepo, verify_remote

    config = PushConfig("someone/ben", endpoint=hub.url, files_per_batch=4, backoff_s=0)
    push(repo, config, progress=False)
    stale = {
        "data/train-train/part-00000-of-00009.parquet": b"PAR1 an earlier build's shard",
        "leaderboard.json": b"[]",
    }
    theirs = {"LICENSE": b"CDLA-Permissive-1.0", "notes/README.md": b"the owner's"}
    added = [CommitOperationAdd(path, data) for path, data in (stale | theirs).items()]
    HfApi(endpoint=hub.url, token=TOKEN).create_commit(
        "someone/ben", added, commit_message="earlier", repo_type="dataset"
    )
    stray = repo / "data" / "train-train" / "part-00000-of-00002.parquet"
    stray.write_bytes(next(repo.glob("data/train-train/*.parquet")).read_bytes())  # a shard the manifest lacks
    (repo / "notes.txt").write_text("mine")
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main")  # a clone's: neither published nor named
    with pytest.raises(RepoError, match=r"part-00000-of-00002.parquet is not in manifest.json: .*move it out"):
        verify(repo)
    stray.rename(repo / "data" / "train-train" / "kept.bin")
    result = CliRunner().invoke(main, ["verify", str(repo), "-j", "1", "--quiet"])
    note = f"note: 2 files in {repo} are not the build's; `ben-hub push` leaves them out: data/train-train/kept.bin"
    assert result.exit_code == 0 and f"{note}, notes.txt" in result.output, result.output
    (repo / "data" / "train-train" / "kept.bin").rename(stray)
    with pytest.raises(RepoError, match=r"part-00000-of-00009.parquet is not in manifest.json: .*push the build again"):
        verify_remote(HubRepo("someone/ben", endpoint=hub.url), progress=False)
    commits = len(hub.commits)
    dry = push(repo, config, dry_run=True, progress=False)
    assert dry["delete"] == sorted(stale) and dry["upload"] == [] and len(hub.commits) == commits
    assert dry["left_out"] == ["data/train-train/part-00000-of-00002.parquet", "notes.txt"]
    result = CliRunner().invoke(main, ["push", str(repo), "--repo-id", "someone/ben", "--endpoint", hub.url, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "deleted leaderboard.json (on the Hub from an earlier push, not in this build)" in result.output
    assert f"commit: {hub.url}/datasets/someone/ben/commit/" in result.output
    assert f"left out 2 files of {repo} not the build's: data/train-train/part-00000-of-00002.parquet" in (
        result.output
    )
    assert len(hub.commits) == commits + 1 and hub.commits[-1]["paths"] == sorted(stale)
    stray.unlink()
    (repo / "notes.txt").unlink()
    shutil.rmtree(repo / ".git")
    local = {
        str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts
    }
    assert hub.files("someone/ben") == local | theirs
    verify_remote(HubRepo("someone/ben", endpoint=hub.url), progress=False)  # no stray shard, the card as built


def test_a_retried_last_commit_deletes_only_what_is_still_there(repo: Path, hub: FakeHub) -> None:
    """The last commit, which deletes an earlier push's files, is applied but its answer lost (a 502): the retry
    lists the Hub again and leaves out the deletions already made, where it would have failed on their 404."""
    config = PushConfig("someone/ben", endpoint=hub.url, files_per_batch=100, max_retries=2, backoff_s=0)
    push(repo, config, progress=False)
    stale = {"data/train-train/part-00000-of-00009.parquet": b"PAR1 earlier", "leaderboard.json": b"[]"}
    changes: list[CommitOperation] = [CommitOperationAdd(path, data) for path, data in stale.items()]
    changes.append(CommitOperationDelete("build.json"))
    HfApi(endpoint=hub.url, token=TOKEN).create_commit("someone/ben", changes, commit_message="earlier",
                                                       repo_type="dataset")  # fmt: skip
    hub.lose_commit_answers = 1
    report = push(repo, config, progress=False)  # build.json is uploaded again, in the same last commit
    assert hub.lose_commit_answers == 0 and report["delete"] == sorted(stale) and report["upload"][0][0] == "build.json"
    assert not set(stale) & set(hub.files("someone/ben"))
    assert hub.files("someone/ben")["build.json"] == (repo / "build.json").read_bytes()


def test_push_refuses_a_shard_changed_after_the_build(repo: Path, hub: FakeHub) -> None:
    shard = next(repo.glob("data/train-train/*.parquet"))
    data = bytearray(shard.read_bytes())
    data[100] ^= 1
    shard.write_bytes(bytes(data))
    for dry in (True, False):
        with pytest.raises(RepoError, match=rf"{shard.name}: its content is not what manifest.json records"):
            push(repo, PushConfig("someone/ben", endpoint=hub.url, backoff_s=0), dry_run=dry, progress=False)
    assert hub.commits == []


def test_push_deletes_no_shard_of_a_dataset_that_is_not_a_ben_hub_build(repo: Path, hub: FakeHub) -> None:
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("someone/theirs", repo_type="dataset")
    theirs = [CommitOperationAdd("data/train-00000-of-00001.parquet", b"PAR1 another dataset")]
    api.create_commit("someone/theirs", theirs, commit_message="theirs", repo_type="dataset")
    commits = len(hub.commits)
    for dry in (True, False):
        with pytest.raises(HubError, match=r"someone/theirs holds 1 parquet files under data/ .* not a ben-hub build"):
            push(repo, PushConfig("someone/theirs", endpoint=hub.url, backoff_s=0), dry_run=dry, progress=False)
    assert len(hub.commits) == commits and set(hub.files("someone/theirs")) == {"data/train-00000-of-00001.parquet"}


def test_interrupted_push_resumes_without_resending(repo: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped in its uploads, or at its commit, a push leaves the revision as it was (nothing half-published), and
    run again it sends no LFS object twice."""
    import functools

    import huggingface_hub.lfs

    quick = functools.partial(huggingface_hub.lfs.http_backoff, max_retries=0)  # its own 5 retries of a PUT: 23 s
    monkeypatch.setattr(huggingface_hub.lfs, "http_backoff", quick)
    config = PushConfig("someone/ben", endpoint=hub.url, files_per_batch=3, max_retries=1, backoff_s=0)
    hub.fail_lfs_puts_after = 4
    said = r"uploading files \d+-\d+ of \d+ failed: HTTP 500 \(try 2\) \(Error while uploading 'data/.*' to the Hub\)"
    with pytest.raises(HubError, match=said):  # the file named, not a traceback of huggingface_hub's RuntimeError
        push(repo, config, progress=False)
    assert hub.files("someone/ben") == {} and hub.commits == [] and 0 < len(hub.lfs_puts) <= 4
    hub.fail_lfs_puts_after, hub.fail_commits_after = None, 0
    with pytest.raises(HubError, match="the commit failed: HTTP 500"):
        push(repo, config, progress=False)
    assert hub.files("someone/ben") == {} and set(hub.lfs_puts.values()) == {1}
    puts_before = dict(hub.lfs_puts)
    hub.fail_commits_after = None
    push(repo, config, progress=False)
    assert hub.lfs_puts == puts_before  # every object was there: nothing was sent again
    local = {
        str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts
    }
    assert hub.files("someone/ben") == local and len(hub.commits) == 1


def test_push_to_a_pull_request_and_cli_dry_run(repo: Path, hub: FakeHub) -> None:
    args = ["push", str(repo), "--repo-id", "someone/pr", "--endpoint", hub.url, "--create-pr", "--quiet"]
    result = CliRunner().invoke(main, [*args, "--files-per-batch", "4"])
    assert result.exit_code == 0 and f"pull request: {hub.url}/datasets/someone/pr/discussions/1" in result.output
    assert hub.files("someone/pr", "main") == {} and "README.md" in hub.files("someone/pr", "refs/pr/1")
    assert len(hub.commits) == 1 and hub.commits[0]["ref"] == "refs/pr/1"
    again = CliRunner().invoke(main, args)  # a rerun: pull request #1 holds the build, open, and no other is opened
    assert again.exit_code == 0 and f"pull request {hub.url}/datasets/someone/pr/discussions/1 holds" in again.output
    assert "uploaded 0 files" in again.output and len(hub.commits) == 1 and "refs/pr/2" not in hub.repos["someone/pr"]
    hub.closed_prs.add(1)  # once it is closed (unmerged), a push opens another
    config = PushConfig("someone/pr", endpoint=hub.url, create_pr=True, backoff_s=0)
    assert push(repo, config, progress=False)["pr_url"].endswith("/discussions/2") and len(hub.commits) == 2
    hub.closed_prs.add(2)
    hub.lose_commit_answers = 1  # the commit opens #3 but its answer is lost: the retry finds #3, opens no #4
    report = push(repo, config, progress=False)
    assert report["pr_url"].endswith("/discussions/3") and report["revision"] == "refs/pr/3"
    assert len(hub.commits) == 3 and "refs/pr/4" not in hub.repos["someone/pr"]
    assert report["commit_url"].endswith(report["oid"]) and hub.heads[("someone/pr", "refs/pr/3")] == report["oid"]
    result = CliRunner().invoke(
        main, ["push", str(repo), "--repo-id", "someone/other", "--endpoint", hub.url, "--dry-run", "--quiet"]
    )
    assert result.exit_code == 0 and "would upload data/" in result.output and TOKEN not in result.output
    assert "someone/other" not in hub.repos
    assert not any(TOKEN.encode() in p.read_bytes() for p in repo.rglob("*") if p.is_file())


def test_push_refuses_a_bad_repo_id_and_says_at_once_when_the_hub_is_unreachable(repo: Path) -> None:
    """A repository id that is not OWNER/NAME is refused before any request; a dry run that cannot reach the Hub
    fails at its first try, as an error (CLI: exit 1, no traceback), where a push retries first."""
    import socket
    import time

    with socket.socket() as sock:  # a port that nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for bad in ("balanced-bigearthnet", "me/a/b", "me/name with spaces"):
        result = CliRunner().invoke(main, ["push", str(repo), "--repo-id", bad, "--endpoint", closed, "--dry-run"])
        assert result.exit_code == 1 and f"{bad!r} is not a Hub repository id: give OWNER/NAME" in result.output
    started = time.monotonic()
    result = CliRunner().invoke(main, ["push", str(repo), "--repo-id", "me/x", "--endpoint", closed, "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "listing the files of me/x failed after 1 try:" in result.output and "check the network" in result.output
    assert time.monotonic() - started < 5  # no backoff, and no retries of huggingface_hub's own beneath
    started = time.monotonic()
    with pytest.raises(HubError, match=r"listing the files of me/x failed after 2 tries"):
        push(repo, PushConfig("me/x", endpoint=closed, max_retries=1, backoff_s=0), progress=False)
    assert time.monotonic() - started < 5  # the two tries named, no more
