#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, planned for under 10 minutes on one H200 (the kind lent now; timings
# from the 2026-11-28 call on one: repository 29 s, an InceptionV3 variant 150-185 s with a cold compile cache).
# The 2026-11-28 call (bench/reference/gpu_check_h200_2026-11-28*.json) measured InceptionV3 under CUDA graphs at
# 4,414 images/s, with SGD's fused kernel at 3,286 and with the padded stem as well at 3,246. Now, side by side:
#   1. ShortCNN under CUDA graphs, so that the protocol's hours can be given for this GPU too (it is cheap);
#   2. InceptionV3 under CUDA graphs, the baseline on this machine;
#   3. as 2, with inductor tuning each generated kernel's block sizes (+coordinate-descent: inductor's max-pool
#      backward, 12% of the GPU time on an H100, and the fused batch-norm and activation kernels are its kernels;
#      pytorch/pytorch#103111 reports it turning slow channels-last max-pool backward kernels into fast ones);
#      its compilation takes longer by an unknown amount;
#   4. as 2, with the stem padded to 8 channels alone (until now timed only together with the fused SGD), if the
#      budget lets it start.
# Usage: OUT=/some/dir bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
timeout "${CHECK_S:-570}" "$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 330 --out "$OUT" \
  --end-to-end-models \
  --variants shortcnn:reduce-overhead inception_v3:reduce-overhead inception_v3:reduce-overhead+coordinate-descent \
             inception_v3:reduce-overhead+pad-stem=8 2>&1 | tee "$OUT/gpu_check.log"
exit 0
