#!/usr/bin/env bash
# The next GPU measurements of #5 in one call, planned for under 10 minutes on one H100 (not yet run there; the
# timings below are estimates from the stored runs' warm-up and step times); results under $OUT.
#   1. gpu_check --quick (about 8.5 min, estimated): batch forming alone, eager against fused; then, side by side on the same
#      machine, ShortCNN under CUDA graphs fed by the fused DeviceCache, by the eager one (+eager-batches) and with
#      the stem padded (+pad-stem=8); InceptionV3 under CUDA graphs, then with --aten-max-pool.  ShortCNN's variants
#      are cheap and go first; the budget lets both InceptionV3 variants start.  No end-to-end launch.
#   2. if the call's time allows, gpu_tune: ShortCNN's costliest kernels with and without --pad-stem 8.
# Each section is written to $OUT as it finishes.  Usage: OUT=/some/dir bash bench/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
"$PY" bench/gpu_check.py --quick --seconds 6 --budget-s 320 --out "$OUT" --end-to-end-models \
  --variants shortcnn:reduce-overhead shortcnn:reduce-overhead+eager-batches shortcnn:reduce-overhead+pad-stem=8 \
             inception_v3:reduce-overhead inception_v3:reduce-overhead+aten-max-pool \
  --eval-batches shortcnn:1200 2>&1 | tee "$OUT/gpu_check.log"
timeout 60 "$PY" bench/gpu_tune.py --budget-s 20 --seconds 3 --out "$OUT" \
  --only "shortcnn reduce-overhead" "shortcnn reduce-overhead pad-stem=8" 2>&1 | tee "$OUT/gpu_tune.log" || true
