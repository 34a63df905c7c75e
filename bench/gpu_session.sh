#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, planned for under 10 minutes on one H100 (timings estimated from the
# 2026-11-27 call's section times: repository 27 s, an InceptionV3 variant 133-151 s with a cold compile cache);
# results under $OUT, each section written as it finishes.
#   1. InceptionV3 under CUDA graphs fed by DeviceCache with the stem padded to 8 channels (+pad-stem=8: ShortCNN's
#      3-channel stem ran a non-tensor-core cuDNN kernel that took 25% of its GPU time, and padding gained 1.3-3.0%),
#      then without (the baseline, same machine: 3,952 images/s on 2026-11-27; the target is 4,000).
#   2. If at least 150 s are left of the call's 590: gpu_tune, InceptionV3's step on a batch in place with SGD's
#      fused kernel (one launch for its 284 parameter tensors) and with --pad-stem 8, with their costliest kernels.
# Usage: OUT=/some/dir bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
timeout "${CHECK_S:-480}" "$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 250 --out "$OUT" \
  --end-to-end-models \
  --variants inception_v3:reduce-overhead+pad-stem=8 inception_v3:reduce-overhead 2>&1 | tee "$OUT/gpu_check.log"
if (( SECONDS <= 590 - 150 )); then
  timeout $(( 590 - SECONDS )) "$PY" bench/gpu_tune.py --budget-s 60 --seconds 4 --out "$OUT" \
    --only "inception_v3 reduce-overhead fused-sgd" "inception_v3 reduce-overhead pad-stem=8" 2>&1 \
    | tee "$OUT/gpu_tune.log"
fi
exit 0
