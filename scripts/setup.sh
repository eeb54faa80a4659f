#!/usr/bin/env bash
# Set up everything cnn-widgets needs on a fresh Debian machine, idempotently:
# system packages (Chromium for browser tests, Fashion-MNIST for the shipped
# model's accuracy test), a virtual environment in .venv, and the package with
# its test extras. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# The machine-wide pip config points at a local CPU-only torch wheel that has
# no matching torchvision; resolve torch and torchvision as a pair from the
# registry instead.
export PIP_FIND_LINKS=""
extras=${CNN_WIDGETS_EXTRAS:-test}
stamp=".venv/.cnn-widgets-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing cnn-widgets[$extras] into .venv (first run downloads torch, a few GB)"
  # (the machine-wide config also lists local mirror folders; pip's notes about the
  # missing ones are noise)
  { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[$extras]"; } 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  touch "$stamp"
fi
