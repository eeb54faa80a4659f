#!/usr/bin/env bash
# Set up (if needed) and run every test: the JavaScript unit tests (vitest, js/tests/),
# then with pytest the engine, render, widgets, CLI, notebooks and the real-browser
# tests in JupyterLab and Notebook 7 (headless Chromium). A failing JavaScript test
# fails the run before pytest starts; pytest's summary is the last line printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test --silent
exec .venv/bin/python -m pytest "$@"
