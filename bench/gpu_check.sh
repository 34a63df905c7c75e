#!/usr/bin/env bash
# GPU check (#5), under 5 minutes on one H100: see bench/gpu_check.py for what it measures.
# Usage: bash bench/gpu_check.sh [ARGS for bench/gpu_check.py]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/gpu_check.py "$@"
