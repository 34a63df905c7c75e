#!/usr/bin/env bash
# Wheels for the GPU machine (Python 3.12; nothing can be fetched there) of the packages ben-hub and its harness
# import that the machine's image lacks or holds at another version (its package list: the device tool's KINDS.md),
# at the versions this project's CI installs.  Written to .whl/ (kept out of git), carried with `carry: [".whl"]`,
# installed there first, as the device tool's README says (this ran on an H200 on 2026-11-28, 7.7 MB of wheels, the
# image's pyarrow 25.0.1 and torch 2.11.0 kept):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site || exit
# then, in the same call:  export PYTHONUNBUFFERED=1; OUT=$OUT bash bench/gpu_session.sh
# A later call on the same warm machine finds /tmp/site there: [ -d /tmp/site/datasets ] skips the install.
# Usage (here, with network to PyPI): bash bench/device_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  datasets==5.2.0 evaluate==0.4.6 huggingface-hub==2.4.0 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 \
  click==8.5.1 dill==0.4.1 multiprocess==0.70.19 isal==1.9.1 iterative-stratification==0.1.9 zstandard==0.25.0
du -sh .whl && ls .whl
