#!/usr/bin/env bash
# Set up (if needed) and run every test: engine, render, widgets, CLI, notebooks
# and the real-browser tests in JupyterLab and Notebook 7 (headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
