#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, planned for under 10 minutes on one H200 (the kind lent now; timings
# from the 2026-11-28 call on one: repository 29 s, an InceptionV3 variant 150-185 s with a cold compile cache).
# The 2026-11-28 call (bench/reference/gpu_check_h200_2026-11-28*.json) measured InceptionV3 under CUDA graphs at
# 4,414 images/s, with SGD's fused kernel at 3,286 and with the padded stem as well at 3,246. Now, side by side:
#   1. ShortCNN under CUDA graphs, so that the protocol's hours can be given for this GPU too (it is cheap);
#   2. InceptionV3 under CUDA graphs, the baseline on this machine;
#   3. InceptionV3 under torch.compile's max-autotune mode (CUDA graphs too; inductor times Triton templates against
#      cuDNN for each convolution and tunes its generated kernels, inductor's max-pool backward among them, 12% of
#      the GPU time on an H100), never timed here; its compilation takes longer by an unknown amount, and the call's
#      limit may cut it (gpu_check.log then still holds when it started);
#   4. as 2, with inductor tuning each generated kernel's block sizes (+coordinate-descent;
#      pytorch/pytorch#103111 reports it turning slow channels-last max-pool backward kernels into fast ones), if
#      the budget lets it start.  The padded stem alone is left out: with the fused SGD it cost 1.2% more.
# Each variant now also records its optimiser step alone (optimizer_step_ms), the default SGD's here, to set beside
# the 15 ms a step that the fused SGD added on 2026-11-28.
# Usage: OUT=/some/dir bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
timeout "${CHECK_S:-570}" "$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 330 --out "$OUT" \
  --end-to-end-models \
  --variants shortcnn:reduce-overhead inception_v3:reduce-overhead inception_v3:max-autotune \
             inception_v3:reduce-overhead+coordinate-descent 2>&1 | tee "$OUT/gpu_check.log"
exit 0
