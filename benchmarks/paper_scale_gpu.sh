#!/usr/bin/env bash
# The GPU run of benchmarks/paper_scale.py, in one command from the repository root:
#
#     OUT=/some/folder bash benchmarks/paper_scale_gpu.sh
#
# Needs the wheels in .whl/ (ignored by git, carried to the machine) of what the GPU machine lacks:
# baal 2.1.0 and structlog 22.3.0 (the baal comparison) and imagecodecs (imported by alseg_utils.data):
#
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#         -d .whl baal==2.1.0 structlog==22.3.0 imagecodecs==2026.3.6
#
# They go to /tmp/site, leaving the machine's packages alone; the project is not installed (PYTHONPATH=.).
# Writes $OUT/paper_scale.json and $OUT/paper_scale.log. About 3 minutes on one H200 (6 at most).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/paper_scale}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || for wheel in .whl/*.whl; do python3 -m zipfile -e "$wheel" /tmp/site; done  # no pip: a wheel is a zip
export PYTHONPATH=/tmp/site:.
nvidia-smi -L
PYTHONUNBUFFERED=1 python3 -m benchmarks.paper_scale --device cuda --out "$OUT/paper_scale.json" 2>&1 \
  | tee "$OUT/paper_scale.log"
