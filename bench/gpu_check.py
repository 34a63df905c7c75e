"""GPU check for the harness (#5): training-step throughput, loader against steps, GPU busy, peak memory.

    python bench/gpu_check.py [--patches 3000] [--seconds 8] [--out DIR] [--no-compile]
        [--variants MODEL:MODE[+KNOB...] ...] [--budget-s S] [--quick] [--end-to-end-compile MODE]
        [--end-to-end-knobs KNOB ...]
    python bench/gpu_check.py --report bench/reference/gpu_check_h100_2026-11-27.json \
        bench/reference/gpu_check_h100_2026-11-27_second_call.json      # no GPU: stored records merged

Builds a synthetic repository, keeps its train split on the GPU tiled to the size of the paper's resampled
train split (311,570 RGB patches, ~27 GB of uint16), and times the harness's own epoch function
(``harness.train.train_epoch``, bf16 autocast through accelerate, channels-last) for ShortCNN (batch 300) and
InceptionV3 (batch 200, 299 px), eager and ``torch.compile`` (``--variants`` names others, as
``model:mode``: ``shortcnn:reduce-overhead`` adds CUDA graphs; knobs after it choose other kernels for the same
step, as ``train.py``'s options of those names do (``harness.config.KernelChoices``): ``+aten-max-pool`` runs the
max pools by ATen's kernels, ``+pad-stem=8`` pads the stem's 3 input channels to 8, ``+eager-batches`` forms
batches by eager kernels instead of ``DeviceCache``'s one compiled kernel, ``+fused-sgd`` and
``+coordinate-descent`` as ``harness.config.KNOBS`` says).  For each it reports:

- train images/s fed by :class:`ben_hub.loader.DeviceCache` and, for comparison, on one batch already in
  place (the ratio says whether the GPU waits for data);
- GPU busy: NVML's utilisation (share of time a kernel was running), sampled every 100 ms while timing;
- the optimiser's step alone, in milliseconds (:func:`optimizer_step_ms`), beside the whole step's time;
- validation images/s (``harness.train.evaluate_split``, loss only, as every epoch runs it; the split tiled to
  21,000 patches) at the training batch and at any ``--eval-batches`` (``N`` or ``MODEL:N``), and peak GPU
  memory;
- the CPU loader's samples/s on one core (``SplitReader``, parquet and memory-mapped cache): how many cores a
  CPU-fed run would need;
- the GPU-hours of the paper's protocol (ShortCNN 10 seeds and InceptionV3 one seed, both configurations,
  100 epochs, validation every epoch) at the measured rates.

ShortCNN is also timed fed from one CPU core (raw uint16 batches from the decoded cache, normalised on the GPU:
``DeviceBatches``, what the harness does without ``--device-cache``).  Then two real ``accelerate launch
harness/train.py`` runs end to end, with ``--device-cache`` (first, before the variants) and streamed.
``--quick`` keeps only the variants, DeviceCache's batch forming alone (eager and fused kernels) and the
``--device-cache`` run (no CPU loader, no streamed runs);
``--budget-s`` starts no variant after that many seconds.  Every section is recorded in ``gpu_check.json``
(in ``--out``) as it finishes, so a cut run keeps what it measured; the summary table is appended to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accelerate import Accelerator  # noqa: E402
from common import publish, scratch, synthetic_repo  # noqa: E402

from ben_hub.loader import DeviceBatches, DeviceCache, LoaderConfig, SplitReader  # noqa: E402
from harness.config import COMPILE_MODES, KNOB_SYNTAX, KernelChoices, TrainConfig  # noqa: E402
from harness.models import build_model  # noqa: E402
from harness.train import evaluate_split, train_epoch  # noqa: E402

BUILTIN = KernelChoices()
"""No kernel knob: the compiled step's own kernels."""

# The paper's protocol (split sizes of v1's 519,284 official patches).
TRAIN = {"original": 269_695, "resampled": 311_570}
VALIDATION = {"original": 123_723, "resampled": 103_857}
TEST = {"original": 125_866, "resampled": 103_857}  # each configuration's three splits: the 519,284 patches
SEEDS = {"shortcnn": 10, "inception_v3": 1}
BATCH = {"shortcnn": 300, "inception_v3": 200}
STEPS_PER_CALL = {"shortcnn": 200, "inception_v3": 40}  # an epoch's shuffle (randperm) is paid once per call
EVAL: dict[str, Any] = {
    "rows": 21_000,  # validation tiled to this many patches (a timing not all overhead), whole batches of 200, 300
    "batches": (),  # (model or None, batch): evaluation batches timed besides the training batch (--eval-batches)
}
EPOCHS = 100


