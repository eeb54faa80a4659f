#!/usr/bin/env bash
# Set up (if needed) and open JupyterLab on the quick-start notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/jupyter lab notebooks/quickstart.ipynb "$@"
