#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md in one command (issue 19). On a machine with a
# CUDA GPU, after `bash scripts/setup.sh`, it runs in under 8 minutes and rewrites
# the GPU section of BENCHMARKS.md; arguments pass through to benchmarks/bench_gpu.py.
#   bash benchmarks/gpu.sh          # the real run (needs CUDA)
#   bash benchmarks/gpu.sh --dry    # every step on the CPU at tiny sizes, into a temporary file
# PYTHON=/path/to/python picks another interpreter than the setup's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" benchmarks/bench_gpu.py "$@"
