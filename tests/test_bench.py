"""The arithmetic the GPU targets of #5 are judged by (``bench/gpu_check.py``): split sizes, the fastest variant
per model, the protocol's epoch hours and its fixed hours."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402
import gpu_tune  # noqa: E402
from common import scratch  # noqa: E402


def test_each_configuration_splits_the_519284_official_patches() -> None:
    for config in ("original", "resampled"):
        assert gpu_check.TRAIN[config] + gpu_check.VALIDATION[config] + gpu_check.TEST[config] == 519_284


def variant(model: str, train: float, evaluation: float, streamed: bool = False) -> dict[str, object]:
    return {"model": model, "train_images_per_s": train, "eval_images_per_s": evaluation, "streamed": streamed}


def test_protocol_hours_from_the_fastest_gpu_fed_variants() -> None:
    record = {
        "shortcnn": variant("shortcnn", 40_000.0, 70_000.0),
        "shortcnn-reduce-overhead": variant("shortcnn", 60_000.0, 120_000.0),
        "shortcnn-compiled-streamed": variant("shortcnn", 90_000.0, 1.0, streamed=True),  # CPU-fed: not counted
        "inception_v3": variant("inception_v3", 4_000.0, 15_000.0),
        "end_to_end_shortcnn": {"trained": "shortcnn", "fixed_s": 10.0, "later_fixed_s": 4.0},  # not a variant
        "end_to_end_inception_v3": {"trained": "inception_v3", "fixed_s": 100.0},
        "fill_patches_per_s": {"parquet": 51_928.4, "memmap": 100_000.0},
    }
    best = gpu_check.best_rates(record)
    assert best["shortcnn"] == {"train": 60_000.0, "eval": 120_000.0}
    assert best["inception_v3"] == {"train": 4_000.0, "eval": 15_000.0}
    hours = gpu_check.protocol_hours(best)
    train = 269_695 + 311_570
    validation = 123_723 + 103_857
    assert hours["shortcnn"] == pytest.approx(10 * 100 * (train / 60_000 + validation / 120_000) / 3600)
    assert hours["inception_v3"] == pytest.approx(100 * (train / 4_000 + validation / 15_000) / 3600)
    assert hours["total"] == pytest.approx(hours["shortcnn"] + hours["inception_v3"])
    fixed = gpu_check.protocol_fixed_hours(record)
    test = 125_866 + 103_857
    loading = 2 * 519_284 / 51_928.4  # 10 s a configuration
    assert fixed["shortcnn"] == pytest.approx(10 * (2 * 10.0 + loading + test / 120_000) / 3600)
    assert fixed["inception_v3"] == pytest.approx((2 * 100.0 + loading + test / 15_000) / 3600)
    grouped = gpu_check.protocol_fixed_hours(record, grouped=True)  # one launch per model and configuration
    assert grouped["shortcnn"] == pytest.approx((2 * (10.0 + 9 * 4.0) + loading + 10 * test / 120_000) / 3600)
    assert grouped["inception_v3"] == pytest.approx(fixed["inception_v3"])  # one seed: nothing to share


def measured(model: str, train: float, evaluation: float) -> dict[str, object]:
    """A variant's section as gpu_check.json stores it."""
    return variant(model, train, evaluation) | {
        "batch": 300, "step_alone_images_per_s": train, "gpu_busy_percent": 99.0, "peak_gpu_gib": 30.0,
        "cache_gib": 25.0, "warmup_s": 3.0, "eval_images_per_s_by_batch": {"300": evaluation}}  # fmt: skip


