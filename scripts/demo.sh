#!/usr/bin/env bash
# Set up (if needed) and open JupyterLab on the quick-start notebook.
#
#   bash scripts/demo.sh                          # opens a browser where there is one
#   bash scripts/demo.sh --no-browser --port 9000 # extra arguments go to jupyter lab
#
# Prints the exact address to open (with its token) before JupyterLab starts;
# JupyterLab serves the notebooks/ folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

args=("$@")
# Jupyter refuses to run as root unless told; containers, cloud notebooks and
# fresh machines often are root.
if [ "$(id -u)" = 0 ]; then
  echo "demo: running as root, so JupyterLab gets --allow-root"
  args+=(--allow-root)
fi

# The port and token are chosen here, so the address printed below is the one
# that works. A --port given by the caller is used as it is.
port=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --port=*|--ServerApp.port=*) port="${args[$i]#*=}" ;;
    --port|--ServerApp.port) port="${args[$((i + 1))]:-}" ;;
  esac
done
if [ -z "$port" ]; then
  port=$(.venv/bin/python - <<'PY'
import socket
for port in range(8888, 8988):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
PY
)
  args+=(--port="$port")
fi
export JUPYTER_TOKEN=${JUPYTER_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))')}

echo "demo: open http://localhost:$port/lab/tree/quickstart.ipynb?token=$JUPYTER_TOKEN"
exec .venv/bin/jupyter lab notebooks/quickstart.ipynb --ServerApp.port_retries=0 "${args[@]}"
