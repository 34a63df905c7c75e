"""Training-step rate under each ``torch.compile`` mode and cuDNN setting, for the two GPU targets of #5 still
unmet (InceptionV3 4,000 images/s; the protocol in 8 GPU-hours, which ShortCNN at twice its rate would meet).

    python bench/gpu_tune.py [--budget-s 420] [--seconds 6] [--out DIR] [--only NAME ...]
    python bench/gpu_tune.py --report bench/reference/gpu_tune_h100_inception_2026-11-26.json   # no GPU needed

Each variant is the harness's own step (``harness.train.train_epoch``: bf16 autocast through accelerate,
channels-last, SGD) on one batch of the paper's size already on the GPU, so only the model's kernels are
timed, then profiled for one call (the kernels taking the most GPU time, with their shares);
``bench/gpu_check.py`` showed batches from ``DeviceCache`` cost 1-5% on top.  Variants run in the order
listed, baseline first for each model (on the same machine, in the same call), and each is written to
``gpu_tune.json`` as it finishes; no new variant starts after ``--budget-s`` seconds, so a cut run keeps what
it measured.  ``--cpu-smoke`` runs every variant for one tiny step on the CPU (checks the script only).
``--report`` turns a stored ``gpu_tune.json`` into a BENCHMARKS.md section (the rates and each variant's three
costliest kernels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accelerate import Accelerator  # noqa: E402
from common import publish  # noqa: E402
from gpu_check import BATCH, Fixed, peak_gib, sync, timed  # noqa: E402

from harness.config import KernelChoices, TrainConfig  # noqa: E402
from harness.models import build_model  # noqa: E402
from harness.train import configure_backends, train_epoch  # noqa: E402

STEPS_PER_CALL = 20


@dataclass(frozen=True)
class Variant:
    model: str
    compile: str | None = None  # a torch.compile mode, None for eager
    deterministic: bool = False  # False: cuDNN benchmarks its kernels per shape (the harness's default)
    fused: bool = False  # SGD's fused kernel (one launch for all parameters) instead of its foreach default
    all_algorithms: bool = False  # cuDNN's benchmark tries every convolution algorithm (benchmark_limit 0), not 10
    conv_1x1_as_mm: bool = False  # inductor turns 1x1 convolutions (a third of Inception's) into matrix products
    aten_max_pool: bool = False  # max pools run ATen's kernels, opaque to inductor (harness/pooling.py)
    pad_stem: int | None = None  # the stem's 3 input channels zero-padded to this many (harness/models.py)
    coordinate_descent: bool = False  # inductor tunes each Triton kernel's block sizes (longer compile)

    @property
    def name(self) -> str:
        flags = [("deterministic", self.deterministic),
                 ("all-algorithms", self.all_algorithms), ("conv-1x1-as-mm", self.conv_1x1_as_mm)]  # fmt: skip
        knobs = self.kernels.names
        return " ".join([self.model, self.compile or "eager", *(flag for flag, on in flags if on), *knobs])

    @property
    def kernels(self) -> KernelChoices:
        return KernelChoices(
            aten_max_pool=self.aten_max_pool,
            pad_stem=self.pad_stem,
            fused_sgd=self.fused,
            coordinate_descent=self.coordinate_descent,
        )


VARIANTS = (  # the cheap and likely first: a budget-cut run keeps the most telling ones (or --only names some)
    Variant("inception_v3", None),  # the check's 2,205 eager
    Variant("inception_v3", None, fused=True),  # 284 parameter tensors: the optimiser step in one kernel
    Variant("shortcnn", "default"),  # the check's 58,308 images/s
    Variant("shortcnn", "default", fused=True),
    Variant("inception_v3", "max-autotune-no-cudagraphs"),  # the check's default mode: 2,986 after 152 s
    Variant("shortcnn", "max-autotune-no-cudagraphs"),  # Triton convolution templates against cuDNN
    Variant("shortcnn", "max-autotune"),  # and CUDA graphs
    Variant("shortcnn", None),
    Variant("shortcnn", None, deterministic=True),  # what cuDNN's benchmarking is worth
    Variant("inception_v3", None, deterministic=True),
    Variant("inception_v3", "reduce-overhead"),  # CUDA graphs: 3,920 and 3,952 in gpu_check on two H100s
    Variant("inception_v3", "reduce-overhead", all_algorithms=True, conv_1x1_as_mm=True),
    Variant("inception_v3", "reduce-overhead", aten_max_pool=True),  # inductor's max-pool backward: 12% of the GPU
    Variant("inception_v3", "reduce-overhead", fused=True),
    # batch norm, pooling and concatenation, the Triton half of the compiled step, with tuned block sizes
    Variant("inception_v3", "reduce-overhead", coordinate_descent=True),
    Variant("inception_v3", "reduce-overhead", aten_max_pool=True, coordinate_descent=True),
    # 3-channel stems miss the 8-channel alignment of tensor-core kernels: ShortCNN's ran a cuDNN kernel without
    # tensor cores, 24.6% of its GPU time, and padded gained 3.0% (2026-11-27); InceptionV3's not yet measured
    Variant("shortcnn", "reduce-overhead"),
    Variant("shortcnn", "reduce-overhead", pad_stem=8),
    Variant("shortcnn", "reduce-overhead", pad_stem=4),
    Variant("inception_v3", "reduce-overhead", pad_stem=8),
    Variant("inception_v3", "reduce-overhead", aten_max_pool=True, pad_stem=8),
)


def measure(variant: Variant, accelerator: Accelerator, seconds: float) -> dict[str, Any]:
    """Compile/warm-up seconds, training images/s, GPU busy and peak memory of one variant."""
    config = TrainConfig(repo=".", model=variant.model, compile=variant.compile,
                         deterministic=variant.deterministic, max_batches=STEPS_PER_CALL)  # fmt: skip
    configure_backends(config)
    torch.backends.cudnn.benchmark_limit = 0 if variant.all_algorithms else 10  # 10: PyTorch's default
    torch._inductor.config.conv_1x1_as_mm = variant.conv_1x1_as_mm
    torch.manual_seed(0)
    model = variant.kernels.apply(build_model(variant.model, 3, 43).model).to(memory_format=torch.channels_last)
    optimizer = variant.kernels.optimizer(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    if variant.compile:
        model = torch.compile(model, mode=variant.compile)  # type: ignore[assignment]
    batch = BATCH[variant.model]
    x = torch.randn(batch, 3, 120, 120, device=accelerator.device).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch, 43, device=accelerator.device) < 0.1).float()
    source = Fixed(x, y, STEPS_PER_CALL)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(2):  # compilation, cuDNN's per-shape benchmarking, CUDA graph capture
        train_epoch(model, optimizer, source, accelerator, 0, config)
    sync()
    warmup = time.perf_counter() - start
    rate, busy = timed(lambda: train_epoch(model, optimizer, source, accelerator, 0, config)[1], seconds)
    kernels = top_kernels(lambda: train_epoch(model, optimizer, source, accelerator, 0, config))
    return {**asdict(variant), "batch": batch, "warmup_s": warmup, "train_images_per_s": rate,
            "gpu_busy_percent": busy, "peak_gpu_gib": peak_gib(), "top_kernels": kernels}  # fmt: skip


def top_kernels(work: Callable[[], Any], count: int = 12) -> list[dict[str, Any]]:
    """The kernels (CPU ops without a GPU) that took the most time during ``work``: name, share, calls."""
    on_gpu = torch.cuda.is_available()
    activity = torch.profiler.ProfilerActivity.CUDA if on_gpu else torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[activity]) as profile:
        work()
        sync()
    events = [e for e in profile.key_averages() if on_gpu or e.cpu_parent is None]
    spent = [(getattr(e, "self_device_time_total" if on_gpu else "self_cpu_time_total", 0.0), e) for e in events]
    total = sum(t for t, _ in spent) or 1.0
    ranked = sorted(spent, key=lambda pair: -pair[0])[:count]
    return [{"name": e.key[:160], "share": t / total, "calls": e.count} for t, e in ranked]


def report(path: Path) -> None:
    """A BENCHMARKS.md section from a stored ``gpu_tune.json``: one row per variant."""
    record = json.loads(path.read_text())
    rows = []
    for v in record["variants"]:
        kernels = "; ".join(f"{k['name'][:48]} {100 * k['share']:.1f}%" for k in v["top_kernels"][:3])
        busy = f"{v['gpu_busy_percent']:.0f}%" if v["gpu_busy_percent"] is not None else "?"
        rows.append([Variant(**{f: v[f] for f in Variant.__dataclass_fields__ if f in v}).name, str(v["batch"]),
                     f"{v['train_images_per_s']:,.0f}", busy, f"{v['warmup_s']:.0f}",
                     f"{v['peak_gpu_gib']:.1f}", kernels])  # fmt: skip
    note = (
        f"; results of a run on {record['device']}, torch {record['torch']} (bf16 autocast, channels-last, "
        f"one batch already on the GPU, {STEPS_PER_CALL} steps a call), stored in `{path.relative_to(ROOT)}`; "
        f"errors: {record['errors'] or 'none'}; not started (time budget): {record['skipped'] or 'none'}"
    )
    header = ["variant", "batch", "train img/s", "GPU busy", "warm-up s", "peak GiB", "costliest kernels (GPU time)"]
    publish("gpu_tune: training-step variants", f"python bench/gpu_tune.py --report {path.relative_to(ROOT)}",
            note, header, rows)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no variant after this many seconds")
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per variant")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--cpu-smoke", action="store_true", help="no GPU: one tiny step per variant on the CPU")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[v.name for v in VARIANTS],
                        help="run these variants (by name, in this order) instead of all")  # fmt: skip
    parser.add_argument("--report", type=Path, metavar="JSON", help="append a stored run's section to BENCHMARKS.md")
    args = parser.parse_args()
    if args.report:
        report(args.report.resolve())
        return
    if not torch.cuda.is_available() and not args.cpu_smoke:
        sys.exit("gpu_tune: no CUDA device; run it on a machine with a GPU")
    if args.cpu_smoke:
        global STEPS_PER_CALL
        STEPS_PER_CALL = 1
        BATCH.update(shortcnn=4, inception_v3=2)
    accelerator = Accelerator(mixed_precision="bf16", cpu=args.cpu_smoke)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    record: dict[str, Any] = {"device": device, "torch": torch.__version__, "variants": [], "errors": {}, "skipped": []}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    chosen = [next(v for v in VARIANTS if v.name == name) for name in args.only] if args.only else VARIANTS
    for variant in chosen:
        if time.perf_counter() - began > args.budget_s:
            record["skipped"].append(variant.name)
            continue
        try:
            with variant.kernels.active():
                result = measure(variant, accelerator, 1e-3 if args.cpu_smoke else args.seconds)
            record["variants"].append(result)
            print(f"{variant.name}: {result['train_images_per_s']:,.0f} images/s, warm-up {result['warmup_s']:.0f} s,"
                  f" busy {result['gpu_busy_percent']}, peak {result['peak_gpu_gib']:.1f} GiB", flush=True)  # fmt: skip
        except Exception as err:  # one failing mode must not lose the others
            record["errors"][variant.name] = f"{type(err).__name__}: {err}"[:2000]
            print(f"{variant.name}: {record['errors'][variant.name][:300]}", flush=True)
        accelerator.free_memory()
        torch._dynamo.reset()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        (out / "gpu_tune.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
