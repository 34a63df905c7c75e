"""Public files fetched at run time: reBEN's metadata and the split lists, downloaded once (here from ``file://``
addresses: no network), verified by content, cached only when complete and verified."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ben_hub import lists, reben
from ben_hub.archive import locate_archive
from ben_hub.archive.v2 import EXTRA_NAME
from ben_hub.build import BuildConfig, build, country_metadata
from ben_hub.cli import main
from ben_hub.errors import ArchiveError, ListError
from ben_hub.splits.sources import load_source

from .conftest import EXAMPLE, SPLITS, V2_META, needs_shared
from .test_tarball import tree_digest


def published_from(monkeypatch: pytest.MonkeyPatch, folder: Path, cache: Path, pin: bool = False) -> None:
    """Point reBEN's published files at ``folder`` (``file://``) and the cache at ``cache``; ``pin``: pin their
    content as found there (the real pins stay otherwise)."""
    sources = []
    for source in reben.SOURCES:
        path = folder / source.filename
        source = dataclasses.replace(source, url=path.as_uri())
        if pin:
            table = pq.read_table(path)
            source = dataclasses.replace(source, rows=table.num_rows, content_sha256=reben.content_digest(table))
        sources.append(source)
    monkeypatch.setattr(reben, "SOURCES", tuple(sources))
    monkeypatch.setenv("BEN_HUB_CACHE", str(cache))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@needs_shared()
@pytest.mark.parametrize("source", reben.SOURCES, ids=lambda s: s.filename)
def test_shared_reben_metadata_has_the_pinned_content(source: reben.MetadataSource) -> None:
    reben.verify_metadata(V2_META / source.filename, source, source.filename)


@needs_shared()
def test_metadata_is_verified_by_content_not_bytes(tmp_path: Path) -> None:
    """Another writer, shuffled rows and an extra column pass; one changed label fails."""
    source = reben.SNOW_CLOUD
    table = pq.read_table(V2_META / source.filename)
    order = np.random.default_rng(0).permutation(table.num_rows)
    other = table.take(order).append_column("note", pa.array(["x"] * table.num_rows))
    copy = tmp_path / "copy.parquet"
    pq.write_table(other, copy, compression="snappy", row_group_size=5_000)
    assert copy.read_bytes() != (V2_META / source.filename).read_bytes()
    reben.verify_metadata(copy, source, "copy")
    labels = table.column("labels").to_pylist()
    labels[123] = ["Arable land"] if labels[123] != ["Arable land"] else ["Pastures"]
    pq.write_table(table.set_column(1, "labels", pa.array(labels, table.schema.field("labels").type)), copy)
    with pytest.raises(ArchiveError, match="69,450 patches that differ from the published"):
        reben.verify_metadata(copy, source, "copy")


@needs_shared()
def test_fetch_downloads_verifies_and_then_uses_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    published_from(monkeypatch, V2_META, tmp_path / "cache")
    metadata, extra = reben.fetch_metadata()
    assert metadata == tmp_path / "cache" / "reben" / "metadata.parquet" and extra.name == EXTRA_NAME
    assert metadata.read_bytes() == (V2_META / "metadata.parquet").read_bytes()
    assert leftovers(tmp_path / "cache") == ["metadata.parquet", EXTRA_NAME, "reben"]
    gone = tuple(dataclasses.replace(s, url=(tmp_path / "nowhere").as_uri()) for s in reben.SOURCES)
    monkeypatch.setattr(reben, "SOURCES", gone)  # offline now: the cached pair serves
    assert reben.fetch_metadata() == (metadata, extra)


@needs_shared()
def test_a_download_with_other_content_is_refused_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, synth_v2: Path, tmp_path: Path
) -> None:
    published_from(monkeypatch, synth_v2, tmp_path / "cache")  # 120 synthetic patches, not the published ones
    with pytest.raises(ArchiveError, match=r"holds \d+ patches that differ from the published metadata.parquet"):
        reben.fetch_metadata()
    assert leftovers(tmp_path / "cache") == ["reben"]  # no file, no partial download


def test_an_unreachable_source_names_the_release_and_the_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gone = tuple(dataclasses.replace(s, url=(tmp_path / "nowhere").as_uri()) for s in reben.SOURCES)
    monkeypatch.setattr(reben, "SOURCES", gone)
    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ArchiveError, match=r"could not download .*zenodo.org/records/10891137\) and pass it with "):
        reben.fetch_metadata()
    assert leftovers(tmp_path / "cache") == ["reben"]


def test_a_v2_folder_without_metadata_builds_with_the_published_one(
    monkeypatch: pytest.MonkeyPatch, synth_v2: Path, tmp_path: Path
) -> None:
    """The folder's own metadata moved away and published (pinned here as found): the same repository."""
    archive = tmp_path / "archive"
    shutil.copytree(synth_v2 / "BigEarthNet-S2", archive / "BigEarthNet-S2")
    shutil.copytree(synth_v2 / "BigEarthNet-S1", archive / "BigEarthNet-S1")
    published_from(monkeypatch, synth_v2, tmp_path / "cache", pin=True)
    spec = locate_archive(archive)
    assert spec.layout == "v2" and spec.metadata is None and spec.metadata_extra is None
    build(BuildConfig(spec=spec, shard_size=30), tmp_path / "fetched", progress=False)
    build(BuildConfig(spec=locate_archive(synth_v2), shard_size=30), tmp_path / "given", progress=False)
    assert tree_digest(tmp_path / "fetched") == tree_digest(tmp_path / "given")
    assert json.loads((tmp_path / "fetched" / "manifest.json").read_text())["rows"] > 0
    assert (tmp_path / "cache" / "reben" / EXTRA_NAME).is_file()


