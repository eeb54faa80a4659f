#!/usr/bin/env bash
# Run every benchmark and refresh BENCHMARKS.md (about 20 minutes on 2 quiet CPU cores).
# Lucent, the peer of the activation-maximization benchmark, pins an old kornia, so
# it goes to its own folder (.bench-site) instead of the project's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -d .bench-site/lucent ]; then
  PIP_FIND_LINKS="" .venv/bin/python -m pip install -q --no-deps --target .bench-site \
    torch-lucent==0.1.8 kornia==0.4.1 decorator
fi
.venv/bin/python benchmarks/bench_feature_maps.py --threads "${THREADS:-1}"
.venv/bin/python benchmarks/bench_cam.py
PYTHONPATH=.bench-site .venv/bin/python benchmarks/bench_maximize.py --threads "${THREADS:-1}"
.venv/bin/python -m pip install -q "horama>=0.3" "einops>=0.6"  # the bench extra
PYTHONPATH=.bench-site:$PWD .venv/bin/python benchmarks/bench_optvis_peers.py --threads "${THREADS:-1}"
.venv/bin/python benchmarks/bench_memory.py
.venv/bin/python benchmarks/bench_step_cost.py --threads "${THREADS:-1}"
.venv/bin/python benchmarks/bench_examples.py
.venv/bin/python benchmarks/bench_browser.py
