#!/usr/bin/env bash
# Download the pure-Python wheels the GPU machine lacks (it has CuPy, PyTorch, pytest, hypothesis and
# pytest-benchmark, but not array-api-compat or array-api-strict) into .whl/, for the device tool's
# `carry`. Run here, in the repo root, before scripts/gpu_validate.sh is sent to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "array-api-compat==1.16.0" "array-api-strict==2.6.1"
ls -l .whl