@needs_shared()
def test_split_reben_splits_the_published_metadata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    published_from(monkeypatch, V2_META, tmp_path / "cache")
    source = load_source(Path("reben"))
    assert len(source.patch_ids) == 480_038 and source.Y.shape == (480_038, 19)
    assert source.official is not None and (source.official >= 0).all()
    result = CliRunner().invoke(main, ["split", "reben", "-o", str(tmp_path / "out"), "--method", "random"])
    assert result.exit_code == 0, result.output
    assert sum(1 for _ in (tmp_path / "out" / "assignment.csv").open()) == 480_038 + 1
    missing = CliRunner().invoke(main, ["split", str(tmp_path / "nothing"), "-o", str(tmp_path / "o2")])
    assert missing.exit_code == 1 and "does not exist; pass an archive folder" in missing.output
    assert "'reben' for reBEN's published metadata" in missing.output


@needs_shared()
def test_countries_reben_joins_the_published_metadata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    published_from(monkeypatch, V2_META, tmp_path / "cache")
    spec = locate_archive(EXAMPLE, with_s1=False)
    config = BuildConfig(spec=spec, countries=Path("reben"))
    assert country_metadata(config) == tmp_path / "cache" / "reben" / "metadata.parquet"
    missing = dataclasses.replace(config, countries=tmp_path / "no.parquet")
    with pytest.raises(ListError, match=r"no.parquet is not a file; pass reBEN's metadata.parquet, or 'reben'"):
        country_metadata(missing)
    assert country_metadata(dataclasses.replace(config, spec=dataclasses.replace(spec, layout="v2"))) is None


