#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, planned for under 10 minutes on one H100 (timings estimated from the
# 2026-11-27 call's section times: repository 27 s, an InceptionV3 variant 133-151 s with a cold compile cache);
# results under $OUT, each section written as it finishes.
# InceptionV3 under CUDA graphs fed by DeviceCache (the target: 4,000 images/s; 3,952 on 2026-11-27), side by side:
#   1. with the stem padded to 8 channels and SGD's fused kernel (+pad-stem=8+fused-sgd): ShortCNN's 3-channel stem
#      ran a cuDNN kernel without tensor cores that took 25% of its GPU time, and padding gained it 1.3-3.0%;
#      the fused SGD step is one launch for InceptionV3's 284 parameter tensors;
#   2. neither (the baseline, same machine);
#   3. as 1, with inductor tuning each generated kernel's block sizes (+coordinate-descent: inductor's max-pool
#      backward, 12% of the GPU time, and the fused batch-norm and activation kernels are its kernels), if the
#      budget lets it start; its compilation takes longer by an unknown amount, and the call's limit may cut it
#      (gpu_check.log then still holds when it started and, once measured, its training rates).
# Usage: OUT=/some/dir bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
timeout "${CHECK_S:-570}" "$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 330 --out "$OUT" \
  --end-to-end-models \
  --variants inception_v3:reduce-overhead+pad-stem=8+fused-sgd inception_v3:reduce-overhead \
             inception_v3:reduce-overhead+pad-stem=8+fused-sgd+coordinate-descent 2>&1 | tee "$OUT/gpu_check.log"
exit 0
