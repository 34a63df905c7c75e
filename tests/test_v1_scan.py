"""v1's label scan read by several processes, a part each: the same index, the same S1 twins, the same errors in the
same order, and a byte-identical repository, as one process reading every JSON in turn."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ben_hub.archive import locate_archive, raise_error, v1
from ben_hub.archive.base import ONE_PROCESS, ScanOptions
from ben_hub.build import build
from ben_hub.cli import main
from ben_hub.errors import PatchError

from .conftest import v1_config
from .test_tarball import tree_digest

TWO = ScanOptions(workers=2)


@pytest.fixture()
def in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 16 patches (10 of the synthetic 160), in worker processes however few patches there are."""
    monkeypatch.setattr(v1, "PARALLEL_FROM", 1)
    monkeypatch.setattr(v1, "PART", 16)


def test_two_processes_read_the_same_index_and_twins(synth_v1: Path, in_parts: None) -> None:
    spec = locate_archive(synth_v1)
    serial = v1.index(spec, raise_error, ONE_PROCESS)
    assert serial.num_rows == 160 and v1.index(spec, raise_error, TWO).equals(serial)
    assert v1.join_s1(serial, spec, raise_error, TWO).equals(v1.join_s1(serial, spec, raise_error, ONE_PROCESS))


def damage(archive: Path) -> list[str]:
    """Break the JSONs of three patches in three parts (S2 twice, S1 once); their S2 names, in patch order."""
    s2 = sorted((archive / "BigEarthNet-v1.0").iterdir())
    for folder in (s2[3], s2[100]):
        (folder / f"{folder.name}_labels_metadata.json").write_text("{")
    s1 = sorted((archive / "BigEarthNet-S1-v1.0").iterdir())[50]
    path = s1 / f"{s1.name}_labels_metadata.json"
    path.write_text(
        json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "corresponding_s2_patch"})
    )
    return [s2[3].name, s2[100].name]


def test_errors_come_in_the_same_order(v1_copy: Path, in_parts: None) -> None:
    broken = damage(v1_copy)
    spec = locate_archive(v1_copy)
    met: dict[str, list[tuple[str, str]]] = {}
    for name, options in (("one", ONE_PROCESS), ("two", TWO)):
        errors: list[PatchError] = []
        index = v1.index(spec, errors.append, options)
        v1.join_s1(index, spec, errors.append, options)
        met[name] = [(e.patch_id, e.reason) for e in errors]
    assert met["one"] == met["two"] and [p for p, reason in met["one"][:2]] == broken
    with pytest.raises(PatchError) as first:
        v1.index(spec, raise_error, TWO)
    assert first.value.patch_id == broken[0]


def test_an_error_shuts_the_workers_down_at_once(
    v1_copy: Path, in_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not when the error is let go: the traceback keeps the scan's frames, and the CLI would wait for every part."""
    damage(v1_copy)
    shutdowns: list[dict[str, Any]] = []
    real_pool = v1.process_pool

    def watched(workers: int) -> Any:
        pool = real_pool(workers)
        real_shutdown = pool.shutdown

        def shutdown(**kwargs: Any) -> None:
            shutdowns.append(kwargs)
            real_shutdown(**kwargs)

        pool.shutdown = shutdown  # type: ignore[method-assign,assignment]
        return pool

    monkeypatch.setattr(v1, "process_pool", watched)
    with pytest.raises(PatchError) as raised:
        v1.index(locate_archive(v1_copy), raise_error, TWO)
    assert raised.value is not None and shutdowns == [{"wait": True, "cancel_futures": True}]  # the error still held


def test_a_build_with_two_workers_is_byte_identical(
    synth_v1: Path, built_v1: Path, tmp_path: Path, in_parts: None
) -> None:
    out = tmp_path / "two"
    build(v1_config(synth_v1, workers=2), out, progress=False)
    assert tree_digest(out) == tree_digest(built_v1)


def test_split_of_an_archive_reads_it_with_its_workers(
    synth_v1: Path, tmp_path: Path, in_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[int] = []
    real_pool = v1.process_pool

    def counted(workers: int) -> Any:
        pools.append(workers)
        return real_pool(workers)

    monkeypatch.setattr(v1, "process_pool", counted)
    for workers in ("1", "2"):
        result = CliRunner().invoke(main, ["split", str(synth_v1), "-o", str(tmp_path / workers), "-j", workers])
        assert result.exit_code == 0, result.output
    assert pools == [2]  # its labels (a split reads no S1), with -j 2 only
    assert (tmp_path / "1" / "assignment.csv").read_bytes() == (tmp_path / "2" / "assignment.csv").read_bytes()
