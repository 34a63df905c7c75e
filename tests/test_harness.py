"""The benchmark harness on CPU: models, the metric module, the fast loader, training end to end, resume,
and the leaderboard built from stored run JSONs."""

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from ben_hub import leaderboard  # noqa: E402
from ben_hub.archive import locate_archive  # noqa: E402
from ben_hub.archive.synth import synth_archive  # noqa: E402
from ben_hub.build import BuildConfig, build  # noqa: E402
from ben_hub.labels import LABELS_43  # noqa: E402
from ben_hub.loader import DeviceBatches, DeviceCache, LoaderConfig, SplitReader  # noqa: E402
from harness.models import build_model, count_parameters  # noqa: E402

from .conftest import TOKEN, stored_run  # noqa: E402
from .hub_server import FakeHub  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
STEM, BRANCH_POOL = "Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.conv.weight"  # InceptionV3's first, last


@pytest.fixture(scope="module")
def learnable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 synthetic patches (S2 only), split 60/20/20 by the fast method."""
    archive = synth_archive(tmp_path_factory.mktemp("learn") / "archive", 600, "v1", seed=11, with_s1=False)
    out = tmp_path_factory.mktemp("learn-repo") / "repo"
    build(
        BuildConfig(
            spec=locate_archive(archive, with_s1=False), lists_dir=archive / "splits", method="fast", shard_size=128
        ),
        out,
        progress=False,
    )
    return out


def test_shortcnn_has_the_papers_parameter_count() -> None:
    assert count_parameters(build_model("shortcnn", 3, 43).model) == 2_523_403


def test_inception_v3_takes_120px_and_local_weights(tmp_path: Path) -> None:
    import timm

    from ben_hub.errors import WeightsError

    donor = timm.create_model("inception_v3", pretrained=False, num_classes=1000)  # stands in for ImageNet weights
    torch.save(donor.state_dict(), tmp_path / "imagenet.pt")
    built = build_model("inception_v3", 3, 19, str(tmp_path / "imagenet.pt"))
    assert built.weights_origin == f"file:{tmp_path / 'imagenet.pt'}"
    inner = built.model.get_submodule("model")
    assert torch.equal(inner.get_parameter(STEM), donor.get_parameter(STEM))
    built.model.eval()
    assert built.model(torch.zeros(2, 3, 120, 120)).shape == (2, 19)
    assert build_model("inception_v3", 3, 19).weights_origin == "random"
    with pytest.raises(WeightsError, match=r"tv_in1: neither a weights file nor a timm pretrained tag .*tv_in1k"):
        build_model("inception_v3", 3, 19, "tv_in1")  # a typo is refused, not trained from random init
    assert count_parameters(build_model("inception_v3", 3, 43).model) == 21_873_675  # timm's, no auxiliary head
    import torchvision

    paper = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)  # ImageNet's shape
    paper.fc = torch.nn.Linear(2048, 43)  # only the main head replaced; the auxiliary one keeps 1000 outputs
    assert count_parameters(paper) == 25_200_371  # the paper's count
    assert count_parameters(paper) - count_parameters(paper.AuxLogits) == 21_873_675  # the network trained on 43
    torch.save(paper.state_dict(), tmp_path / "torchvision.pth")  # a torchvision file (aux head and all) loads
    again = build_model("inception_v3", 3, 43, str(tmp_path / "torchvision.pth")).model.get_submodule("model")
    assert torch.equal(again.get_parameter(BRANCH_POOL), paper.get_parameter(BRANCH_POOL))


def test_a_timm_tag_without_the_hub_takes_its_cached_copy_or_random_init_without_trying_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No DNS (a compute node): huggingface_hub would try each of timm's two files 6 times (46 s) and then fall
    back; the harness asks the cache at once and never the network."""
    import socket

    import timm
    import timm.models._hub
    from huggingface_hub import constants
    from safetensors.torch import save_file

    def no_dns(*_: object, **__: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    asked: list[object] = []
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(timm.models._hub, "hf_hub_download", lambda *a, **_: asked.append(a))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert build_model("inception_v3", 3, 43, "tv_in1k").weights_origin == "random"
    said = capsys.readouterr().out
    assert "the Hub cannot be reached (" in said and "does not resolve) and none are cached; random init" in said
    donor = timm.create_model("inception_v3", pretrained=False, num_classes=1000)
    snapshot = tmp_path / "models--timm--inception_v3.tv_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(snapshot / "model.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    built = build_model("inception_v3", 3, 43, "tv_in1k")
    assert built.weights_origin == "hub:inception_v3.tv_in1k" and asked == []
    inner = built.model.get_submodule("model")
    assert torch.equal(inner.get_parameter(BRANCH_POOL), donor.get_parameter(BRANCH_POOL))


def test_weights_files_of_every_common_form_load_and_others_are_refused(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file
    from timm.models import adapt_input_conv

    from ben_hub.errors import WeightsError

    donor = timm.create_model("inception_v3", pretrained=False, num_classes=1000)
    state = donor.state_dict()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}  # a training checkpoint
    torch.save(wrapped, tmp_path / "checkpoint.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    for name in ("checkpoint.pth", "model.safetensors"):
        inner = build_model("inception_v3", 3, 43, str(tmp_path / name)).model.get_submodule("model")
        assert torch.equal(inner.get_parameter(BRANCH_POOL), donor.get_parameter(BRANCH_POOL))
    four = build_model("inception_v3", 4, 43, str(tmp_path / "model.safetensors")).model  # RGB + NIR
    assert torch.equal(four.get_parameter(f"model.{STEM}"), adapt_input_conv(4, state[STEM]))
    torch.save(build_model("shortcnn", 3, 43).model.state_dict(), tmp_path / "shortcnn.pt")
    with pytest.raises(WeightsError, match=r"shortcnn.pt: does not fit InceptionV3 \(\d+ parameters missing"):
        build_model("inception_v3", 3, 43, str(tmp_path / "shortcnn.pt"))
    with pytest.raises(WeightsError, match="does not fit ShortCNN"):
        build_model("shortcnn", 3, 43, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError, match="no such weights file"):
        build_model("inception_v3", 3, 43, str(tmp_path / "typo.pt"))
    torch.save(build_model("shortcnn", 3, 43).model, tmp_path / "whole.pt")  # the module pickled, not its weights
    (tmp_path / "cut.pt").write_bytes((tmp_path / "shortcnn.pt").read_bytes()[:4096])
    (tmp_path / "empty.pt").touch()
    (tmp_path / "notes.pt").write_text("not weights")
    said = {
        "whole.pt": r"whole\.pt: it holds a pickled harness\.models\.ShortCNN, .*\(torch\.save\(model\.state_dict\(\)",
        "cut.pt": r"cut\.pt: a torch file cut short or damaged .* download it again",
        "empty.pt": r"empty\.pt: the file is empty",
        "notes.pt": r"notes\.pt: not a torch file \(Unsupported operand \d+\)",
    }
    for name, reason in said.items():
        with pytest.raises(WeightsError, match=reason) as caught:
            build_model("shortcnn", 3, 43, str(tmp_path / name))
        assert "weights_only" not in str(caught.value)  # not torch's advice to run the file's pickled code


def test_train_reports_bad_input_without_a_traceback(learnable: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "harness" / "train.py"), "--repo", str(learnable), "--out", str(tmp_path),
           "--model", "inception_v3", "--weights", str(tmp_path / "imagenet.pt"), "--epochs", "1",
           "--seed", "0", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "ACCELERATE_USE_CPU": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: {tmp_path / 'imagenet.pt'}: no such weights file" in done.stderr
    assert "next seed" not in done.stderr  # every seed reads the same weights: the first failure ends them all
    assert not list(tmp_path.glob("inception_v3-*"))  # no run folder, which leaderboard would call unfinished


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--epochs", "0"], "argument --epochs: 0: give a number above 0"),
        (["--batch-size", "-3"], "argument --batch-size: -3: give a number above 0"),
        (["--lr", "0"], "argument --lr: 0: give a number above 0"),
        (["--momentum", "-0.1"], "argument --momentum: -0.1: give a number of at least 0"),
        (["--bands", "B04", "B99"], "argument --bands: invalid choice: 'B99'"),
        (["--bands", "B04", "B04"], "--bands B04 B04: name each band once"),
    ],
)
def test_train_options_out_of_range_are_usage_errors(
    options: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each would otherwise fail deep in a run (a division by zero, SGD's ValueError, a run with no best epoch)."""
    from harness.train import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--repo", "repo", *options])
    assert exit_info.value.code == 2 and said in capsys.readouterr().err


def test_a_band_the_repository_does_not_store_is_named(learnable: Path) -> None:
    """A band not stored is named with those that are; settings no read could use are refused at once."""
    from ben_hub.errors import RepoError

    with pytest.raises(RepoError, match=r"stores no VV band \(it has B01, B02, .*B12\): choose among those"):
        SplitReader(learnable, "train", LoaderConfig(bands=("B04", "VV")))
    with pytest.raises(ValueError, match=r"labels 'label' is neither .*; batch_size 0 is below 1$"):
        LoaderConfig(labels="label", batch_size=0)
    with pytest.raises(
        ValueError, match=r"config 'train' is not one of original, resampled, excluded; bands \('B4',\)"
    ):
        LoaderConfig(config="train", bands=("B4",))


def test_metric_module_matches_scikit_learn() -> None:
    import evaluate
    from sklearn.metrics import fbeta_score, precision_recall_fscore_support, precision_score, recall_score

    metric = evaluate.load(str(ROOT / "harness" / "metrics" / "multilabel_prf"))
    rng = np.random.default_rng(5)
    for n, q, p in ((300, 43, 0.1), (50, 19, 0.3), (20, 43, 0.02)):
        pred = (rng.random((n, q)) < p).astype(int)
        ref = (rng.random((n, q)) < p).astype(int)
        out = metric.compute(predictions=pred.tolist(), references=ref.tolist())
        for avg in ("macro", "micro"):
            assert out[f"{avg}_precision"] == pytest.approx(
                precision_score(ref, pred, average=avg, zero_division=0), abs=1e-9
            )
            assert out[f"{avg}_recall"] == pytest.approx(
                recall_score(ref, pred, average=avg, zero_division=0), abs=1e-9
            )
            for beta in (1, 2):
                expected = fbeta_score(ref, pred, beta=beta, average=avg, zero_division=0)
                assert out[f"{avg}_f{beta}"] == pytest.approx(expected, abs=1e-9)
        each = metric.compute(predictions=pred.tolist(), references=ref.tolist(), per_class=True)
        assert {k: v for k, v in each.items() if k != "per_class"} == out  # Table 1's numbers unchanged
        classes = each["per_class"]
        assert classes["support"] == ref.sum(0).tolist() and classes["predicted"] == pred.sum(0).tolist()
        for beta, name in ((1, "f1"), (2, "f2")):
            p, r, f, _ = precision_recall_fscore_support(ref, pred, beta=beta, average=None, zero_division=0)
            assert classes[name] == pytest.approx(f.tolist(), abs=1e-9)
            assert classes["precision"] == pytest.approx(p.tolist(), abs=1e-9)
            assert classes["recall"] == pytest.approx(r.tolist(), abs=1e-9)
        assert float(np.mean(classes["f1"])) == pytest.approx(out["macro_f1"], abs=1e-12)


def test_loader_yields_every_row_once_deterministically(learnable: Path) -> None:
    reader = SplitReader(learnable, "train", LoaderConfig(batch_size=50, shuffle_buffer=3))
    first = [(x.copy(), y.copy()) for x, y in reader.batches(epoch=1, shuffle=True, seed=4)]
    again = [(x, y) for x, y in reader.batches(epoch=1, shuffle=True, seed=4)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    xs = np.concatenate([x for x, _ in first])
    plain = np.concatenate([x for x, _ in reader.batches()])
    assert len(xs) == reader.rows and xs.dtype == np.float32 and xs.shape[1:] == (3, 120, 120)
    assert sorted(map(bytes, xs.reshape(len(xs), -1))) == sorted(map(bytes, plain.reshape(len(plain), -1)))
    assert abs(float(plain[:, 0].mean())) < 0.05 and abs(float(plain[:, 0].std()) - 1) < 0.05  # train moments
    kept = [x for x, _ in reader.batches(epoch=1, shuffle=True, seed=4)]  # pooled buffers never overwrite
    assert all(np.array_equal(k, f[0]) for k, f in zip(kept, first, strict=True))  # batches a caller keeps
    disk = SplitReader(learnable, "train", LoaderConfig(batch_size=50, cache_dir=str(learnable.parent / "cache")))
    from_disk = np.concatenate([x for x, _ in disk.batches()])
    assert np.array_equal(from_disk, plain) and disk.cache_paths()[0].exists()
    again_disk = np.concatenate([x for x, _ in disk.batches(epoch=2, shuffle=True, seed=1)])
    assert sorted(map(bytes, again_disk.reshape(len(xs), -1))) == sorted(map(bytes, plain.reshape(len(plain), -1)))
    cache = DeviceCache(reader, "cpu")
    nineteen = DeviceCache(SplitReader(learnable, "validation", LoaderConfig(labels="labels_19")), "cpu")
    assert cache.n_classes == 43 and nineteen.n_classes == 19 and next(nineteen.batches())[1].shape[1] == 19
    cached = torch.cat([x for x, _ in cache.batches()]).numpy()
    assert np.allclose(cached, plain, atol=1e-5)
    small = list(reader.raw_chunks(rows=100))  # whole row groups (up to 32 rows) until 100 rows are held
    sizes = [len(x) for x, _ in small]
    assert all(100 <= n < 132 for n in sizes[:-1]) and sum(sizes) == reader.rows and len(sizes) > 2
    assert np.allclose(np.concatenate([x for x, _ in small]) * reader.scale + reader.shift, plain, atol=1e-5)
    from_map = DeviceCache(disk, "cpu")  # chunks from the memory map give the same tensors
    assert torch.equal(from_map.x, cache.x) and torch.equal(from_map.y, cache.y)
    threaded = DeviceCache(SplitReader(learnable, "train", LoaderConfig(batch_size=50, threads=2)), "cpu")
    assert torch.equal(threaded.x, cache.x) and torch.equal(threaded.y, cache.y)
    for float_reader in (reader, disk):  # streaming and cached: raw batches normalised by torch give the same
        raw_reader = SplitReader(learnable, "train", dataclasses.replace(float_reader.config, raw=True))
        raw = [x.copy() for x, _ in raw_reader.batches(epoch=1, shuffle=True, seed=4)]
        assert all(x.dtype == np.uint16 for x in raw) and sum(map(len, raw)) == reader.rows
        pairs = zip(
            DeviceBatches(raw_reader, "cpu").batches(epoch=1, shuffle=True, seed=4),
            float_reader.batches(epoch=1, shuffle=True, seed=4),
            strict=True,
        )
        for (x, y), (want_x, want_y) in pairs:
            assert x.dtype == torch.float32 and np.allclose(x.numpy(), want_x, atol=1e-5)
            assert np.array_equal(y.numpy(), want_y)
    with pytest.raises(ValueError, match="raw=True"):
        DeviceBatches(reader, "cpu")
    whole = [x.copy() for x, _ in disk.batches(epoch=2, shuffle=True, seed=5)]  # the map: batches i, i+3, ...
    parts = [[x.copy() for x, _ in disk.batches(2, True, 5, part=(i, 3))] for i in range(3)]
    assert [len(p) for p in parts] == [len(whole[i::3]) for i in range(3)] and len(whole) == len(disk)
    assert all(np.array_equal(a, b) for i in range(3) for a, b in zip(parts[i], whole[i::3], strict=True))


def rows_of(batches: Iterator[tuple[Any, Any]]) -> list[bytes]:
    return [bytes(np.asarray(row)) for x, _ in batches for row in np.asarray(x)]


def test_parts_decode_and_hold_only_their_row_groups(learnable: Path) -> None:
    """Process i of k streams (or holds on the device) row groups i, i+k, ... only: together every row once."""
    reader = SplitReader(learnable, "train", LoaderConfig(batch_size=50, shuffle_buffer=3))
    everything = sorted(rows_of(reader.batches()))
    decoded: list[int] = []
    read_planes = reader.read_planes

    def counting(*args: Any) -> Any:
        decoded.append(args[1])
        return read_planes(*args)

    reader.read_planes = counting  # type: ignore[method-assign, assignment]
    for shuffle in (False, True):
        parts = [list(reader.batches(2, shuffle, 5, part=(i, 3))) for i in range(3)]
        assert len(decoded) == len(reader.units)  # each row group decoded by one part only, once
        decoded.clear()
        assert sorted(r for p in parts for r in rows_of(iter(p))) == everything
        assert [len(p) for p in parts] == [reader.steps(2, shuffle, 5, (i, 3)) for i in range(3)]
        again = list(reader.batches(2, shuffle, 5, part=(1, 3)))
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(parts[1], again, strict=True))
        decoded.clear()
        even = [sum(1 for _ in reader.batches(2, shuffle, 5, part=(i, 3), even=True)) for i in range(3)]
        assert even == [min(len(p) for p in parts)] * 3 == [reader.steps(2, shuffle, 5, (0, 3), even=True)] * 3
        decoded.clear()
    caches = [DeviceCache(reader, "cpu", part=(i, 3)) for i in range(3)]
    assert sum(len(c.y) for c in caches) == reader.rows and len({len(c.y) for c in caches}) > 1
    raw = SplitReader(learnable, "train", dataclasses.replace(reader.config, raw=True))
    held = sorted(bytes(row) for c in caches for row in c.x.numpy().view(np.uint16))
    assert held == sorted(rows_of(raw.batches()))  # the stored values, each row in one part
    assert sum(len(x) for i, c in enumerate(caches) for x, _ in c.batches(1, True, 2, part=(i, 3))) == reader.rows
    assert [sum(1 for _ in c.batches(1, True, 2, c.part, even=True)) for c in caches] == [min(map(len, caches))] * 3
    with pytest.raises(ValueError, match="holds part"):
        next(caches[0].batches(part=(1, 3)))


def test_eval_rows_name_the_split_row_of_each_prediction(learnable: Path, tmp_path: Path) -> None:
    """Unshuffled batches of any part (streamed, from the decoded cache, held on the device) are the split's rows at
    ``eval_rows(part)`` in that order, which ``in_cell`` masks: how a run scores the test patches both
    configurations share."""
    streamed = SplitReader(learnable, "test", LoaderConfig(batch_size=20, raw=True))
    cached = SplitReader(learnable, "test", LoaderConfig(batch_size=20, raw=True, cache_dir=str(tmp_path)))
    whole = rows_of(streamed.batches())  # file order
    assert rows_of(cached.batches()) == whole and len(whole) == streamed.rows
    for every in (1, 2, 3):
        for mine in range(every):
            part = (mine, every)
            for reader in (streamed, cached):
                assert rows_of(reader.batches(part=part)) == [whole[j] for j in reader.eval_rows(part)]
            held = DeviceCache(streamed, "cpu", part)
            order = held.eval_rows(part)
            assert [bytes(row) for row in held.x.numpy().view(np.uint16)] == [whole[j] for j in order]
            assert sum(len(y) for _, y in held.batches(part=part)) == len(order)
    assert not np.array_equal(streamed.eval_rows((0, 2)), cached.eval_rows((0, 2)))  # batches vs row groups
    manifest = json.loads((learnable / "manifest.json").read_text())
    for cell in ("test-test", "train-test", "validation-test"):  # resampled's test split
        stored = sum(s["rows"] for s in manifest["shards"] if s["cell"] == cell)
        assert int(streamed.in_cell(cell).sum()) == stored > 0
    assert not streamed.in_cell("test-train").any()  # original's test, not this split


def test_patch_dataset_serves_the_readers_rows_by_index(
    learnable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    from ben_hub.dataset import PatchDataset

    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    reader = SplitReader(learnable, "validation", LoaderConfig(batch_size=64))
    want_x = np.concatenate([x for x, _ in reader.batches()])  # file order
    want_y = np.concatenate([y for _, y in reader.batches()])
    ds = PatchDataset(learnable, "validation")  # decoded into $BEN_HUB_CACHE/decoded
    assert len(ds) == reader.rows and list((tmp_path / "cache" / "decoded").glob("*/x.npy"))
    for i in (0, 17, len(ds) - 1, -1):
        item = ds[i]
        assert item["image"].dtype == np.float32 and item["image"].shape == (3, 120, 120)
        assert np.allclose(item["image"], want_x[i], atol=1e-5) and np.array_equal(item["label"], want_y[i])
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]
    copy = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker gets: no maps, reopened on first use
    assert copy.maps is None and np.array_equal(copy[5]["image"], ds[5]["image"])
    loader = torch.utils.data.DataLoader(ds, batch_size=50, num_workers=2)
    batches = list(loader)
    assert np.allclose(torch.cat([b["image"] for b in batches]).numpy(), want_x, atol=1e-5)
    assert np.array_equal(torch.cat([b["label"] for b in batches]).numpy(), want_y)
    raw = PatchDataset(learnable, "validation", LoaderConfig(normalize=False), transform=lambda d: {**d, "seen": 1})
    item = raw[3]
    assert item["image"].dtype == np.uint16 and item["seen"] == 1
    assert np.allclose(item["image"] * reader.scale + reader.shift, want_x[3], atol=1e-5)


def test_a_hub_id_downloads_only_the_files_of_the_split_read(
    learnable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole shards (``resolve_repo`` without ``columns``, as ``verify --download`` asks): ``snapshot_download`` is
    replaced by a copy from the built folder that honours ``allow_patterns`` as the Hub client does (fnmatch on
    repository paths)."""
    import fnmatch
    import shutil

    import huggingface_hub

    from ben_hub.errors import RepoError
    from ben_hub.hub import resolve_repo
    from ben_hub.repo import split_patterns

    asked: list[list[str] | None] = []

    def snapshot_download(repo_id: str, allow_patterns: list[str] | None = None, **_: Any) -> str:
        asked.append(allow_patterns)
        target = tmp_path / "snapshot"
        for path in learnable.rglob("*"):
            relpath = path.relative_to(learnable).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(relpath, p) for p in allow_patterns or ["*"]):
                (target / relpath).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / relpath)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    root, repo_id = resolve_repo("someone/balanced-bigearthnet", patterns=split_patterns("original", ["validation"]))
    assert asked == [["*.json", "README.md", "data/validation-*/*.parquet"]]
    assert repo_id == "someone/balanced-bigearthnet"
    fetched = {p.parent.name for p in (root / "data").glob("*/*.parquet")}
    assert fetched and all(cell.startswith("validation-") for cell in fetched)
    assert len(SplitReader(root, "validation", LoaderConfig(config="original"))) > 0
    assert split_patterns("resampled", ["train"])[-1] == "data/*-train/*.parquet"
    for path in ("./no-such-repo", str(tmp_path / "missing"), "a/b/c", "no-such-repo", "a/", "/b"):  # never asked
        with pytest.raises(RepoError, match=r"no folder .* check the path"):
            resolve_repo(path)
    assert len(asked) == 1
    with pytest.raises(RepoError, match=r"a local folder: a revision .* Hub ids only"):
        resolve_repo(str(learnable), revision="v1.0")
    with pytest.raises(RepoError, match="no split 'train' in configuration 'excluded'"):
        split_patterns("excluded", ["train"])


def test_a_hub_id_is_read_from_a_column_mirror(
    learnable: Path, tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SplitReader`` and ``PatchDataset`` of a Hub id download, of the split's shards, only the bands they read
    and the labels, into sparse files (ben_hub/mirror.py): the batches equal the folder's, only those columns'
    bytes come over, a second reader downloads no shard again, and ``verify`` refuses the mirror."""
    import huggingface_hub
    import pyarrow.parquet as pq

    from ben_hub.archive.base import FLAG_COLUMNS as FLAGS
    from ben_hub.card import write_card
    from ben_hub.dataset import PatchDataset
    from ben_hub.errors import RepoError
    from ben_hub.hub import PushConfig, push
    from ben_hub.mirror import MARK, holes_kept
    from ben_hub.ranges import spans_beyond
    from ben_hub.remote import TAIL_BYTES
    from ben_hub.verify import verify

    push(learnable, PushConfig("someone/learn", endpoint=hub.url, backoff_s=0), progress=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)  # as HF_ENDPOINT sets them at import
    template = huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE.replace("https://huggingface.co", hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setenv("BEN_HUB_CACHE", str(tmp_path / "cache"))
    config = LoaderConfig(config="resampled", batch_size=50)  # RGB and the 43 labels
    sent = hub.sent
    remote = SplitReader("someone/learn", "validation", config)
    local = SplitReader(learnable, "validation", config)
    for (xa, ya), (xb, yb) in zip(remote.batches(1, True, 3), local.batches(1, True, 3), strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    shards = json.loads((learnable / "manifest.json").read_text())["shards"]
    shards = [s for s in shards if s["cell"].endswith("-validation")]
    assert sorted(p.relative_to(remote.root).as_posix() for p in remote.root.rglob("*.parquet")) == sorted(
        s["path"] for s in shards
    )
    kept = sorted(json.loads((remote.root / MARK).read_text())["columns"])
    assert kept == sorted(["B02", "B03", "B04", "patch_id", "labels", "labels_19", *FLAGS])
    needed = 0  # each shard's tail, and its kept columns' chunks before the tail
    for shard in shards:
        size = shard["bytes"]
        tail = min(size, TAIL_BYTES)
        needed += tail + sum(e - s for s, e in spans_beyond(pq.read_metadata(learnable / shard["path"]), kept, size,
                                                             b"0" * tail))  # fmt: skip
    assert needed < 0.7 * sum(s["bytes"] for s in shards)  # RGB: about half of an S2-only shard, a quarter with S1
    assert hub.sent - sent < needed + 100_000  # + the listing and the small files
    assert all(holes_kept(remote.root / s["path"]) for s in shards)  # the other bands take no disk here
    assert json.loads((remote.root / MARK).read_text())["repo"] == "someone/learn"
    sent = hub.sent
    ds = PatchDataset("someone/learn", "validation", config)
    assert len(ds) == local.rows and hub.sent - sent < 100_000  # the commit, the listing: no shard again
    with pytest.raises(RepoError, match=r"is a column mirror of someone/learn .*`ben-hub verify someone/learn`"):
        verify(remote.root)
    with pytest.raises(RepoError, match=r"is a column mirror of someone/learn .*not a build: push the build"):
        push(remote.root, PushConfig("someone/copy", endpoint=hub.url, backoff_s=0), progress=False)
    with pytest.raises(RepoError, match=r"not a build: render the card of the build it came from"):
        write_card(remote.root)
    assert "someone/copy" not in hub.repos


def test_a_split_too_large_for_the_device_is_refused_before_allocating(
    learnable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ben_hub import loader
    from ben_hub.errors import DeviceMemoryError

    reader = SplitReader(learnable, "train", LoaderConfig())
    needed = reader.rows * (3 * 120 * 120 * 2 + 43)  # uint16 RGB and uint8 targets
    monkeypatch.setattr(loader, "free_memory", lambda device: needed - 1)
    with pytest.raises(DeviceMemoryError, match=r"resampled/train split \(B04, B03, B02\) needs .* without --device"):
        DeviceCache(reader, "cpu")
    monkeypatch.setattr(loader, "free_memory", lambda device: needed)
    assert len(DeviceCache(reader, "cpu").y) == reader.rows


def run_train(repo: Path, out: Path, epochs: int) -> dict:
    cmd = [*ACCELERATE, str(ROOT / "harness" / "train.py"), "--repo", str(repo), "--out", str(out),
           "--epochs", str(epochs), "--lr", "0.05", "--momentum", "0.9", "--batch-size", "32"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return json.loads((out / "shortcnn-resampled-seed0" / "run.json").read_text())


def best_constant_micro_f1(reader: SplitReader) -> float:
    Y = np.concatenate([y for _, y in reader.batches()])
    order = np.argsort(-Y.mean(0))
    best = 0.0
    for k in range(1, Y.shape[1] + 1):
        P = np.zeros_like(Y)
        P[:, order[:k]] = 1
        tp, fp, fn = (P * Y).sum(), (P * (1 - Y)).sum(), ((1 - P) * Y).sum()
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return float(best)


def test_training_learns_resumes_and_feeds_the_leaderboard(
    learnable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = run_train(learnable, tmp_path / "full", epochs=6)
    constant = best_constant_micro_f1(SplitReader(learnable, "test"))
    assert full["test"]["micro_f1"] > constant + 0.05, (full["test"], constant)
    assert full["parameters"] == 2_523_403 and full["weights_origin"] == "random" and len(full["history"]) == 6
    assert full["cudnn"] == {"benchmark": True, "deterministic": False} and full["config"]["eval_batch"] == 32
    assert full["loader_threads"] == max(1, min(8, os.cpu_count() or 1)) and full["fused_batches"] is False
    assert json.loads((tmp_path / "full" / "shortcnn-resampled-seed0" / "config.json").read_text())["seed"] == 0
    import hashlib

    manifest = hashlib.sha256((learnable / "manifest.json").read_bytes()).hexdigest()
    spatial = json.loads((learnable / "stats.json").read_text())["spatial"]
    assert spatial is not None and spatial["touching"]["resampled"]["test"] >= 0  # the build's leakage, recorded
    assert full["dataset"] == {"repo": str(learnable), "hub_commit": None, "manifest_sha256": manifest,
                               "spatial": spatial}  # fmt: skip
    moments = json.loads((learnable / "stats.json").read_text())["band_stats"]["resampled"]
    rgb = ("B04", "B03", "B02")
    assert full["inputs"] == {"bands": list(rgb), "size": 120, "labels": "labels", "threshold": 0.5,
                              "mean": [moments[b]["mean"] for b in rgb], "std": [moments[b]["std"] for b in rgb],
                              "classes": list(LABELS_43)}  # fmt: skip
    card = leaderboard.model_card(full, "me/balanced-bigearthnet")
    assert f"| `B03` | {moments['B03']['mean']:.4f} | {moments['B03']['std']:.4f} |" in card
    assert "float32 `(batch, 3, 120, 120)`" in card and "\n42. Sea and ocean\n" in card
    code = card.split("```python\n")[1].split("```")[0]  # the card's loading code, run in the run's folder
    namespace: dict[str, object] = {}
    monkeypatch.chdir(tmp_path / "full" / "shortcnn-resampled-seed0")
    exec(code, namespace)
    monkeypatch.undo()
    loaded = namespace["model"]
    assert isinstance(loaded, torch.nn.Module) and not loaded.training
    assert type(loaded) is type(build_model("shortcnn", 3, 43).model)

    began = time.time()
    stopped = run_train(learnable, tmp_path / "resumed", epochs=3)  # as if killed after epoch 3
    assert len(stopped["history"]) == 3
    run_dir = tmp_path / "resumed" / "shortcnn-resampled-seed0"  # killed between the checkpoint swap's renames:
    (run_dir / "checkpoint").rename(run_dir / "checkpoint.tmp")  # the new one not yet in place
    resumed = run_train(learnable, tmp_path / "resumed", epochs=6)
    assert resumed["history"] == full["history"] and resumed["test"] == full["test"]
    assert len(resumed["epoch_seconds"]) == 6 and all(t > 0 for t in resumed["epoch_seconds"])  # both launches'
    first, second = resumed["launch_seconds"]  # each launch from its process's start: imports, epochs, test
    epochs = resumed["epoch_seconds"]
    assert first > sum(epochs[:3]) and second > sum(epochs[3:]) and first + second < time.time() - began
    assert resumed["device_hours"] == pytest.approx((first + second) / 3600)

    classes = full["test_per_class"]  # each class's test numbers, beside its training and test positives
    counts = json.loads((learnable / "stats.json").read_text())["configs"]["resampled"]
    assert classes["classes"] == list(LABELS_43) and classes["train_positives"] == counts["train"]["labels"]["labels"]
    assert classes["support"] == counts["test"]["labels"]["labels"] and sum(classes["predicted"]) > 0
    assert float(np.mean(classes["f1"])) == pytest.approx(full["test"]["macro_f1"], abs=1e-12)
    assert resumed["test_per_class"] == classes
    shared = sum(s["rows"] for s in json.loads((learnable / "manifest.json").read_text())["shards"]
                 if s["cell"] == "test-test")  # fmt: skip
    assert full["test_shared"]["patches"] == shared > 0 and full["test_shared"]["cell"] == "test-test"
    assert set(full["test_shared"]["metrics"]) == set(full["test"]) and resumed["test_shared"] == full["test_shared"]
    assert all(epoch["shared_val_loss"] > 0 for epoch in full["history"])  # resumed: the same history, above

    rows = leaderboard.write_outputs(tmp_path / "full", tmp_path / "board")
    assert rows[0]["model"] == "shortcnn" and rows[0]["micro_f1"]["mean"] == pytest.approx(full["test"]["micro_f1"])
    assert (tmp_path / "board" / "losses.png").exists() and (tmp_path / "board" / "per_class_f1.png").exists()
    assert sum(rows[0]["by_frequency"]["classes"]) == sum(1 for n in classes["support"] if n > 0)


def test_a_checkpoint_swap_cut_short_is_finished_with_the_newest_complete_one(tmp_path: Path) -> None:
    from harness.train import recover_checkpoint

    for name, epochs in (("checkpoint.old", 2), ("checkpoint.tmp", 3)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text(json.dumps({"epochs": [{}] * epochs}))
    recover_checkpoint(tmp_path)
    assert len(json.loads((tmp_path / "checkpoint" / "history.json").read_text())["epochs"]) == 3
    (tmp_path / "checkpoint").rename(tmp_path / "newest")
    (tmp_path / "checkpoint.tmp").mkdir()  # killed while the new one was being written: the old one stands
    recover_checkpoint(tmp_path)
    assert len(json.loads((tmp_path / "checkpoint" / "history.json").read_text())["epochs"]) == 2
    recover_checkpoint(tmp_path)  # a checkpoint in place is left as it is
    assert (tmp_path / "checkpoint.tmp").is_dir() and (tmp_path / "newest").is_dir()


def test_seeds_in_one_launch_give_their_own_results_and_a_failure_does_not_stop_the_rest(
    learnable: Path, tmp_path: Path
) -> None:
    """``--seed 0 1 2`` in one process, the data loaded once: seeds 0 and 2 end as in launches of their own,
    seed 1 (a broken checkpoint) fails with its name, and the launch exits 2 after running seed 2."""
    args = ["--repo", str(learnable), "--epochs", "2", "--lr", "0.05", "--batch-size", "32", "--max-batches", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    train_py = str(ROOT / "harness" / "train.py")
    alone = {}
    for seed in (0, 2):
        out = tmp_path / f"alone{seed}"
        subprocess.run([*ACCELERATE, train_py, *args, "--out", str(out), "--seed", str(seed)], check=True,
                       capture_output=True, cwd=ROOT, env=env)  # fmt: skip
        alone[seed] = json.loads((out / f"shortcnn-resampled-seed{seed}" / "run.json").read_text())
    broken = tmp_path / "together" / "shortcnn-resampled-seed1" / "checkpoint"
    broken.mkdir(parents=True)
    (broken / "history.json").write_text("{not json")
    began = time.time()
    done = subprocess.run([*ACCELERATE, train_py, *args, "--out", str(tmp_path / "together"), "--seed", "0", "1", "2"],
                          capture_output=True, text=True, cwd=ROOT, env=env)  # fmt: skip
    wall = time.time() - began
    assert done.returncode != 0 and "1 of 3 runs failed: shortcnn-resampled-seed1: JSONDecodeError" in done.stderr
    together = {s: json.loads((tmp_path / "together" / f"shortcnn-resampled-seed{s}" / "run.json").read_text())
                for s in (0, 2)}  # fmt: skip
    for seed in (0, 2):
        assert together[seed]["history"] == alone[seed]["history"] and together[seed]["test"] == alone[seed]["test"]
        assert together[seed]["seed"] == seed and together[seed]["best_epoch"] == alone[seed]["best_epoch"]
    assert not (tmp_path / "together" / "shortcnn-resampled-seed1" / "run.json").exists()
    first, last = together[0]["launch_seconds"][0], together[2]["launch_seconds"][0]
    assert first + last < wall  # each run's own share of the one launch, the imports and loading in the first's
    assert last < alone[2]["launch_seconds"][0]  # no start-up, imports or loading of its own


def test_leaderboard_mean_std_from_stored_runs(tmp_path: Path, built_v1: Path) -> None:
    import shutil

    for seed, f1 in enumerate((0.5, 0.6, 0.7)):
        stored_run(tmp_path / "runs", seed, f1, device_hours=0.25, dataset={"manifest_sha256": "a" * 64})
    rows = leaderboard.write_outputs(tmp_path / "runs", tmp_path / "board")
    assert rows[0]["micro_f1"]["mean"] == pytest.approx(0.6) and rows[0]["micro_f1"]["std"] == pytest.approx(0.1)
    board = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "| ShortCNN | original | 3 | 0.600 ± 0.100 |" in board
    assert "all seeds): ShortCNN original 0.75; total 0.75." in board and rows[0]["device_hours"] == 0.75
    assert (tmp_path / "board" / "leaderboard.csv").read_text().splitlines()[1].split(",")[19:21] == ["0.7500", ""]
    assert "Warning" not in board and rows[0]["data"] == ["a" * 64]
    assert "Test patches beside" not in board  # runs that recorded no spatial leakage: nothing said
    original, resampled = (
        {**rows[0], "test_touching": 0.085},
        {**rows[0], "config": "resampled", "test_touching": 0.999},
    )
    said = "Test patches beside a patch of another split (the build's stats.json): original 8.5%, resampled 99.9%."
    assert f"{said} These differ: part of a gap" in leaderboard.markdown([original, resampled])
    alike = leaderboard.markdown([{**original, "test_touching": 0.998}, {**resampled, "test_touching": 0.997}])
    assert "original 99.8%, resampled 99.7%." in alike and "These differ" not in alike  # v1: both patch-level
    short = leaderboard.markdown([{**rows[0], "device_hours": 11 / 3600}])  # a quick check's runs
    assert "ShortCNN original 0.0031 (11 s); total 0.0031 (11 s)." in short
    mixed = leaderboard.markdown([{**rows[0], "data": ["a" * 64, "b" * 64]}])
    assert "Warning: ShortCNN original mixes runs on 2 different builds (manifest.json sha256 aaaaaaaaaaaa" in mixed
    assert "| InceptionV3 | resampled | 1 | 0.405 | 0.182 | 0.207 | 0.189 | 0.712 | 0.506 | 0.591 | 0.537 |" in board
    repo = Path(shutil.copytree(built_v1, tmp_path / "repo"))
    leaderboard.publish_to_repo(tmp_path / "board", repo)
    assert "| ShortCNN | original | 3 | 0.600 ± 0.100 |" in (repo / "README.md").read_text()
    assert "| ShortCNN | resampled | 10 | 0.377 | 0.251 |" in (repo / "README.md").read_text()  # the paper's
    single = leaderboard.markdown([{**rows[0], "seeds": [0]}])
    assert "| ShortCNN | original | 1 | 0.600 | 0.600 |" in single  # one seed: no ± 0.000
    from ben_hub.verify import verify

    verify(repo)
    card = leaderboard.model_card(
        json.loads((tmp_path / "runs" / "shortcnn-original-seed0" / "run.json").read_text()), "me/balanced-bigearthnet"
    )
    assert "model-index:" in card and "micro_f1" in card
    assert "## Inputs" not in card  # a run.json from before inputs were recorded: no section rather than a wrong one
    from click.testing import CliRunner

    from ben_hub.cli import main

    result = CliRunner().invoke(main, ["leaderboard", str(tmp_path / "runs"), "--push-models", "me", "--dry-run"])
    assert result.exit_code == 0 and "would push model me/shortcnn-original-seed2" in result.output
    assert "unfinished" not in result.output
    (stored_run(tmp_path / "runs", 3, 0.9) / "run.json").unlink()  # a run still training, or killed
    result = CliRunner().invoke(main, ["leaderboard", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "| ShortCNN | original | 3 | 0.600 ± 0.100 |" in result.output
    assert "1 unfinished run(s) not in the table (no run.json): shortcnn-original-seed3" in result.output


def test_leaderboard_compares_the_configurations_with_welchs_t_test(tmp_path: Path) -> None:
    """Per model with both configurations, each metric's difference of the means and Welch's two-sided p-value over
    the seeds, as scipy computes it (the incomplete beta function checked against scipy's on random arguments);
    one seed on a side gives the difference alone."""
    from scipy.special import betainc
    from scipy.stats import ttest_ind_from_stats

    rng = np.random.default_rng(9)
    for a, b, x in zip(rng.uniform(0.05, 60, 500), rng.uniform(0.05, 60, 500), rng.random(500), strict=True):
        assert leaderboard.incomplete_beta(a, b, x) == pytest.approx(betainc(a, b, x), rel=1e-9, abs=1e-14)
    for values in rng.uniform(0.0001, 1, (200, 4)):
        n_a, n_b = (int(n) for n in rng.integers(2, 12, 2))
        expected = ttest_ind_from_stats(values[0], values[1], n_a, values[2], values[3], n_b, equal_var=False).pvalue
        assert leaderboard.welch_p(values[0], values[1], n_a, values[2], values[3], n_b) == pytest.approx(expected)
    assert leaderboard.welch_p(0.5, 0.1, 1, 0.4, 0.1, 10) is None and leaderboard.welch_p(0.5, 0, 3, 0.4, 0, 3) is None
    assert leaderboard.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])  # by hand
    assert (
        leaderboard.holm([0.5, 0.9]) == [1.0, 1.0]
        and leaderboard.holm([0.02, 0.9]) == [0.04, 0.9]
        and leaderboard.holm([]) == []
    )
    runs = tmp_path / "runs"
    for seed, (low, high) in enumerate(((0.5, 0.7), (0.6, 0.8), (0.7, 0.9))):
        stored_run(runs, seed, low)
        stored_run(runs, seed, high, config="resampled")
    stored_run(runs, 0, 0.1, model="inception_v3")
    stored_run(runs, 0, 0.3, model="inception_v3", config="resampled")
    text = leaderboard.markdown(leaderboard.table(leaderboard.collect(runs)))
    p = ttest_ind_from_stats(0.8, 0.1, 3, 0.6, 0.1, 3, equal_var=False).pvalue
    assert "resampled - original, difference of the means (p: Welch's t-test over the seeds" in text
    assert f"| ShortCNN | 3 / 3 | +0.200 (p {p:.2g}) | " in text and "| InceptionV3 | 1 / 1 | +0.200 | +0.200 |" in text
    assert "testing 8 metrics at once" not in text  # p 0.07: nothing to adjust
    tight = tmp_path / "tight"  # three seeds a side 0.02 apart, 0.05 between the sides: each p about 0.03
    for seed, (low, high) in enumerate(((0.50, 0.55), (0.52, 0.57), (0.54, 0.59))):
        stored_run(tight, seed, low)
        stored_run(tight, seed, high, config="resampled")
    text = leaderboard.markdown(leaderboard.table(leaderboard.collect(tight)))
    p = ttest_ind_from_stats(0.57, 0.02, 3, 0.52, 0.02, 3, equal_var=False).pvalue
    assert p < 0.05 < 8 * p  # below 0.05 alone, not after adjusting for 8 tests
    said = f"ShortCNN: testing 8 metrics at once, the smallest p (macro P, {p:.2g}) is {8 * p:.2g} after Holm's"
    assert f"{said} adjustment; 0 of 8 stay below 0.05." in text


def shared_of(score: float, patches: int = 25) -> dict[str, Any]:
    return {"cell": "test-test", "patches": patches, "metrics": dict.fromkeys(leaderboard.METRICS, score)}


def test_leaderboard_compares_the_configurations_on_the_test_patches_they_share(tmp_path: Path) -> None:
    """Runs that scored the test patches both configurations hold out get Table 1 again over those patches, with
    the difference and Welch's p there; a model whose configurations trained on different builds is not compared;
    runs from before it (no ``test_shared``) or on a build without such patches leave the section out."""
    from scipy.stats import ttest_ind_from_stats

    runs, build = tmp_path / "runs", {"manifest_sha256": "a" * 64}
    for seed, (low, high) in enumerate(((0.5, 0.4), (0.6, 0.5), (0.7, 0.6))):  # own test: resampled ahead
        stored_run(runs, seed, 0.5, test_shared=shared_of(low), dataset=build)  # on the shared patches: behind
        stored_run(runs, seed, 0.7, config="resampled", test_shared=shared_of(high), dataset=build)
    stored_run(runs, 0, 0.1, model="inception_v3", test_shared=shared_of(0.2), dataset=build)
    stored_run(runs, 0, 0.3, model="inception_v3", config="resampled", test_shared=shared_of(0.2, 30),
               dataset={"manifest_sha256": "b" * 64})  # fmt: skip
    rows = leaderboard.write_outputs(runs, tmp_path / "board")
    shortcnn = rows[2]
    assert shortcnn["shared_test"]["patches"] == [25] and shortcnn["shared_test"]["micro_f1"]["mean"] == pytest.approx(
        0.6
    )
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "On the test patches both configurations hold out (the build's `test-test` cell, 25, 30 patches;" in text
    assert (
        "| ShortCNN | original | 3 | 0.600 ± 0.100 |" in text and "| ShortCNN | resampled | 3 | 0.500 ± 0.100 |" in text
    )
    p = ttest_ind_from_stats(0.5, 0.1, 3, 0.6, 0.1, 3, equal_var=False).pvalue
    there = text.split("resampled - original there (p as above):")[1]
    assert f"| ShortCNN | 3 / 3 | -0.100 (p {p:.2g}) | " in there and "InceptionV3 |" not in there.split("\n\n")[1]
    assert "Not compared there: InceptionV3 (its configurations trained on different builds)." in text
    assert "| ShortCNN | 3 / 3 | +0.200 |" in text.split("On the test patches")[0]  # own test splits: no spread
    header, line = (tmp_path / "board" / "leaderboard.csv").read_text().splitlines()[:2]
    assert header.split(",")[20:23] == ["shared_patches", "shared_macro_precision_mean", "shared_macro_precision_std"]
    assert line.split(",")[20:23] == ["25", "0.200000", "0.000000"]  # inception_v3 original, one seed
    stored_run(runs, 3, 0.5)  # a seed from before the shared patches were scored: the row has none
    without = leaderboard.table(leaderboard.collect(runs))
    assert "shared_test" not in without[2] and "shared_test" in without[3]
    card = leaderboard.model_card(json.loads((runs / "shortcnn-resampled-seed1" / "run.json").read_text()), "me/b")
    assert "The 25 test patches of the dataset's `test-test` cell" in card and "| 0.500 | 0.500 |" in card
    empty = tmp_path / "empty"  # a build without shared test patches (a --subset): no section
    stored_run(empty, 0, 0.5, test_shared={"cell": "test-test", "patches": 0, "metrics": None})
    assert "On the test patches" not in leaderboard.markdown(leaderboard.table(leaderboard.collect(empty)))
    lone = json.loads((empty / "shortcnn-original-seed0" / "run.json").read_text())
    assert "both configurations" not in leaderboard.model_card(lone, "me/b")


def history_of(val: list[float], train: list[float], shared: float | None = None) -> dict[str, Any]:
    epochs = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (v, t) in enumerate(zip(val, train, strict=True))]
    if shared is not None:  # the shared validation patches' loss, a little above the split's
        epochs = [{**epoch, "shared_val_loss": epoch["val_loss"] + shared} for epoch in epochs]
    return {"history": epochs, "best_epoch": min(range(len(val)), key=val.__getitem__)}


def test_leaderboard_measures_overfitting_from_the_stored_losses(tmp_path: Path) -> None:
    """Fig. 5 in numbers from run.json's history: best epoch (1-based), its validation loss, the rise above it by the
    last epoch, validation minus training loss at the best epoch, and the seeds still improving at their last."""
    runs = tmp_path / "runs"
    stored_run(runs, 0, 0.5, **history_of([0.6, 0.4, 0.5, 0.6], [0.5, 0.3, 0.2, 0.1]))  # best 2nd, +50% by the end
    stored_run(runs, 1, 0.5, **history_of([0.6, 0.5, 0.45, 0.5], [0.5, 0.4, 0.35, 0.3]))  # best 3rd, +11.1%
    stored_run(runs, 0, 0.6, config="resampled", **history_of([0.5, 0.4, 0.3, 0.2], [0.45, 0.35, 0.3, 0.25], 0.05))
    rows = leaderboard.table(leaderboard.collect(runs))
    fit = rows[0]["overfitting"]
    assert fit["epochs"] == 4 and fit["best_epoch"]["mean"] == 2.5 and fit["still_falling"] == 0
    assert fit["lowest_val"]["mean"] == pytest.approx(0.425) and fit["gap"]["mean"] == pytest.approx(0.1)
    assert fit["rise"]["mean"] == pytest.approx((0.5 + 0.5 / 0.45 - 1) / 2)
    assert rows[1]["overfitting"]["rise"] == {"mean": 0.0, "std": 0.0} and rows[1]["overfitting"]["still_falling"] == 1
    text = leaderboard.markdown(rows)
    assert "| original | 2 | 4 | 2.5 ± 0.7 | 0.4250 ± 0.0354 | +30.6% ± 27.5% | 0.1000 ± 0.0000 | – | 0 of 2 |" in text
    assert "| ShortCNN | resampled | 1 | 4 | 4 | 0.2000 | +0.0% | -0.0500 | 0.2500 | 1 of 1 |" in text
    assert rows[0]["overfitting"]["shared_val"] is None  # runs from before it was recorded
    recorded = leaderboard.collect(runs)
    leaderboard.plot_losses(recorded, tmp_path / "losses.png")  # the dashed line where recorded
    for run in recorded:  # the same runs without the shared loss: a picture without that line
        run["history"] = [{k: v for k, v in epoch.items() if k != "shared_val_loss"} for epoch in run["history"]]
    leaderboard.plot_losses(recorded, tmp_path / "without.png")
    assert (tmp_path / "losses.png").read_bytes() != (tmp_path / "without.png").read_bytes()
    old = [{k: v for k, v in row.items() if k != "overfitting"} for row in rows]  # a leaderboard.json from before
    assert "Overfitting" not in leaderboard.markdown(old)


def test_leaderboard_tests_the_paper_claim_that_resampled_overfits_less(tmp_path: Path) -> None:
    """Per model with both configurations, the resampled - original difference of each overfitting number that means
    the same in both (rise, gap, shared validation loss, best epoch) with Welch's p as scipy computes it; the shared
    loss only where both trained on one build; the numbers also in leaderboard.csv."""
    from scipy.stats import ttest_ind_from_stats

    runs, build = tmp_path / "runs", {"manifest_sha256": "a" * 64}
    original = ([0.6, 0.4, 0.5, 0.6], [0.6, 0.4, 0.48, 0.56], [0.6, 0.45, 0.5, 0.54])  # rises 50%, 40%, 20%
    resampled = ([0.5, 0.4, 0.3, 0.32], [0.5, 0.35, 0.3, 0.3], [0.5, 0.4, 0.35, 0.35])  # rises 6.7%, 0%, 0%
    for seed, val in enumerate(original):
        stored_run(runs, seed, 0.5, dataset=build, **history_of(val, [v - 0.1 * seed for v in val], 0.05 + 0.01 * seed))
    for seed, val in enumerate(resampled):
        stored_run(runs, seed, 0.6, config="resampled", dataset=build, **history_of(val, [v - 0.05 for v in val], 0.02))
    for config, digest in (("original", "b"), ("resampled", "c")):  # two builds: their shared patches differ
        stored_run(runs, 0, 0.5, model="inception_v3", config=config, dataset={"manifest_sha256": digest * 64},
                   **history_of([0.5, 0.4, 0.45], [0.4, 0.3, 0.2], 0.01))  # fmt: skip
    rows = leaderboard.write_outputs(runs, tmp_path / "board")
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    fits = {row["model"] + row["config"]: row["overfitting"] for row in rows}
    o, r = fits["shortcnnoriginal"]["rise"], fits["shortcnnresampled"]["rise"]
    assert o["mean"] == pytest.approx((0.5 + 0.4 + 0.2) / 3) and r["mean"] == pytest.approx((0.32 / 0.3 - 1) / 3)
    p = ttest_ind_from_stats(r["mean"], r["std"], 3, o["mean"], o["std"], 3, equal_var=False).pvalue
    gap_p = ttest_ind_from_stats(0.05, 0.0, 3, 0.1, 0.1, 3, equal_var=False).pvalue  # gaps 0, 0.1, 0.2 / 0.05 each
    section = text.split("resampled - original, overfitting (p as above; the rise's difference in percentage points)")[
        1
    ]
    assert "| model | seeds | risen by the last epoch | val - train at best | shared val loss | best epoch |" in section
    assert f"| ShortCNN | 3 / 3 | {r['mean'] - o['mean']:+.1%} (p {p:.2g}) | -0.0500 (p {gap_p:.2g}) | " in section
    shared_o = np.mean([low + 0.05 + 0.01 * seed for seed, low in enumerate((0.4, 0.4, 0.45))])
    shared_r = np.mean([0.3 + 0.02, 0.3 + 0.02, 0.35 + 0.02])
    assert f" | {shared_r - shared_o:+.4f} (p " in section.split("| ShortCNN |")[1].split("\n")[0]
    assert "| InceptionV3 | 1 / 1 | +0.0% | +0.0000 | – | +0.0 |" in section  # one seed: no p; builds differ: no shared
    header, *lines = (tmp_path / "board" / "leaderboard.csv").read_text().splitlines()
    columns = header.split(",")
    assert columns[-12:] == ["fit_epochs", "fit_best_epoch_mean", "fit_best_epoch_std", "fit_lowest_val_mean",
                             "fit_lowest_val_std", "fit_rise_mean", "fit_rise_std", "fit_gap_mean", "fit_gap_std",
                             "fit_shared_val_mean", "fit_shared_val_std", "fit_still_falling"]  # fmt: skip
    shortcnn = dict(
        zip(columns, next(line for line in lines if line.startswith("shortcnn,original")).split(","), strict=True)
    )
    assert float(shortcnn["fit_rise_mean"]) == pytest.approx(o["mean"], abs=1e-6) and shortcnn["fit_epochs"] == "4"
    stored_run(tmp_path / "lone", 0, 0.5)  # one configuration: nothing to compare
    assert "resampled - original, overfitting" not in leaderboard.markdown(
        leaderboard.table(leaderboard.collect(tmp_path / "lone"))
    )


def test_leaderboard_refuses_what_it_cannot_average_and_flags_mixed_settings(tmp_path: Path) -> None:
    """No runs, an unreadable or unfinished run.json and a seed counted twice are errors naming the files, from
    the library and the CLI (exit 1, no traceback); runs of one row trained differently are averaged with a warning;
    a run lacking its weights is refused before anything is pushed, with --dry-run too."""
    import shutil

    from click.testing import CliRunner

    from ben_hub.cli import main
    from ben_hub.errors import RunError

    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(RunError, match=r"no finished runs in .*runs \(no \*/run.json\): pass the folder"):
        leaderboard.collect(runs)
    result = CliRunner().invoke(main, ["leaderboard", str(runs)])
    assert result.exit_code == 1 and "no finished runs" in result.output and "Traceback" not in result.output
    assert not (runs / "leaderboard").exists()  # nothing written that looks like a table
    first = stored_run(runs, 0, 0.5)
    second = stored_run(runs, 1, 0.7)
    (second / "run.json").write_text('{"model": "shortcnn", "dataset_')  # cut short
    with pytest.raises(RunError, match=r"shortcnn-original-seed1/run.json cannot be read as a run's result .*delete"):
        leaderboard.collect(runs)
    run = json.loads((first / "run.json").read_text())
    (second / "run.json").write_text(json.dumps({**run, "seed": 1, "test": {"micro_f1": 0.7}}))
    with pytest.raises(RunError, match=r"seed1/run.json is not a finished run's result .*\(no test.macro_precision"):
        leaderboard.collect(runs)
    (second / "run.json").write_text(json.dumps(run))  # a copy of seed 0's result
    with pytest.raises(RunError, match=r"seed0/run.json and .*seed1/run.json are both seed 0 of shortcnn on original"):
        leaderboard.collect(runs)
    shutil.rmtree(second)
    stored_run(runs, 2, 0.7, epochs=5)
    board = leaderboard.markdown(leaderboard.table(leaderboard.collect(runs)))
    assert "Warning: ShortCNN original averages runs with different settings (epochs 5, 100)." in board
    (runs / "shortcnn-original-seed2" / "best.pt").unlink()
    with pytest.raises(RunError, match=r"1 file\(s\) of the runs to publish are missing: .*seed2/best.pt"):
        leaderboard.push_models(runs, "me", "me/balanced-bigearthnet", dry_run=True)


def per_class_of(f1: list[float], predicted: list[int]) -> dict[str, list[Any]]:
    """A ``test_per_class`` record of 6 classes: c4 has no test positive, c3 one training positive."""
    return {"classes": [f"c{i}" for i in range(6)], "train_positives": [100, 5, 50, 1, 0, 20],
            "support": [10, 2, 5, 1, 0, 3], "predicted": predicted, "precision": [0.5] * 6, "recall": [0.25] * 6,
            "f1": f1, "f2": [0.1] * 6}  # fmt: skip


def test_leaderboard_answers_the_rare_label_question_per_class(tmp_path: Path, built_v1: Path) -> None:
    """Runs that recorded their classes give macro F1 per frequency third (the classes with a test positive ranked
    by training positives: c3, c1 | c5, c2 | c0), the classes never predicted, a per-class table, CSV, JSON and
    plot, in the card too; runs from before it are left out of those, and a later table without them leaves no
    stale per-class file behind, in the output folder or the repository."""
    import shutil

    from ben_hub.verify import verify

    runs = tmp_path / "runs"
    stored_run(runs, 0, 0.5)  # from before per-class numbers were recorded
    records = (per_class_of([0.9, 0.2, 0.6, 0.0, 0.0, 0.4], [10, 1, 5, 0, 3, 2]),
               per_class_of([0.7, 0.4, 0.8, 0.0, 0.0, 0.6], [10, 2, 5, 0, 0, 2]))  # fmt: skip
    for seed, record in enumerate(records):
        stored_run(runs, seed, 0.6, config="resampled", test_per_class=record)
    board = tmp_path / "board"
    rows = leaderboard.write_outputs(runs, board)
    assert "by_frequency" not in rows[0] and rows[1]["by_frequency"]["classes"] == [2, 2, 1]
    text = (board / "leaderboard.md").read_text()
    assert "| model | config | rarest third | middle third | most frequent third | never predicted |" in text
    assert (
        "| ShortCNN | resampled | 0.150 ± 0.071 (2) | 0.600 ± 0.141 (2) | 0.800 ± 0.141 (1) | 1.0 ± 0.0 of 5 |" in text
    )
    assert (
        "| ShortCNN | original |" not in text.split("rarest third")[1].split("Overfitting")[0]
    )  # no numbers to rank by: no row
    one_seed = leaderboard.markdown([{**rows[1], "seeds": [0]}])
    assert "| ShortCNN | resampled | 0.150 (2) | 0.600 (2) | 0.800 (1) | 1 of 5 |" in one_seed
    two = leaderboard.by_frequency([{"test_per_class": {**records[0], "support": [0, 2, 0, 1, 0, 0]}}])
    assert two is not None and two["classes"] == [1, 1, 0] and two["never_predicted"]["mean"] == 1
    assert "| ShortCNN | resampled | 0.000 (1) | 0.200 (1) | – | 1 of 2 |" in leaderboard.markdown(
        [{**rows[1], "seeds": [0], "by_frequency": two}]
    )
    table = (board / "per_class.md").read_text().splitlines()
    assert table[2:4] == ["| class | train resampled | test resampled | ShortCNN resampled |", "|---|---:|---:|---:|"]
    assert [line.split(" | ")[0] for line in table[4:]] == ["| c0", "| c2", "| c5", "| c1", "| c3", "| c4"]
    assert table[4] == "| c0 | 100 | 10 | 0.800 ± 0.141 |"
    lines = (board / "per_class.csv").read_text().splitlines()
    assert len(lines) == 7 and lines[0].startswith("model,config,seeds,index,class,train_positives,test_positives,")
    assert lines[5].startswith("shortcnn,resampled,2,4,c4,0,0,1.500000,2.121320,0.500000,0.000000,")
    stored = json.loads((board / "per_class.json").read_text())
    assert stored[1]["f1"] == {"mean": pytest.approx(0.3), "std": pytest.approx(0.141421356)}
    assert (board / "per_class_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = leaderboard.model_card(json.loads((runs / "shortcnn-resampled-seed0" / "run.json").read_text()), "me/d")
    assert "## Test scores per class" in card and "| c3 | 1 | 1 | 0 | 0.500 | 0.250 | 0.000 |" in card

    repo = Path(shutil.copytree(built_v1, tmp_path / "repo"))
    leaderboard.publish_to_repo(board, repo)
    readme = (repo / "README.md").read_text()
    assert "![Test F1 per class against its positives in the training split](per_class_f1.png)" in readme
    assert "| ShortCNN | resampled | 0.150 ± 0.071 (2) |" in readme and (repo / "per_class_f1.png").is_file()
    verify(repo)
    shutil.rmtree(runs / "shortcnn-resampled-seed0")
    shutil.rmtree(runs / "shortcnn-resampled-seed1")
    leaderboard.write_outputs(runs, board)
    assert not any((board / name).exists() for name in leaderboard.CLASS_FILES)
    leaderboard.publish_to_repo(board, repo)
    assert not (repo / "per_class_f1.png").exists() and "per_class_f1.png" not in (repo / "README.md").read_text()
    verify(repo)


def test_sweep_plans_the_papers_protocol_and_skips_finished_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.sweep import commands

    plan = commands("repo", str(tmp_path), {"shortcnn": 10, "inception_v3": 1}, ["original", "resampled"], ["--x"],
                    {"inception_v3": "tv_in1k"})  # fmt: skip
    assert len(plan) == 22 and all(c[-1] == "--x" and c[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
                                   for c in plan)  # fmt: skip
    assert [c[c.index("--model") + 1] for c in plan if "--weights" in c] == ["inception_v3"] * 2
    done = tmp_path / "shortcnn-original-seed3"
    done.mkdir()
    (done / "run.json").write_text("{}")
    assert len(commands("repo", str(tmp_path), {"shortcnn": 10}, ["original", "resampled"], [])) == 19
    from harness.sweep import main

    assert main(["--repo", "repo", "--out", str(tmp_path), "--devices", "0", "1", "--dry-run"]) == 0
    models = [line.split("--model ")[1].split()[0] for line in capsys.readouterr().out.splitlines()]
    assert models == ["inception_v3"] * 2 + ["shortcnn"] * 19  # the longest runs first
    assert main(["--repo", "repo", "--out", str(tmp_path), "--dry-run"]) == 0  # one GPU: a launch per model+config
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("--seed ")[1].split(" --")[0] for line in lines] == [
        "0 1 2 4 5 6 7 8 9", "0 1 2 3 4 5 6 7 8 9", "0", "0"]  # fmt: skip
    own = ["--shortcnn-options=--pad-stem 8 --eval-batch-size 1200", "--inception-options", "--fused-sgd --x 2"]
    assert main(["--repo", "repo", "--out", str(tmp_path), "--dry-run", *own, "--", "--device-cache", "--x", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("--device-cache --x 1 --pad-stem 8 --eval-batch-size 1200")  # the model's own last
    assert lines[-1].endswith("--device-cache --x 1 --fused-sgd --x 2") and "--pad-stem" not in lines[-1]


def test_a_negative_seed_count_is_a_sweep_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``--shortcnn-seeds -1`` would plan no run and report success."""
    from harness.sweep import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--repo", "repo", "--shortcnn-seeds", "-1", "--dry-run"])
    assert exit_info.value.code == 2 and "--shortcnn-seeds: -1: give 0 or more seeds" in capsys.readouterr().err


def sweep_with_a_broken_run(learnable: Path, out: Path, monkeypatch: pytest.MonkeyPatch, devices: list[str]) -> None:
    """A real sweep of three tiny ShortCNN runs whose seed 1 has a broken checkpoint: it fails with exit 1, seeds
    0 and 2 finish (one process each), and the leaderboard of those two is written."""
    from harness.sweep import main

    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1" if devices else "2")
    broken = out / "shortcnn-resampled-seed1" / "checkpoint"
    broken.mkdir(parents=True)
    (broken / "history.json").write_text("{not json")
    argv = ["--repo", str(learnable), "--out", str(out), "--shortcnn-seeds", "3", "--inception-seeds", "0",
            "--configs", "resampled", *(["--devices", *devices] if devices else []), "--", "--epochs", "1",
            "--max-batches", "2", "--batch-size", "32"]  # fmt: skip
    assert main(argv) == 1
    for seed in (0, 2):
        run = json.loads((out / f"shortcnn-resampled-seed{seed}" / "run.json").read_text())
        assert run["seed"] == seed and run["processes"] == 1
    assert not (out / "shortcnn-resampled-seed1" / "run.json").exists()
    assert (out / "leaderboard" / "leaderboard.md").exists()


def test_sweep_spreads_runs_over_devices_and_reports_a_failed_one(
    learnable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three runs on two device slots, each logged to its folder; the broken one does not stop the rest."""
    sweep_with_a_broken_run(learnable, tmp_path, monkeypatch, ["0", "1"])
    out, err = capsys.readouterr()
    assert "--num_processes 1" in out and "[device 0] start" in out and "[device 1] start" in out
    assert "failed: shortcnn-resampled-seed1" in err and "sweep.log" in err
    for seed in (0, 2):
        assert (tmp_path / f"shortcnn-resampled-seed{seed}" / "sweep.log").stat().st_size > 0
    assert "JSONDecodeError" in (tmp_path / "shortcnn-resampled-seed1" / "sweep.log").read_text()


def test_sweep_on_one_device_runs_a_configurations_seeds_in_one_launch(
    learnable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The three seeds in one launch; the broken one is named as failed, the other two finish."""
    sweep_with_a_broken_run(learnable, tmp_path, monkeypatch, [])
    out, err = capfd.readouterr()
    assert "--seed 0 1 2 " in out and out.count("accelerate.commands.launch") == 1
    assert "failed: shortcnn-resampled-seed1 (exit" in err and "failed: shortcnn-resampled-seed0" not in err


def test_a_sweep_whose_every_run_failed_names_them_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """No finished run: the leaderboard's error is printed (no traceback), and so is the failed run."""
    from harness import sweep

    monkeypatch.setattr(sweep, "run_in_turn", lambda plan: [(command, "3") for command in plan])
    argv = ["--repo", "repo", "--out", str(tmp_path), "--shortcnn-seeds", "1", "--inception-seeds", "0",
            "--configs", "original"]  # fmt: skip
    assert sweep.main(argv) == 1
    err = capfd.readouterr().err
    assert "no finished runs in" in err and "failed: shortcnn-original-seed0 (exit 3)" in err
    assert "Traceback" not in err


def test_sweep_in_turn_goes_on_after_a_failed_run() -> None:
    from harness.sweep import run_in_turn

    failing, passing = [sys.executable, "-c", "raise SystemExit(3)"], [sys.executable, "-c", "pass"]
    assert run_in_turn([failing, passing, failing]) == [(failing, "3"), (failing, "3")]


@pytest.mark.parametrize("fuse", [False, True], ids=["eager", "fused"])
def test_device_cache_keeps_every_uint16_value_exactly(fuse: bool) -> None:
    """uint16 travels to the device as its int16 bit pattern; values above 32767 must come back unchanged, by
    the eager kernels and by the compiled one (batches of 4 and 2 rows: two shapes)."""
    values = np.array([0, 1, 32767, 32768, 40000, 65535], dtype=np.uint16)

    class Reader:  # what DeviceCache reads from a SplitReader, in chunks of 4 and 2 rows
        config = LoaderConfig(batch_size=4, bands=("B01",))
        n_classes, rows, sample_shape, raw_dtype = 43, 6, (1, 1, 1), np.dtype(np.uint16)
        mean, std = np.zeros(1, dtype=np.float32), np.ones(1, dtype=np.float32)

        def part_rows(self, every: int) -> list[int]:
            return [6]

        def raw_chunks(self, part: tuple[int, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            x, y = values.reshape(6, 1, 1, 1), np.eye(6, 43, dtype=np.uint8)
            yield x[:4], y[:4]
            yield x[4:], y[4:]

    batches = list(DeviceCache(Reader(), "cpu", fuse=fuse).batches())  # type: ignore[arg-type]
    assert [len(x) for x, _ in batches] == [4, 2]
    got = torch.cat([x for x, _ in batches]).flatten().tolist()
    assert got == values.astype(float).tolist()
    assert torch.equal(torch.cat([y for _, y in batches]), torch.eye(6, 43))


def test_a_fused_device_cache_forms_the_same_batches(learnable: Path) -> None:
    """One compiled kernel a batch (the CUDA default) gives the eager kernels' batches bit for bit (inductor's C++
    here), shuffled, the last batch short, and for validation's batch size too; streamed batches likewise."""
    reader = SplitReader(learnable, "train", LoaderConfig(batch_size=64))
    eager, fused = DeviceCache(reader, "cpu"), DeviceCache(reader, "cpu", fuse=True)
    assert not eager.fused and fused.fused and reader.rows % 64
    torch._dynamo.reset()
    for cache_a, cache_b in ((eager, fused), (eager, fused)):  # a second epoch: the compiled kernels reused
        pairs = zip(cache_a.batches(1, True, 3), cache_b.batches(1, True, 3), strict=True)
        assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in pairs)
    eager.batch_size = fused.batch_size = 100
    pairs = zip(eager.batches(), fused.batches(), strict=True)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in pairs)
    raw = SplitReader(learnable, "train", LoaderConfig(batch_size=64, raw=True))
    streamed, streamed_fused = DeviceBatches(raw, "cpu"), DeviceBatches(raw, "cpu", fuse=True)
    assert not streamed.fused and streamed_fused.fused
    pairs = zip(streamed.batches(2, True, 5), streamed_fused.batches(2, True, 5), strict=True)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in pairs)
    torch._dynamo.reset()


def test_push_models_uploads_each_run_with_its_model_index(tmp_path: Path, hub: FakeHub) -> None:
    """Not a dry run: each run becomes a model repository on the (local) Hub, weights by LFS, card last."""
    runs = tmp_path / "runs"
    for seed in (0, 1):
        run_dir = stored_run(runs, seed, 0.5 + seed / 10, config="resampled")
        torch.save(build_model("shortcnn", 3, 43).model.state_dict(), run_dir / "best.pt")
    ids = leaderboard.push_models(runs, "me", "me/balanced-bigearthnet", dry_run=False, endpoint=hub.url)
    assert ids == ["me/shortcnn-resampled-seed0", "me/shortcnn-resampled-seed1"]
    files = hub.files("me/shortcnn-resampled-seed1")
    assert sorted(files) == ["README.md", "best.pt", "config.json", "run.json"]
    assert files["best.pt"] == (runs / "shortcnn-resampled-seed1" / "best.pt").read_bytes() and hub.lfs_puts
    card = yaml.safe_load(files["README.md"].decode().split("---")[1])
    result = card["model-index"][0]["results"][0]
    assert result["dataset"] == {"type": "me/balanced-bigearthnet", "name": "Balanced BigEarthNet",
                                 "config": "resampled", "split": "test"}  # fmt: skip
    assert {m["type"]: m["value"] for m in result["metrics"]}["micro_f1"] == pytest.approx(0.6)
    assert hub.auth_headers == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("mode", ["streamed", "device-cache", "cache-dir"])
def test_two_processes_score_every_test_image_once(learnable: Path, tmp_path: Path, mode: str) -> None:
    """The multi-process path (each process its own row groups, streamed or held, predictions gathered, padded and
    trimmed), run with two CPU processes over gloo: the metrics equal a single-process recount from the saved best
    weights."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port
           str(ROOT / "harness" / "train.py"),
           "--repo", str(learnable), "--out", str(tmp_path), "--epochs", "1", "--batch-size", "32",
           "--lr", "0.05", *{"streamed": [], "device-cache": ["--device-cache"],
                             "cache-dir": ["--cache-dir", str(tmp_path / "decoded")]}[mode]]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = tmp_path / "shortcnn-resampled-seed0" / "checkpoint"
    assert {p.name for p in checkpoint.glob("random_states_*")} == {"random_states_0.pkl", "random_states_1.pkl"}
    run = json.loads((tmp_path / "shortcnn-resampled-seed0" / "run.json").read_text())
    reader = SplitReader(learnable, "test", LoaderConfig(batch_size=64))
    assert run["processes"] == 2 and run["test_images"] == reader.rows  # none lost, none counted twice
    train = SplitReader(learnable, "train", LoaderConfig(batch_size=32))
    steps = [train.steps(0, True, 0, part=(i, 2)) for i in range(2)]
    assert steps[0] != steps[1]  # uneven parts: one process would have a step more and wait in its backward
    if mode == "cache-dir":  # one process decoded the split while the other waited, then both mapped it
        assert len(list((tmp_path / "decoded").glob("*/x.npy"))) == 3 and not list(tmp_path.rglob("*.tmp"))
        train = SplitReader(learnable, "train", LoaderConfig(batch_size=32, cache_dir=str(tmp_path / "decoded")))
    sources = [DeviceCache(train, "cpu", (i, 2)) for i in range(2)] if mode == "device-cache" else [train, train]
    even = [[len(y) for _, y in sources[i].batches(0, True, 0, part=(i, 2), even=True)] for i in range(2)]
    assert len(even[0]) == len(even[1]) and run["train_images"] == sum(map(sum, even))
    assert len(even[0]) == {"device-cache": min(map(len, sources)), "streamed": min(steps),
                            "cache-dir": len(train) // 2}[mode]  # fmt: skip
    model = build_model("shortcnn", 3, 43).model.eval()
    model.load_state_dict(torch.load(tmp_path / "shortcnn-resampled-seed0" / "best.pt", weights_only=True))
    with torch.no_grad():
        pairs = [((torch.sigmoid(model(torch.from_numpy(x))) >= 0.5).numpy(), y) for x, y in reader.batches()]
    predicted, truth = np.concatenate([p for p, _ in pairs]), np.concatenate([y for _, y in pairs]).astype(bool)
    tp, fp, fn = (predicted & truth).sum(), (predicted & ~truth).sum(), (~predicted & truth).sum()
    assert run["test"]["micro_f1"] == pytest.approx(2 * tp / max(2 * tp + fp + fn, 1), abs=0.01)
    shared = reader.in_cell("test-test")  # file order, as the one-process pass above: both configurations' test
    predicted, truth = predicted[shared], truth[shared]
    tp, fp, fn = (predicted & truth).sum(), (predicted & ~truth).sum(), (~predicted & truth).sum()
    assert run["test_shared"]["patches"] == shared.sum() > 0
    assert run["test_shared"]["metrics"]["micro_f1"] == pytest.approx(2 * tp / max(2 * tp + fp + fn, 1), abs=0.01)
    validation = SplitReader(learnable, "validation", LoaderConfig(batch_size=64))  # the one epoch's validation loss
    shared = validation.in_cell("validation-validation")  # over the patches both configurations validate on
    with torch.no_grad():
        losses = [torch.nn.functional.binary_cross_entropy_with_logits(model(torch.from_numpy(x)),
                  torch.from_numpy(y), reduction="none").mean(1) for x, y in validation.batches()]  # fmt: skip
    per_row = torch.cat(losses).double().numpy()
    assert shared.sum() > 0 and run["history"][0]["val_loss"] == pytest.approx(per_row.mean(), rel=1e-4)
    assert run["history"][0]["shared_val_loss"] == pytest.approx(per_row[shared].mean(), rel=1e-4)


def test_a_checkpoint_resumes_only_under_its_own_settings(
    learnable: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.config import TrainConfig
    from harness.train import check_resume, dataset_identity, main, setup

    trained = TrainConfig(repo=str(learnable), out=str(tmp_path), batch_size=32)
    data = dataset_identity(learnable, str(learnable), None)["manifest_sha256"]
    history = {"epochs": [{"epoch": 0, "train_loss": 0.5, "val_loss": 0.5}], "best_epoch": 0, "best_val": 0.5,
               "setup": setup(trained, processes=1, data=data)}  # fmt: skip
    (tmp_path / trained.run_name / "checkpoint").mkdir(parents=True)
    (tmp_path / trained.run_name / "checkpoint" / "history.json").write_text(json.dumps(history))
    relaxed = TrainConfig(repo="elsewhere", out=str(tmp_path), batch_size=32, epochs=200, eval_batch_size=1000,
                          loader_threads=2, compile="default")  # fmt: skip
    check_resume(trained.run_dir(), history, setup(relaxed, processes=1, data=data))  # what may change
    assert main(["--repo", str(learnable), "--out", str(tmp_path), "--batch-size", "64", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "its checkpoint (1 epochs) was trained with batch=32" in err and "asks for batch=64" in err
    assert "another --out" in err and not (tmp_path / trained.run_name / "config.json").exists()  # nothing written
    from ben_hub.errors import RunError

    with pytest.raises(RunError, match="processes=2"):
        check_resume(trained.run_dir(), history, setup(trained, processes=2, data=data))
    with pytest.raises(RunError, match=r"data='0+'"):  # another build: other shards
        check_resume(trained.run_dir(), history, setup(trained, processes=1, data="0" * 64))


def test_saved_weights_have_plain_keys_when_the_model_is_compiled() -> None:
    """``--compile`` wraps the model; best.pt and pushed weights must still load into a plain model."""
    from accelerate import Accelerator

    from harness.train import plain_model

    model = build_model("shortcnn", 3, 43).model
    compiled = torch.compile(model)  # lazy: nothing is compiled until it is called
    assert next(iter(compiled.state_dict())).startswith("_orig_mod.")
    plain = plain_model(compiled, Accelerator(cpu=True))
    assert plain is model and list(plain.state_dict()) == list(model.state_dict())


def test_options_reach_the_config_and_the_backends() -> None:
    from harness.train import configure_backends, parse_args

    assert parse_args(["--repo", "r"])[0].compile is None
    assert parse_args(["--repo", "r", "--compile"])[0].compile == "default"
    assert parse_args(["--repo", "r", "--compile", "max-autotune"])[0].compile == "max-autotune"
    assert [c.seed for c in parse_args(["--repo", "r", "--seed", "3", "1", "3"])] == [3, 1]
    with pytest.raises(SystemExit):
        parse_args(["--repo", "r", "--compile", "fastest"])
    (config,) = parse_args(["--repo", "r", "--model", "inception_v3", "--deterministic"])
    assert config.batch == 200 and config.eval_batch == 200 and config.deterministic
    assert parse_args(["--repo", "r", "--eval-batch-size", "1000"])[0].eval_batch == 1000
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()
    try:
        assert configure_backends(config) == {"benchmark": False, "deterministic": True}
        assert torch.are_deterministic_algorithms_enabled()
        assert configure_backends(parse_args(["--repo", "r"])[0])["benchmark"]
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2])


def test_evaluation_batch_size_changes_no_result(learnable: Path) -> None:
    """Validation and test are scored per image: any batch size gives the same loss and predictions."""
    from accelerate import Accelerator

    from harness.train import evaluate_split

    torch.manual_seed(0)
    model = build_model("shortcnn", 3, 43).model
    accelerator = Accelerator(cpu=True)
    sources = [DeviceBatches(SplitReader(learnable, "validation", LoaderConfig(batch_size=b, raw=True)), "cpu")
               for b in (7, 64, 1000)]  # fmt: skip
    out = [evaluate_split(model, source, accelerator, 0.5) for source in sources]
    assert len(out[0]["references"]) == SplitReader(learnable, "validation").rows
    for other in out[1:]:
        assert other["loss"] == pytest.approx(out[0]["loss"], rel=1e-6)
        assert torch.equal(other["predictions"], out[0]["predictions"])
        assert torch.equal(other["references"], out[0]["references"])
    from ben_hub.errors import RunError
    from harness.train import cell_rows

    inside = cell_rows(sources[1], "validation-validation", accelerator)
    shared = torch.from_numpy(inside.astype(np.float32))
    masked = evaluate_split(model, sources[1], accelerator, 0.5, False, shared)
    assert masked["loss"] == out[1]["loss"] and 0 < inside.sum() < len(inside)  # the split's loss, bit for bit
    assert masked["shared_loss"] != masked["loss"]
    for wrong, rows in ((torch.ones(3), "over 64"), (torch.ones(len(inside) + 1), str(len(inside)))):
        with pytest.raises(RunError, match=f"the shared-cell mask has {len(wrong)} rows, this process's part of the "
                                           f"split {rows}$"):  # fmt: skip
            evaluate_split(model, sources[1], accelerator, 0.5, False, wrong)


def test_the_public_api_is_importable_from_the_package_without_loading_torch() -> None:
    code = ("import sys, ben_hub; assert 'torch' not in sys.modules and 'pyarrow' not in sys.modules; "
            "from ben_hub import LoaderConfig, SplitReader, split, BuildConfig, locate_archive, synth_archive; "
            "import ben_hub.loader; assert SplitReader is ben_hub.loader.SplitReader; "
            "assert set(dir(ben_hub)) >= {'PatchDataset', 'DeviceCache', 'resolve_repo', 'verify_repo'}")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    import ben_hub

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ben_hub.nothing  # noqa: B018