class BusySampler:
    """Mean NVML GPU utilisation (percent of time a kernel ran) while the ``with`` block runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            self.read: Callable[[], float] | None = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            self.read = None

    def loop(self) -> None:
        while not self.stop.wait(0.1):
            self.samples.append(self.read())  # type: ignore[misc]

    def __enter__(self) -> BusySampler:
        if self.read is not None:
            self.thread = threading.Thread(target=self.loop, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.read is not None:
            self.thread.join()

    @property
    def percent(self) -> float | None:
        kept = self.samples[5:] or self.samples  # the first half second still shows the previous state
        return float(np.mean(kept)) if kept else None


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


class Fixed:
    """One batch again and again (``steps`` a pass), in the shape ``train_epoch`` reads from a loader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        self.pairs = [(x, y)] * steps

    def batches(self, *_: Any, **__: Any) -> Any:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def steps(self, *_: Any, **__: Any) -> int:
        return len(self.pairs)


def tiled(cache: DeviceCache, rows: int) -> DeviceCache:
    """The cache repeated on the device up to ``rows`` patches (the real split's size and memory)."""
    index = torch.arange(rows, device=cache.y.device) % len(cache.y)  # one allocation of the final size
    cache.x, cache.y, cache.part_rows = cache.x[index], cache.y[index], [rows]
    return cache


def optimizer_step_ms(optimizer: torch.optim.Optimizer, repeats: int = 20) -> float:
    """Milliseconds of one ``optimizer.step()`` alone, on the gradients the last training step left, outside any
    graph (as the harness steps it), a mean over ``repeats`` after one untimed step: what the optimiser costs of
    a step, to set beside the step's whole time (``--fused-sgd`` made InceptionV3's step 26% slower on an H200)."""
    optimizer.step()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        optimizer.step()
    sync()
    return (time.perf_counter() - start) / repeats * 1e3


def timed(step: Callable[[], int], seconds: float) -> tuple[float, float | None]:
    """Images/s of ``step`` (returns images) repeated for about ``seconds`` (at least once), and GPU busy
    meanwhile."""
    sync()
    images, start = 0, time.perf_counter()
    with BusySampler() as busy:
        images += step()  # at least one: a loaded machine may spend a short window starting the sampler
        while time.perf_counter() - start < seconds:
            images += step()
        sync()
    return images / (time.perf_counter() - start), busy.percent


def check_model(
    name: str, mode: str | None, repo: Path, accelerator: Accelerator, seconds: float, streamed: bool = False,
    kernels: KernelChoices = BUILTIN,
) -> dict[str, Any]:  # fmt: skip
    """Loader-fed and in-place step rates, GPU busy, evaluation rate, peak memory for one model, eager
    (``mode`` None) or under that ``torch.compile`` mode, with the harness's ``kernels`` choices.

    ``streamed``: batches come from the CPU (one core, raw uint16 from the decoded memory-mapped cache,
    normalised on the GPU: ``DeviceBatches``) instead of the split held on the GPU.
    """
    with kernels.active():  # all of it: the compiled graphs trace at their first calls
        result = measure_model(name, mode, repo, accelerator, seconds, streamed, kernels)
    return {**result, **asdict(kernels)}