@needs_shared()
def test_a_list_is_downloaded_once_checked_by_content(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The shared CRLF copy served as the public file: cached as downloaded; another list's content is refused."""
    source = lists.PUBLIC_LISTS["original/validation"]
    served = dataclasses.replace(source, url=(SPLITS / source.relpath).as_uri())
    monkeypatch.setitem(lists.PUBLIC_LISTS, source.key, served)
    names = lists.fetch_public_list(source.key, tmp_path / "a")
    assert len(names) == 123_723
    assert (tmp_path / "a" / "lists" / source.relpath).read_bytes() == (SPLITS / source.relpath).read_bytes()
    wrong = dataclasses.replace(source, url=(SPLITS / "original" / "test.csv").as_uri())
    monkeypatch.setitem(lists.PUBLIC_LISTS, source.key, wrong)
    with pytest.raises(ListError, match="125866 names that differ from the published original/validation list"):
        lists.fetch_public_list(source.key, tmp_path / "b")
    assert leftovers(tmp_path / "b") == ["lists", "original"]


@needs_shared()
def test_metadata_downloads_over_http_with_a_ben_hub_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A local HTTP server stands in for Zenodo (``?download=1`` addresses as the release's): the files arrive
    whole, the request names ben-hub, and a 404 is a clear error that leaves nothing in the cache."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    agents: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            agents.append(self.headers.get("User-Agent", ""))
            self.path = self.path.split("?")[0]
            super().do_GET()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(V2_META)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        served = tuple(dataclasses.replace(s, url=f"{base}/{s.filename}?download=1") for s in reben.SOURCES)
        monkeypatch.setattr(reben, "SOURCES", served)
        metadata, extra = reben.fetch_metadata(tmp_path / "cache")
        assert metadata.read_bytes() == (V2_META / "metadata.parquet").read_bytes()
        assert extra.read_bytes() == (V2_META / EXTRA_NAME).read_bytes()
        assert len(agents) == 2 and all(a.startswith("ben-hub") for a in agents)
        missing = tuple(dataclasses.replace(s, url=f"{base}/gone.parquet") for s in reben.SOURCES)
        monkeypatch.setattr(reben, "SOURCES", missing)
        with pytest.raises(ArchiveError, match=r"could not download .*gone.parquet \(HTTP Error 404"):
            reben.fetch_metadata(tmp_path / "other")
        assert leftovers(tmp_path / "other") == ["reben"]
    finally:
        server.shutdown()


@needs_shared()
def test_fetch_command_caches_every_public_file_for_offline_builds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``ben-hub fetch`` downloads all eight lists and the metadata pair (served from ``file://`` copies; the
    paper's train list made as the published rest: its pin holds), reports each, and with one source gone
    fetches the others and exits 1 naming it."""
    served = tmp_path / "served"
    shutil.copytree(SPLITS, served)
    official = [n for split in ("train", "val", "test") for n in lists.read_list(SPLITS / "original" / f"{split}.csv")]
    held = {n for split in ("val", "test") for n in lists.read_list(SPLITS / "resampled-paper" / f"{split}.csv")}
    (served / "resampled-paper" / "train.csv").write_text("\n".join(n for n in official if n not in held) + "\n")
    for key, source in list(lists.PUBLIC_LISTS.items()):
        local = dataclasses.replace(source, url=(served / source.relpath).as_uri())
        monkeypatch.setitem(lists.PUBLIC_LISTS, key, local)
    published_from(monkeypatch, V2_META, tmp_path / "cache")
    result = CliRunner().invoke(main, ["fetch"])
    assert result.exit_code == 0, result.output
    assert "resampled-paper/train: 311,537 names, verified" in result.output
    assert result.output.count("verified") == len(lists.PUBLIC_LISTS) + 2
    assert (tmp_path / "cache" / "reben" / EXTRA_NAME).is_file()
    assert len(list((tmp_path / "cache" / "lists").rglob("*.csv"))) == len(lists.PUBLIC_LISTS)
    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "fresh"))
    gone = lists.PUBLIC_LISTS["seasonal_snow"]
    monkeypatch.setitem(lists.PUBLIC_LISTS, "seasonal_snow", dataclasses.replace(gone, url=(tmp_path / "x").as_uri()))
    result = CliRunner().invoke(main, ["fetch", "--only", "lists"])
    assert result.exit_code == 1 and "seasonal_snow: FAILED: could not download" in result.output
    assert "by hand as FOLDER/patches_with_seasonal_snow.csv and pass --lists-dir FOLDER" in result.output
    assert "1 of 8 files could not be fetched" in result.output and "reben" not in result.output
    assert len(list((tmp_path / "fresh" / "lists").rglob("*.csv"))) == len(lists.PUBLIC_LISTS) - 1
