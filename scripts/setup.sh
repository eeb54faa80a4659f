#!/usr/bin/env bash
# Set up everything cnn-widgets needs on a fresh Debian machine, idempotently:
# system packages (Chromium for browser tests, Fashion-MNIST for the shipped
# model's accuracy test), the frontend's Node packages and its build (js/ bundled
# into cnn_widgets/bundle/), a virtual environment in .venv, and the package with
# its test extras. Safe to run again; it skips what is already there, except the
# frontend build, which takes well under a second and so always runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The frontend: Node.js 20+ and npm build it (esbuild) and test it (vitest).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: Node.js 20 or newer and npm are needed to build the widgets' JavaScript (js/)." >&2
  echo "setup: install them (https://nodejs.org, or Debian 13's 'nodejs npm' packages) and run this again." >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js $(node --version) is too old to build the widgets' JavaScript; install Node.js 20 or newer." >&2
  exit 1
fi
# npm ci installs exactly package-lock.json; again only when the lock file changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing the frontend's Node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build -- --quiet

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
