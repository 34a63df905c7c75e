#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, planned for under 10 minutes on one H100 (timings estimated from the
# stored runs' section times: repository 36 s, a ShortCNN variant ~30 s, an InceptionV3 variant ~180 s cold);
# results under $OUT, each section written as it finishes.
#   1. ShortCNN end to end (`accelerate launch harness/train.py --device-cache --compile reduce-overhead`, two seeds
#      in one launch): the fixed seconds of a run and of a later seed, which the protocol's 20 ShortCNN runs pay.
#   2. Batch forming alone (eager against fused), then side by side: ShortCNN under CUDA graphs fed by the fused
#      DeviceCache, by the eager one (+eager-batches) and with the stem padded (+pad-stem=8); InceptionV3 under CUDA
#      graphs with --aten-max-pool, then without (the baseline, same machine), then both knobs with --pad-stem 8 if
#      the budget lets it start.
#   3. If at least 75 s are left of the call's 590: gpu_tune, ShortCNN's costliest kernels with and without
#      --pad-stem 8.
# Usage: OUT=/some/dir bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
timeout "${CHECK_S:-560}" "$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 330 --out "$OUT" \
  --end-to-end-models shortcnn --end-to-end-compile reduce-overhead \
  --variants shortcnn:reduce-overhead shortcnn:reduce-overhead+eager-batches shortcnn:reduce-overhead+pad-stem=8 \
             inception_v3:reduce-overhead+aten-max-pool inception_v3:reduce-overhead \
             inception_v3:reduce-overhead+aten-max-pool+pad-stem=8 \
  --eval-batches shortcnn:1200 2>&1 | tee "$OUT/gpu_check.log"
if (( SECONDS <= 590 - 75 )); then
  timeout $(( 590 - SECONDS )) "$PY" bench/gpu_tune.py --budget-s 20 --seconds 3 --out "$OUT" \
    --only "shortcnn reduce-overhead" "shortcnn reduce-overhead pad-stem=8" 2>&1 | tee "$OUT/gpu_tune.log"
fi
exit 0