def measure_model(
    name: str, mode: str | None, repo: Path, accelerator: Accelerator, seconds: float, streamed: bool,
    kernels: KernelChoices,
) -> dict[str, Any]:  # fmt: skip
    """:func:`check_model`'s measurements."""
    batch = BATCH[name]
    if streamed:
        cache = str(repo.parent / "cache")
        reader = SplitReader(repo, "train", LoaderConfig(batch_size=batch, raw=True, cache_dir=cache))
        reader.cached()  # decoded once before timing, as after a run's first epoch
        train: Any = DeviceBatches(reader, accelerator.device, fuse=kernels.batch_fuse)
    else:
        train = tiled(DeviceCache(SplitReader(repo, "train", LoaderConfig(batch_size=batch)), accelerator.device,
                                  fuse=kernels.batch_fuse), TRAIN["resampled"])  # fmt: skip
    val = tiled(DeviceCache(SplitReader(repo, "validation", LoaderConfig(batch_size=batch)), accelerator.device,
                            fuse=kernels.batch_fuse), EVAL["rows"])  # fmt: skip
    torch.manual_seed(0)
    model = kernels.apply(build_model(name, 3, 43).model).to(memory_format=torch.channels_last)
    optimizer = kernels.optimizer(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    if mode is not None:
        model = torch.compile(model, mode=mode)  # type: ignore[assignment]
    steps_per_call = STEPS_PER_CALL[name]
    config = TrainConfig(repo=str(repo), model=name, max_batches=steps_per_call)
    epoch = iter(range(10**9))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train_epoch(model, optimizer, train, accelerator, next(epoch), config)  # warm-up (and compilation)
    sync()
    warmup = time.perf_counter() - start
    fed, busy = timed(lambda: train_epoch(model, optimizer, train, accelerator, next(epoch), config)[1], seconds)
    x, y = next(iter(train.batches(0, True, 0)))
    one = Fixed(x, y, steps_per_call)  # the step alone, no batch formation
    alone, _ = timed(lambda: train_epoch(model, optimizer, one, accelerator, 0, config)[1], seconds / 2)
    step_ms = optimizer_step_ms(optimizer)
    print(
        f"  ({name}, {mode or 'eager'}, {'+'.join(kernels.names) or 'no knobs'}: warm-up {warmup:.0f} s, train "
        f"{fed:,.0f} images/s, in place {alone:,.0f}, optimiser step alone {step_ms:.2f} ms; evaluation next)",
        flush=True,
    )  # kept if a limit cuts it
    sizes = dict.fromkeys([batch, *(size for only, size in EVAL["batches"] if only in (None, name))])
    evaluation = {size: eval_rate(model, val, accelerator, size) for size in sizes}
    result = {
        "model": name, "compile": mode, "batch": batch, "warmup_s": warmup, "train_images_per_s": fed,
        "step_alone_images_per_s": alone, "optimizer_step_ms": step_ms, "gpu_busy_percent": busy,
        "eval_images_per_s": max(evaluation.values()), "eval_images_per_s_by_batch": evaluation,
        "peak_gpu_gib": peak_gib(),
        "cache_gib": 0.0 if streamed else (train.x.nbytes + train.y.nbytes) / 2**30,
        "train_rows_on_gpu": 0 if streamed else len(train.y), "streamed": streamed,
    }  # fmt: skip
    return result  # the caller frees the GPU memory (accelerator.free_memory) once these locals are gone


def eval_rate(model: torch.nn.Module, val: DeviceCache, accelerator: Accelerator, batch: int) -> float:
    """Validation images/s (loss only, and the loss over the patches both configurations share, as every epoch; a
    fifth of the rows marked shared) at evaluation batch ``batch``, after one untimed pass (cuDNN's kernel choice
    and, compiled, the evaluation graph for that shape)."""
    val.batch_size = batch
    shared = (torch.arange(len(val.y), device=val.y.device) % 5 == 0).float()
    evaluate_split(model, val, accelerator, 0.5, False, shared)
    sync()
    start = time.perf_counter()
    evaluate_split(model, val, accelerator, 0.5, False, shared)
    sync()
    return len(val.y) / (time.perf_counter() - start)


def cpu_loader(repo: Path, cache_dir: Path) -> dict[str, float]:
    """Samples/s of the CPU loader on one thread over the train split: parquet and the memory-mapped cache,
    normalised on the CPU, and raw from the cache (what the harness does, the GPU normalising)."""
    out = {}
    cache = str(cache_dir)
    for label, config in (("parquet", LoaderConfig(batch_size=300)),
                          ("memmap", LoaderConfig(batch_size=300, cache_dir=cache)),
                          ("memmap_raw", LoaderConfig(batch_size=300, cache_dir=cache, raw=True))):  # fmt: skip
        reader = SplitReader(repo, "train", config)
        sum(len(y) for _, y in reader.batches(0, True, 0))  # warm page cache (and fill the memory map)
        start = time.perf_counter()
        seen = sum(len(y) for _, y in reader.batches(1, True, 0))
        out[label] = seen / (time.perf_counter() - start)
    return out


def device_batches(repo: Path, device: torch.device) -> dict[str, float]:
    """Samples/s of DeviceCache alone (gather, widen, normalise) over a full-size split, batches of 300: by the
    eager kernels and by the one compiled kernel (``fuse``, the CUDA default), each after an untimed epoch."""
    rates = {}
    for name, fuse in (("eager", False), ("fused", True)):
        reader = SplitReader(repo, "train", LoaderConfig(batch_size=300))
        cache = tiled(DeviceCache(reader, device, fuse=fuse), TRAIN["resampled"])
        for epoch in (0, 1):  # the first compiles (fused) and warms the allocator
            sync()
            start, seen = time.perf_counter(), 0
            for x, _ in cache.batches(epoch, True, 0):
                seen += len(x)
            sync()
            rates[name] = seen / (time.perf_counter() - start)
        del cache
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return rates


def protocol_hours(rates: dict[str, dict[str, float]]) -> dict[str, float]:
    """GPU-hours of the paper's protocol at the measured train and evaluation rates, per model and in total."""
    hours = {}
    for name, rate in rates.items():
        seconds = sum(EPOCHS * (TRAIN[c] / rate["train"] + VALIDATION[c] / rate["eval"]) for c in TRAIN)
        hours[name] = SEEDS[name] * seconds / 3600
    hours["total"] = sum(hours.values())
    return hours


def best_rates(record: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per model, the train and evaluation rates of its fastest variant fed from the GPU copy of the split."""
    best = {}
    for name in BATCH:
        runs = [r for r in record.values() if isinstance(r, dict) and r.get("model") == name and not r.get("streamed")]
        if runs:
            top = max(runs, key=lambda r: r["train_images_per_s"])
            best[name] = {"train": top["train_images_per_s"], "eval": top["eval_images_per_s"]}
    return best


def end_to_end(
    repo: Path,
    work: Path,
    cpu: bool,
    device_cache: bool,
    mode: str | None = None,
    model: str = "shortcnn",
    seeds: int = 1,
    kernels: KernelChoices = BUILTIN,
) -> dict[str, Any]:
    """One real ``accelerate launch harness/train.py`` on the GPU (2 epochs of ``model`` for each of ``seeds``
    seeds, in turn in the one launch, as the sweep runs them on one device; ``--compile MODE`` when ``mode`` is
    given), with the split on the GPU or streamed from the CPU as raw batches and normalised on the GPU.
    ``fixed_s``: the first run's seconds (``run.json``: process start to result) less its two epochs at the second
    epoch's pace, i.e. what a launch costs besides its epochs here: start, imports, loading this small repository,
    compilation and CUDA-graph capture, checkpoints, test.  ``later_fixed_s`` (``seeds`` > 1): the same for the
    last seed, which found the data loaded (model, compilation, checkpoints, test)."""
    runs = work / f"runs-{model}-{'cache' if device_cache else 'streamed'}"
    command = [sys.executable, "-m", "accelerate.commands.launch", *(["--cpu"] if cpu else []),
               "--mixed_precision", "bf16", "--num_processes", "1",
               str(ROOT / "harness" / "train.py"), "--repo", str(repo), "--epochs", "2", "--out", str(runs),
               "--model", model, "--seed", *map(str, range(seeds)),
               *(["--device-cache"] if device_cache else ["--cache-dir", str(work / "cache")]),
               *(["--compile", mode] if mode else []), *kernels.train_args]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    wall = time.perf_counter() - start
    done_runs = [json.loads((runs / f"{model}-resampled-seed{s}" / "run.json").read_text()) for s in range(seeds)]
    run, last = done_runs[0], done_runs[-1]
    launch, epochs = sum(run["launch_seconds"]), run["epoch_seconds"]
    fixed = {"fixed_s": fixed_seconds(run)} | ({"later_fixed_s": fixed_seconds(last)} if seeds > 1 else {})
    return {"wall_s": wall, "device": run["device"], "mixed_precision": run["mixed_precision"], "trained": model,
            "compile": mode, **asdict(kernels), "train_images_per_s": run["train_images_per_s"],
            "micro_f1": run["test"].get("micro_f1"),
            "launch_s": launch, "epoch_s": epochs, **fixed}  # fmt: skip


def fixed_seconds(run: dict[str, Any]) -> float:
    """A run's launch seconds less its epochs, each counted at the pace of its last (compilation is in the first)."""
    epochs = run["epoch_seconds"]
    return float(sum(run["launch_seconds"]) - len(epochs) * epochs[-1])


def fill_rates(repo: Path, device: torch.device, cache_dir: Path) -> dict[str, float]:
    """Patches/s of filling a :class:`DeviceCache` with the train split (8 decoding threads, the harness's
    default on this machine): ``first``, a process's first fill from parquet, which also pays one-time costs
    (on one H100: 368 patches/s against 14,160 for the next, ``bench/reference/gpu_check_h100_2026-11-27*.json``;
    a launch's ``fixed_s`` holds them); ``parquet``, a later fill from parquet (page cache), as a run's loading
    of its configuration; ``memmap``, from the ``--cache-dir`` memory map."""
    rates = {}
    for label, cache in (("first", None), ("parquet", None), ("memmap", str(cache_dir))):
        reader = SplitReader(repo, "train", LoaderConfig(batch_size=300, cache_dir=cache, raw=True, threads=8))
        if cache is not None:
            reader.cached()
        sync()
        start = time.perf_counter()
        filled = DeviceCache(reader, device)
        sync()
        rates[label] = len(filled.y) / (time.perf_counter() - start)
        del filled
    return rates


def protocol_fixed_hours(record: dict[str, Any], grouped: bool = False) -> dict[str, float]:
    """GPU-hours of the protocol's 22 runs besides their epochs: the fixed seconds from each model's end-to-end
    launch, loading the configuration's 519,284 patches at the parquet fill rate, and scoring each run's test split
    at the model's evaluation rate (the small repository's own loading and test are in the fixed seconds too: a
    slight overcount).  One launch a run (``sweep.py --devices``): every run pays the launch's fixed seconds and
    the loading.  ``grouped`` (``sweep.py`` on one device: a launch per model and configuration): the first seed
    pays them, each later one only ``later_fixed_s``."""
    best, fill = best_rates(record), record["fill_patches_per_s"]["parquet"]
    hours = {}
    for name, seeds in SEEDS.items():
        run = record[f"end_to_end_{name}"]
        launch = [run["fixed_s"]] + [run.get("later_fixed_s", run["fixed_s"])] * (seeds - 1)
        launches = launch if grouped else [run["fixed_s"]] * seeds
        loads = 1 if grouped else seeds
        seconds = sum(sum(launches) + loads * (TRAIN[c] + VALIDATION[c] + TEST[c]) / fill
                      + seeds * TEST[c] / best[name]["eval"] for c in TRAIN)  # fmt: skip
        hours[name] = seconds / 3600
    hours["total"] = sum(hours.values())
    return hours


def eval_batch(text: str) -> tuple[str | None, int]:
    """``N`` (every model) or ``MODEL:N`` as (model or None, N)."""
    name, _, size = text.rpartition(":")
    if (name and name not in BATCH) or not size.isdigit() or int(size) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or MODEL:N, MODEL one of {sorted(BATCH)}")
    return name or None, int(size)


def variant_key(name: str, mode: str | None, kernels: KernelChoices = BUILTIN) -> str:
    """A variant's section name: ``shortcnn``, ``shortcnn-compiled`` (default mode), ``shortcnn-reduce-overhead``,
    ``inception_v3-reduce-overhead-aten-max-pool-pad-stem8``."""
    key = name if mode is None else f"{name}-compiled" if mode == "default" else f"{name}-{mode}"
    return "-".join([key, *(knob.replace("=", "") for knob in kernels.names)])


def parse_variant(text: str) -> tuple[str, str | None, KernelChoices]:
    """``MODEL:MODE[+KNOB...]`` (MODE ``eager`` or a torch.compile mode; knobs: ``harness.config.KNOBS``)
    as (model, mode or None, the kernel choices)."""
    spec, *knobs = text.split("+")
    name, _, mode = spec.partition(":")
    try:
        kernels = KernelChoices.parse(knobs)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
    if name not in BATCH or mode not in ("eager", *COMPILE_MODES):
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL:MODE[+KNOB...], MODEL one of "
                                         f"{sorted(BATCH)}, MODE eager or one of {COMPILE_MODES}")  # fmt: skip
    return name, None if mode == "eager" else mode, kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per measurement")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--models", nargs="+", default=list(BATCH), choices=list(BATCH))
    parser.add_argument(
        "--variants",
        nargs="+",
        type=parse_variant,
        metavar="MODEL:MODE[+KNOB...]",
        help="measure these, in this order, instead of --models eager and compiled "
        f"(MODE: eager or a torch.compile mode; KNOB: {KNOB_SYNTAX}"
        ", as train.py's options)",
    )
    parser.add_argument("--budget-s", type=float, default=None, help="start no variant after this many seconds")
    parser.add_argument("--quick", action="store_true",
                        help="variants and the --device-cache run only: no CPU loader, no streamed runs")  # fmt: skip
    parser.add_argument("--end-to-end-compile", default=None, choices=COMPILE_MODES, metavar="MODE",
                        help="the end-to-end runs' --compile mode (default: eager)")  # fmt: skip
    parser.add_argument("--end-to-end-knobs", nargs="+", default=[], metavar="KNOB",
                        help="the end-to-end runs with these kernel choices (aten-max-pool, pad-stem=N)")  # fmt: skip
    parser.add_argument("--end-to-end-models", nargs="*", default=["shortcnn"], choices=list(BATCH),
                        help="models run end to end (both: the protocol's fixed costs are estimated; none: "
                             "no launch, the variants only)")  # fmt: skip
    parser.add_argument(
        "--eval-batches",
        nargs="*",
        type=eval_batch,
        default=[],
        metavar="[MODEL:]N",
        help="also time validation at these batches, for every model or for MODEL only (the fastest counts in "
        "protocol hours)",
    )
    parser.add_argument(
        "--cpu-smoke",
        type=int,
        default=0,
        metavar="ROWS",
        help="no GPU: run every code path on the CPU with ROWS tiled rows (checks the script only)",
    )
    parser.add_argument("--report", nargs="+", type=Path, metavar="JSON",
                        help="no GPU: append a BENCHMARKS.md section from stored gpu_check.json records of one "
                             "device (a later file's sections replace an earlier one's), the protocol's hours "
                             "recomputed")  # fmt: skip
    parser.add_argument("--report-variants", nargs="+", default=None, metavar="KEY",
                        help="with --report: count only these variant sections (shortcnn-reduce-overhead, "
                             "...)")  # fmt: skip
    args = parser.parse_args()
    if args.report:
        report(args.report, variants=args.report_variants)
        return
    try:
        end_to_end_kernels = KernelChoices.parse(args.end_to_end_knobs)
    except ValueError as err:
        parser.error(f"--end-to-end-knobs: {err}")
    if not torch.cuda.is_available() and not args.cpu_smoke:
        sys.exit("gpu_check: no CUDA device; run it on a machine with a GPU")
    if args.cpu_smoke:
        TRAIN.update(resampled=args.cpu_smoke)
        BATCH.update(shortcnn=16, inception_v3=4)
        STEPS_PER_CALL.update(shortcnn=2, inception_v3=1)
        EVAL.update(rows=min(EVAL["rows"], args.cpu_smoke))
    EVAL.update(batches=tuple(args.eval_batches))
    torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    record: dict[str, Any] = {"device": device, "torch": torch.__version__, "errors": {}}

    def save() -> None:
        (out / "gpu_check.json").write_text(json.dumps(record, indent=2) + "\n")

    def section(key: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            record[key] = work()
        except Exception as err:  # keep going: one failure must not lose the other measurements
            record["errors"][key] = f"{type(err).__name__}: {err}"
        print(f"[{time.perf_counter() - start:6.1f} s] {key}: {record.get(key, record['errors'].get(key))}",
              flush=True)  # fmt: skip
        save()
        return record.get(key)

    with scratch("gpu_check_") as work:
        repo = section("repo", lambda: str(synthetic_repo(work, args.patches)[1]))
        repo = Path(repo)
        accelerator = Accelerator(mixed_precision="bf16", cpu=bool(args.cpu_smoke))
        began = time.perf_counter()
        for name in args.end_to_end_models:
            section(
                f"end_to_end_{name}",
                functools.partial(
                    end_to_end,
                    repo,
                    work,
                    bool(args.cpu_smoke),
                    True,
                    args.end_to_end_compile,
                    name,
                    2 if SEEDS[name] > 1 else 1,  # a later seed's own fixed seconds too
                    end_to_end_kernels,
                ),
            )
        section("fill_patches_per_s", lambda: fill_rates(repo, accelerator.device, work / "fill-cache"))
        section("device_cache_samples_per_s", lambda: device_batches(repo, accelerator.device))
        if not args.quick:
            section("cpu_loader_samples_per_s", lambda: cpu_loader(repo, work / "cache"))
        modes = [None] if args.no_compile else [None, "default"]
        variants = args.variants or [(m, c, KernelChoices()) for c in modes for m in args.models]
        for name, mode, kernels in variants:
            if args.budget_s is not None and time.perf_counter() - began > args.budget_s:
                record.setdefault("skipped", []).append(variant_key(name, mode, kernels))
                save()  # a cut call's record still says what it never started
                continue
            measure = functools.partial(check_model, name, mode, repo, accelerator, args.seconds, kernels=kernels)
            print(f"  ({variant_key(name, mode, kernels)} starts at {time.perf_counter() - began:.0f} s)", flush=True)
            section(variant_key(name, mode, kernels), measure)
            accelerator.free_memory()
            torch._dynamo.reset()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if "shortcnn" in args.models and not args.quick:  # the most demanding model fed by one CPU core
            mode = None if args.no_compile else "default"
            section(f"{variant_key('shortcnn', mode)}-streamed",
                    functools.partial(check_model, "shortcnn", mode, repo, accelerator, args.seconds,
                                      streamed=True))  # fmt: skip
            accelerator.free_memory()
        protocol_sections(record, section)
        if not args.quick:
            section("end_to_end_streamed", lambda: end_to_end(repo, work, args.cpu_smoke, device_cache=False))
        text = summarise(record, command_line(), append=not args.cpu_smoke)  # a smoke run is no result
        (out / "gpu_check.md").write_text(text)


def protocol_sections(record: dict[str, Any], section: Callable[[str, Callable[[], Any]], Any]) -> None:
    """The protocol's GPU-hours at the record's rates, once both models are measured; its runs' fixed costs too,
    once both models were launched end to end and a fill rate is known."""
    best = best_rates(record)
    if len(best) < len(BATCH):
        return
    section("protocol_gpu_hours", lambda: protocol_hours(best))
    if all(f"end_to_end_{name}" in record for name in SEEDS) and "fill_patches_per_s" in record:
        section("protocol_fixed_gpu_hours", lambda: protocol_fixed_hours(record))
        section("protocol_fixed_gpu_hours_one_device", lambda: protocol_fixed_hours(record, grouped=True))


def merged(paths: list[Path]) -> dict[str, Any]:
    """Stored ``gpu_check.json`` records of one device (calls in one lease, say) as one: a later file's sections
    replace an earlier one's of the same name; errors and skipped variants are pooled.  Records of different
    devices are refused: their rates do not add up to one machine's protocol."""
    record: dict[str, Any] = {"errors": {}, "skipped": []}
    for path in paths:
        part = json.loads(path.read_text())
        if record.get("device", part["device"]) != part["device"]:
            raise SystemExit(f"gpu_check --report: {path} is from {part['device']}, the others from "
                             f"{record['device']}; report one device's records together")  # fmt: skip
        record["errors"] |= part.pop("errors", {})
        record["skipped"] += [s for s in part.pop("skipped", []) if s not in record]
        record |= {k: v for k, v in part.items() if not k.startswith("protocol_")}
    record["skipped"] = [s for s in record["skipped"] if s not in record]  # measured in another call
    return record


def report(paths: list[Path], append: bool = True, variants: list[str] | None = None) -> str:
    """A BENCHMARKS.md section (appended when ``append``) from stored records (:func:`merged`), the protocol's
    hours recomputed; ``variants``: only these variant sections count (the options a sweep would run), not
    every measured one."""
    record = merged(paths)
    if variants:
        unknown = sorted(set(variants) - set(record))
        if unknown:
            raise SystemExit(f"gpu_check --report-variants: no section {unknown} in the records")
        record = {k: v for k, v in record.items() if not k.startswith(tuple(BATCH)) or k in variants}

    def section(key: str, work: Callable[[], Any]) -> None:
        record[key] = work()

    protocol_sections(record, section)
    named = " ".join(str(p.resolve().relative_to(ROOT)) if p.resolve().is_relative_to(ROOT) else str(p)
                     for p in paths)  # fmt: skip
    preface = " (which only merged the stored records; measured on the device named next)"
    chosen = f" --report-variants {' '.join(variants)}" if variants else ""
    return summarise(record, f"python bench/gpu_check.py --report {named}{chosen}", append, preface)


def command_line() -> str:
    """This run's command as typed, less ``--out`` (a path on the machine that ran it)."""
    given = sys.argv[1:]
    if "--out" in given:
        del given[given.index("--out") : given.index("--out") + 2]
    return " ".join(["python bench/gpu_check.py", *given])


def rounded(values: dict[str, Any] | None) -> str:
    """``{'a': 1234.5678}`` as ``a 1,235``: numbers for a table note."""
    if not values:
        return "not measured"
    return ", ".join(f"{k} {v:,.3g}" if isinstance(v, float) and abs(v) < 10 else
                     f"{k} {v:,.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())  # fmt: skip


def end_to_end_note(record: dict[str, Any]) -> str:
    """Each end-to-end run in a few words: model, compile mode, device, launch and fixed seconds, micro F1."""
    runs = [r for k, r in record.items() if k.startswith("end_to_end") and isinstance(r, dict)]
    return "; ".join(r["error"][-200:] if "error" in r else
                     f"{r['trained']} ({r['compile'] or 'eager'}"
                     + "".join(f", --{k.replace('_', '-')}" + ("" if v is True else f" {v}")
                               for k, v in r.items() if k in KernelChoices.__dataclass_fields__ and v)
                     + f", {r['device']}, {r['mixed_precision']}): launch "
                     f"{r['launch_s']:.0f} s, of which fixed {r['fixed_s']:.0f} s"
                     + (f" (a later seed's: {r['later_fixed_s']:.0f} s)" if "later_fixed_s" in r else "")
                     + f", micro F1 {r['micro_f1']:.3f}"
                     for r in runs) or "not run"  # fmt: skip


def summarise(record: dict[str, Any], command: str, append: bool = True, preface: str = "") -> str:
    """The record as a BENCHMARKS.md section (appended when ``append``): a note of the one-off numbers (after
    ``preface``), then a row per variant; returns the text."""
    cpu = record.get("cpu_loader_samples_per_s", {}).get("memmap_raw")  # the harness's path without the cache
    rows = []
    for key in [k for k in record if k.startswith(tuple(BATCH))]:
        r = record[key]
        cores = f"{r['train_images_per_s'] / cpu:.0f}" if cpu else "?"
        busy = f"{r['gpu_busy_percent']:.0f}%" if r["gpu_busy_percent"] is not None else "?"
        rows.append([key, str(r["batch"]), f"{r['train_images_per_s']:,.0f}", f"{r['step_alone_images_per_s']:,.0f}",
                     busy, ", ".join(f"{n}: {v:,.0f}" for n, v in r["eval_images_per_s_by_batch"].items()),
                     f"{r['peak_gpu_gib']:.1f} ({r['cache_gib']:.1f})",
                     f"{r['warmup_s']:.0f}", cores,
                     f"{r['optimizer_step_ms']:.2f}" if "optimizer_step_ms" in r else "?"])  # fmt: skip
    hours = record.get("protocol_gpu_hours", {})
    fixed, grouped = record.get("protocol_fixed_gpu_hours", {}), record.get("protocol_fixed_gpu_hours_one_device", {})
    cache_rate = record.get("device_cache_samples_per_s")
    note = (f"{preface}; {record['device']}, torch {record['torch']}, bf16 autocast, channels-last, train split on "
            f"the GPU tiled to {TRAIN['resampled']:,} patches; DeviceCache alone "
            f"{rounded(cache_rate)} samples/s; "
            f"validation tiled to {EVAL['rows']:,} "
            f"patches; CPU loader on one core {rounded(record.get('cpu_loader_samples_per_s'))} samples/s; "
            f"paper protocol's epochs at these rates (evaluation at its fastest batch): "
            f"{', '.join(f'{k} {v:.2f} h' for k, v in hours.items()) or 'not estimated (needs both models)'}; "
            f"its runs' fixed costs besides, one launch a "
            f"run: {', '.join(f'{k} {v:.2f} h' for k, v in fixed.items()) or 'not estimated'}, a launch per model "
            f"and configuration (sweep.py on one device): "
            f"{', '.join(f'{k} {v:.2f} h' for k, v in grouped.items()) or 'not estimated'}; DeviceCache filled at "
            f"{rounded(record.get('fill_patches_per_s'))} patches/s; end to end (`accelerate launch "
            f"harness/train.py --device-cache`, 2 epochs): {end_to_end_note(record)}; "
            f"errors: {record['errors'] or 'none'}; "
            f"not started (time budget): {record.get('skipped') or 'none'}")  # fmt: skip
    header = ["run", "batch", "train img/s (DeviceCache)", "train img/s (batch in place)", "GPU busy",
              "eval img/s (batch: rate)", "peak GiB (split on GPU)", "warm-up s", "CPU threads to feed it",
              "optimiser step alone, ms"]  # fmt: skip
    return publish("gpu_check", command, note, header, rows, append=append)


if __name__ == "__main__":
    main()