def test_a_report_merges_one_devices_calls_and_recomputes_the_protocol(tmp_path: Path) -> None:
    """Two calls on one GPU: the second's fill rate replaces the first's, its end-to-end launch completes the
    fixed costs, a variant the first call skipped but the second measured is no longer listed as skipped."""
    run = {"trained": "shortcnn", "compile": None, "device": "H100", "mixed_precision": "bf16", "launch_s": 40.0,
           "micro_f1": 0.1}  # fmt: skip
    first = {"device": "H100", "torch": "2.11", "errors": {"x": "boom"}, "skipped": ["inception_v3"],
             "shortcnn": measured("shortcnn", 60_000.0, 120_000.0), "protocol_gpu_hours": {"total": 99.0},
             "fill_patches_per_s": {"parquet": 300.0, "memmap": 30_000.0},
             "end_to_end_shortcnn": run | {"fixed_s": 10.0, "later_fixed_s": 4.0}}  # fmt: skip
    second = {"device": "H100", "torch": "2.11", "errors": {},
              "inception_v3": measured("inception_v3", 4_000.0, 15_000.0),
              "fill_patches_per_s": {"first": 300.0, "parquet": 51_928.4, "memmap": 30_000.0},
              "end_to_end_inception_v3": run | {"trained": "inception_v3", "fixed_s": 100.0}}  # fmt: skip
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, stored in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(stored))
    record = gpu_check.merged(paths)
    assert record["fill_patches_per_s"]["parquet"] == 51_928.4 and record["errors"] == {"x": "boom"}
    assert record["skipped"] == [] and "protocol_gpu_hours" not in record  # recomputed, never carried over
    text = gpu_check.report(paths, append=False)
    hours = gpu_check.protocol_hours(gpu_check.best_rates(record))
    fixed = gpu_check.protocol_fixed_hours(record, grouped=True)
    assert f"total {hours['total']:.2f} h" in text and f"total {fixed['total']:.2f} h" in text
    assert "| shortcnn | 300 | 60,000 |" in text and "| inception_v3 | 300 | 4,000 |" in text
    one = gpu_check.report(paths, append=False, variants=["inception_v3"])  # ShortCNN's rate left out: no hours
    assert "| inception_v3 |" in one and "| shortcnn |" not in one and "protocol's epochs at these rates" in one
    assert "total" not in one.split("protocol's epochs at these rates")[1].split(";")[0]
    with pytest.raises(SystemExit, match="no section"):
        gpu_check.report(paths, append=False, variants=["shortcnn-typo"])
    (tmp_path / "c.json").write_text(json.dumps(second | {"device": "A100"}))
    with pytest.raises(SystemExit, match="A100"):
        gpu_check.merged([*paths, tmp_path / "c.json"])


def test_evaluation_batches_per_model() -> None:
    import argparse

    assert gpu_check.eval_batch("500") == (None, 500)
    assert gpu_check.eval_batch("shortcnn:1200") == ("shortcnn", 1200)
    for bad in ("resnet:10", "shortcnn:0", "shortcnn:", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            gpu_check.eval_batch(bad)


def test_variants_name_model_mode_and_kernel_knobs() -> None:
    import argparse

    from harness.config import KernelChoices

    assert gpu_check.parse_variant("shortcnn:eager") == ("shortcnn", None, KernelChoices())
    knob = "inception_v3:reduce-overhead+aten-max-pool"
    assert gpu_check.parse_variant(knob) == ("inception_v3", "reduce-overhead", KernelChoices(aten_max_pool=True))
    assert gpu_check.variant_key(*gpu_check.parse_variant(knob)) == "inception_v3-reduce-overhead-aten-max-pool"
    both = gpu_check.parse_variant("shortcnn:default+pad-stem=8+aten-max-pool")
    assert both == ("shortcnn", "default", KernelChoices(aten_max_pool=True, pad_stem=8))
    assert gpu_check.variant_key(*both) == "shortcnn-compiled-aten-max-pool-pad-stem8"
    assert both[2].train_args == ["--aten-max-pool", "--pad-stem", "8"]
    assert KernelChoices.parse(both[2].names) == both[2]
    assert gpu_check.variant_key("shortcnn", "default") == "shortcnn-compiled"
    for bad in ("shortcnn", "shortcnn:fast", "resnet:eager", "shortcnn:eager+fused", "shortcnn:eager+",
                "shortcnn:eager+pad-stem", "shortcnn:eager+pad-stem=0", "shortcnn:eager+aten-max-pool=1"):  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError):
            gpu_check.parse_variant(bad)


def test_a_benchmark_leaves_no_scratch_behind_unless_given_one(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), scratch("ben-hub-test-") as work:
        (work / "archive").mkdir()
        raise KeyboardInterrupt  # an interrupted run too
    assert not work.exists()
    given = tmp_path / "work"
    with scratch("ben-hub-test-", given) as work:
        (work / "repo").mkdir()
    assert work == given and (given / "repo").is_dir()  # kept for the next run to reuse


