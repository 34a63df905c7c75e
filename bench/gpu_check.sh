#!/usr/bin/env bash
# GPU check (run on a machine with a GPU, under 5 minutes): training-step throughput of ShortCNN and
# InceptionV3 (AMP), loader throughput against step throughput, peak GPU memory. Prints a summary and appends
# it to BENCHMARKS.md.  Usage: bash bench/gpu_check.sh [N_PATCHES]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3000}
PY=${PYTHON:-python}
WORK=$(mktemp -d)
$PY -m ben_hub.cli synth "$WORK/archive" -n "$N" --no-s1 --quiet
$PY -m ben_hub.cli build "$WORK/archive" -o "$WORK/repo" --method fast --quiet >/dev/null
$PY - "$WORK/repo" <<'PYEOF'
import json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, ".")
from ben_hub.loader import DeviceCache, LoaderConfig, SplitReader
from harness.models import build_model
sys.path.insert(0, "bench")
from common import publish

repo = Path(sys.argv[1])
assert torch.cuda.is_available(), "no GPU"
device = torch.device("cuda")
rows = []
for model_name, batch, steps in (("shortcnn", 300, 200), ("inception_v3", 200, 60)):
    reader = SplitReader(repo, "train", LoaderConfig(batch_size=batch))
    start = time.perf_counter(); seen = sum(len(x) for x, _ in reader.batches(0, True, 0))
    cpu_rate = seen / (time.perf_counter() - start)
    cache = DeviceCache(reader, device)
    model = build_model(model_name, 3, 43).model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    torch.cuda.reset_peak_memory_stats()
    def run(n):
        done = 0
        while done < n:
            for x, y in cache.batches(done, True, 0):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)).float(), y)
                opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
                done += 1
                if done >= n: break
    run(10); torch.cuda.synchronize()
    start = time.perf_counter(); run(steps); torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    rows.append([model_name, str(batch), f"{rate:,.0f}", f"{cpu_rate:,.0f}",
                 "yes" if cpu_rate < rate else "no", f"{torch.cuda.max_memory_allocated() / 2**30:.1f}"])
publish(f"gpu_check: {torch.cuda.get_device_name(0)}, AMP bf16, device-resident batches",
        "bash bench/gpu_check.sh", "",
        ["model", "batch", "train images/s (GPU)", "CPU loader samples/s (1 core)", "CPU loader would limit",
         "peak GPU GiB"], rows)
PYEOF
rm -rf "$WORK"
