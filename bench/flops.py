"""Arithmetic of the GPU targets (#5): FLOPs per image of each model, and what the measured and target rates
mean in tensor-core throughput.

    python bench/flops.py [--rates bench/reference/gpu_check_h100_reduce_overhead_2026-11-26.json]

Counts the FLOPs of one training step (forward + backward; the SGD update is negligible) and one evaluation
forward per image with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, two
FLOPs a multiply-add) on the CPU: RGB 120x120, 43 classes, InceptionV3 resized to 299 inside the model.  With
the training rates ``bench/gpu_check.py`` measured on a GPU it gives the achieved TFLOP/s and their share of
the H100 SXM's dense BF16 tensor-core peak (989 TFLOP/s, NVIDIA's H100 datasheet: 1,979 with 2:4 sparsity).
It also solves for the InceptionV3 rate at which the paper's protocol fits 8 GPU-hours, given ShortCNN's
measured rates, with the protocol arithmetic of ``bench/gpu_check.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import publish  # noqa: E402
from gpu_check import EPOCHS, SEEDS, TRAIN, VALIDATION, best_rates, protocol_hours  # noqa: E402

from harness.models import build_model  # noqa: E402

RATES = ROOT / "bench" / "reference" / "gpu_check_h100_reduce_overhead_2026-11-26.json"
"""The measured rates used by default: ``bench/gpu_check.py`` on one H100, InceptionV3 with CUDA graphs."""

H100_BF16_DENSE_TFLOPS = 989.0
TARGETS = {"shortcnn": 50_000, "inception_v3": 4_000}  # training images/s on one H100 (#5)
PROTOCOL_HOURS = 8.0


def flops_per_image(name: str, images: int = 4) -> dict[str, float]:
    """GFLOPs per image: a training step, an evaluation forward, and the training step by operator."""
    torch.manual_seed(0)
    model = build_model(name, 3, 43).model
    x = torch.randn(images, 3, 120, 120)
    with FlopCounterMode(display=False) as train:
        model.train()
        model(x).float().sum().backward()
    with FlopCounterMode(display=False) as evaluation, torch.no_grad():
        model.eval()
        model(x)
    by_op: dict[str, float] = defaultdict(float)
    for op, count in train.get_flop_counts()["Global"].items():
        by_op[str(op).split(".")[1]] += count / images / 1e9
    return {"train": train.get_total_flops() / images / 1e9, "eval": evaluation.get_total_flops() / images / 1e9,
            **{f"train:{op}": v for op, v in sorted(by_op.items())}}  # fmt: skip


def measured_rates(path: Path) -> dict[str, dict[str, float]]:
    """The train and evaluation rates of each model's fastest variant in a gpu_check.json."""
    return best_rates(json.loads(path.read_text()))


def inception_rate_for(hours: float, rates: dict[str, dict[str, float]]) -> float:
    """InceptionV3 training images/s at which the whole protocol takes ``hours``, other rates as measured."""
    spare = hours - protocol_hours({"shortcnn": rates["shortcnn"]})["shortcnn"]
    evaluation = sum(EPOCHS * VALIDATION[c] / rates["inception_v3"]["eval"] for c in VALIDATION) / 3600
    images = SEEDS["inception_v3"] * EPOCHS * sum(TRAIN.values())
    return images / ((spare - SEEDS["inception_v3"] * evaluation) * 3600)


def tflops(gflop_per_image: float, images_per_s: float) -> str:
    value = gflop_per_image * images_per_s / 1e3
    return f"{value:,.0f} ({100 * value / H100_BF16_DENSE_TFLOPS:.1f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=Path, default=RATES)
    args = parser.parse_args()
    rates = measured_rates(args.rates)
    needed = inception_rate_for(PROTOCOL_HOURS, rates)
    rows, notes = [], []
    for name in SEEDS:
        flops = flops_per_image(name)
        measured = rates[name]["train"]
        target = TARGETS[name]
        rows.append([name, f"{flops['train']:.3f}", f"{flops['eval']:.3f}", f"{measured:,.0f}",
                     tflops(flops["train"], measured), f"{target:,}", tflops(flops["train"], target)])  # fmt: skip
        split = ", ".join(f"{k.split(':')[1]} {v:.3f}" for k, v in flops.items() if k.startswith("train:"))
        notes.append(f"{name} training GFLOP/image by operator: {split}")
    note = (f"; FLOPs counted on the CPU, rates from `{args.rates.relative_to(ROOT)}`; TFLOP/s in brackets as a "
            f"share of the H100's dense BF16 peak ({H100_BF16_DENSE_TFLOPS:,.0f}). {'; '.join(notes)}. With "
            f"ShortCNN as measured, the protocol fits {PROTOCOL_HOURS:.0f} GPU-hours once InceptionV3 trains at "
            f"{needed:,.0f} images/s ({tflops(flops_per_image('inception_v3')['train'], needed)} TFLOP/s)")  # fmt: skip
    publish("flops: what the GPU rates mean", "python bench/flops.py", note,
            ["model", "GFLOP/image, train step", "GFLOP/image, eval", "measured train img/s",
             "measured TFLOP/s", "target img/s", "target TFLOP/s"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
