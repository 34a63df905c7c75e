#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, under 10 minutes on one H100; results under $OUT.
#   1. gpu_tune: ShortCNN's step rate and costliest kernels (no ShortCNN profile exists yet) under CUDA graphs,
#      with and without --pad-stem 8, side by side;
#   2. gpu_check --quick: batch forming alone, eager against fused; InceptionV3 under CUDA graphs without, then
#      with --aten-max-pool (the baseline first: a run cut short by the call's limit keeps the pair's first half
#      and the key number); ShortCNN under CUDA graphs fed by the fused DeviceCache.  No end-to-end launch.
# Each section is written to $OUT as it finishes.  Usage: OUT=/some/dir bash bench/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
"$PY" bench/gpu_tune.py --budget-s 45 --seconds 4 --out "$OUT" \
  --only "shortcnn reduce-overhead" "shortcnn reduce-overhead pad-stem=8" 2>&1 | tee "$OUT/gpu_tune.log"
"$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 300 --out "$OUT" --end-to-end-models \
  --variants inception_v3:reduce-overhead inception_v3:reduce-overhead+aten-max-pool shortcnn:reduce-overhead \
  --eval-batches shortcnn:1200 2>&1 | tee "$OUT/gpu_check.log"