@pytest.fixture
def fresh_accelerate() -> Iterator[None]:
    """The device scripts make their own bf16 ``Accelerator``; accelerate keeps one state a process, so a training
    test run earlier in this process (its own settings) is forgotten first, and this one's after."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.usefixtures("fresh_accelerate")
def test_gpu_tune_runs_a_variant_and_reports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only = ["shortcnn eager", "shortcnn reduce-overhead pad-stem=8"]
    monkeypatch.setattr(sys, "argv", ["gpu_tune.py", "--cpu-smoke", "--only", *only, "--out", str(tmp_path)])
    monkeypatch.setattr(gpu_tune, "BATCH", dict(gpu_tune.BATCH))  # --cpu-smoke shrinks these
    monkeypatch.setattr(gpu_tune, "STEPS_PER_CALL", gpu_tune.STEPS_PER_CALL)
    gpu_tune.main()
    record = json.loads((tmp_path / "gpu_tune.json").read_text())
    assert record["errors"] == {} and [v["model"] for v in record["variants"]] == ["shortcnn", "shortcnn"]
    assert all(v["train_images_per_s"] > 0 and v["top_kernels"] for v in record["variants"])
    assert record["variants"][1]["pad_stem"] == 8 and record["variants"][1]["compile"] == "reduce-overhead"


@pytest.mark.usefixtures("fresh_accelerate")
def test_gpu_check_runs_every_quick_section_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The device script end to end on the CPU (``--cpu-smoke``), so that a lent GPU's minutes are not spent on
    a broken script: a variant with both kernel knobs, an end-to-end launch with them, the summary."""
    for table in ("TRAIN", "BATCH", "STEPS_PER_CALL", "EVAL"):  # --cpu-smoke shrinks these
        monkeypatch.setattr(gpu_check, table, dict(getattr(gpu_check, table)))
    argv = ["gpu_check.py", "--cpu-smoke", "64", "--quick", "--patches", "200", "--seconds", "0.2", "--out",
            str(tmp_path), "--variants", "shortcnn:eager+aten-max-pool+pad-stem=8",
            "--end-to-end-knobs", "aten-max-pool", "pad-stem=8"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    gpu_check.main()
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["errors"] == {}, record["errors"]
    assert set(record["device_cache_samples_per_s"]) == {"eager", "fused"}  # batch forming alone, both ways
    variant = record["shortcnn-aten-max-pool-pad-stem8"]
    assert variant["aten_max_pool"] and variant["pad_stem"] == 8 and variant["train_images_per_s"]
    assert 0 < variant["optimizer_step_ms"] < 1e3 / variant["step_alone_images_per_s"] * 16  # within a step's time
    run = record["end_to_end_shortcnn"]
    assert run["aten_max_pool"] and run["pad_stem"] == 8
    assert run["later_fixed_s"] < run["fixed_s"] < run["launch_s"]  # imports, loading: once
    summary = (tmp_path / "gpu_check.md").read_text()
    assert "shortcnn-aten-max-pool-pad-stem8" in summary and "--aten-max-pool, --pad-stem 8" in summary


@pytest.mark.usefixtures("fresh_accelerate")
def test_gpu_check_stores_the_variants_its_budget_left_unstarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variant the time budget skips is in the stored ``gpu_check.json`` too, not only in that call's summary
    (a skip after the last section was once lost there), and a report of one model estimates no protocol."""
    for table in ("TRAIN", "BATCH", "STEPS_PER_CALL", "EVAL"):  # --cpu-smoke shrinks these
        monkeypatch.setattr(gpu_check, table, dict(getattr(gpu_check, table)))
    argv = ["gpu_check.py", "--cpu-smoke", "64", "--quick", "--patches", "200", "--out", str(tmp_path),
            "--budget-s", "0", "--end-to-end-models", "--variants", "inception_v3:eager+fused-sgd"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    gpu_check.main()
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["skipped"] == ["inception_v3-fused-sgd"] and "inception_v3-fused-sgd" not in record
    text = gpu_check.report([tmp_path / "gpu_check.json"], append=False)
    assert "inception_v3-fused-sgd" in text.split("not started (time budget)")[1]
    assert "at its fastest batch): not estimated (needs both models);" in text


def test_the_gpu_session_script_names_only_known_variants() -> None:
    """``bench/gpu_session.sh`` is run on a lent GPU with minutes to spare: its shell syntax, its gpu_check variants
    and its gpu_tune variant names are checked here, so that a rename cannot break it there."""
    import re
    import subprocess

    script = Path(__file__).resolve().parent.parent / "bench" / "gpu_session.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    variants = re.findall(r"\b(?:shortcnn|inception_v3):[a-z]\S*", text)  # not the --eval-batches MODEL:N
    assert variants and all(gpu_check.parse_variant(v) for v in variants)
    names = re.findall(r'"((?:shortcnn|inception_v3) [^"]+)"', text)
    assert set(names) <= {v.name for v in gpu_tune.VARIANTS}  # gpu_tune's, if it runs any
