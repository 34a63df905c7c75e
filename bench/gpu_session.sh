#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, about 9 minutes on one H100; results under $OUT.
#   1. gpu_check --quick: ShortCNN under CUDA graphs with and without --pad-stem 8, then InceptionV3 under CUDA
#      graphs with and without --aten-max-pool (each pair side by side on the same machine), batches formed by
#      DeviceCache's fused kernel, batch forming alone eager against fused, one ShortCNN launch end to end;
#   2. gpu_tune: ShortCNN's costliest kernels with and without --pad-stem 8 (no ShortCNN profile exists yet).
# Usage: OUT=/some/dir bash bench/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
"$PY" bench/gpu_check.py --quick --seconds 8 --budget-s 300 --out "$OUT" \
  --variants shortcnn:reduce-overhead shortcnn:reduce-overhead+pad-stem=8 \
             inception_v3:reduce-overhead+aten-max-pool inception_v3:reduce-overhead \
  --end-to-end-models shortcnn --end-to-end-compile reduce-overhead \
  --eval-batches shortcnn:1200 inception_v3:400 2>&1 | tee "$OUT/gpu_check.log"
"$PY" bench/gpu_tune.py --budget-s 60 --seconds 4 --out "$OUT" \
  --only "shortcnn reduce-overhead" "shortcnn reduce-overhead pad-stem=8" 2>&1 | tee "$OUT/gpu_tune.log"
