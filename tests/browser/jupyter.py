"""Drive a real Jupyter frontend (JupyterLab 4 or Notebook 7) in headless Chromium.

The browser tests use these helpers the way a person uses Jupyter: start a
server, open a notebook, run its cells, look at and click the widget, then ask
Python what it now believes. The pytest fixtures in ``conftest.py`` wrap them.

    with running_server("lab") as server:
        open_notebook(page, server, ["w = MyWidget()\\nw"])
        wait_for_output(page, "button").click()
        assert run_code(page, "print(w.value)") == "1"

Cells are run through the frontend's own commands (``notebook:run-all-cells``,
``notebook:run-cell``), reached through ``window.jupyterapp``: the same code
path as the Run menu, and free of the focus and keyboard races of typing
Shift+Enter into an editor. Outputs are read from the notebook model, so a
traceback anywhere raises ``NotebookError`` carrying its text.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
from playwright.sync_api import Browser, Locator, Page, Playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

FRONTENDS = ("lab", "notebook")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

# Generous for a loaded two-core machine; a healthy run uses a fraction of each.
SERVER_START_TIMEOUT_S = 60.0
PAGE_LOAD_TIMEOUT_MS = 60_000
KERNEL_READY_TIMEOUT_MS = 90_000
RUN_TIMEOUT_MS = 120_000
OUTPUT_TIMEOUT_MS = 30_000

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookError(AssertionError):
    """A cell raised in the kernel, or the notebook did not get where a test expected."""


def artifact_path(name: str) -> Path:
    """Where a test saves a screenshot or other artifact: ``<repo>/test-artifacts/<name>``.

    >>> artifact_path("counter-lab.png").parent.name
    'test-artifacts'
    """
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR / name


# --- the Jupyter server --------------------------------------------------------------


@dataclass
class JupyterServer:
    """A running ``jupyter-lab`` or ``jupyter-notebook`` process with a private config."""

    frontend: str
    url: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen
    token: str = ""  # empty for the servers started here; the demo script's has one

    def notebook_url(self, path: str) -> str:
        """The page that shows notebook ``path`` (relative to ``root_dir``) in this frontend."""
        quoted = urllib.parse.quote(path)
        if self.frontend == "lab":
            # ?reset starts from an empty workspace, so notebooks opened by
            # earlier tests are not reopened (and their kernels not restarted).
            return f"{self.url}/lab/tree/{quoted}?reset"
        return f"{self.url}/notebooks/{quoted}"

    def api(self, method: str, path: str, timeout: float = 10.0):
        """Call the server's REST API; returns the decoded JSON body or None."""
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        request = urllib.request.Request(f"{self.url}{path}", method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session and kernel, so the next test starts from a quiet server."""
        for session in self.api("GET", "/api/sessions"):
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log_tail(self, lines: int = 80) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_jupyter_env(home: Path) -> dict[str, str]:
    """Environment for the server: user-level Jupyter and IPython dirs point into
    ``home`` so a developer's settings, kernels and workspaces cannot leak in, while
    the venv's own ``share/jupyter`` (lab extensions for anywidget and ipywidgets, the
    python3 kernelspec) and ``etc/jupyter`` (enabled server extensions) stay on the
    search path, as they are for every Jupyter in this venv."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "IPYTHON"))}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=venv_bin + os.pathsep + env.get("PATH", ""),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "config" / "lab" / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "config" / "lab" / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    # No news feed, no update check, no "Would you like to get notified about
    # official Jupyter news?" toast: the same user settings in both frontends.
    notification = home / "config/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Never write a running test's outputs into a notebook file (the demo test opens
    # the repository's own quickstart.ipynb).
    docmanager = home / "config/lab/user-settings/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
    docmanager.parent.mkdir(parents=True, exist_ok=True)
    docmanager.write_text(json.dumps({"autosave": False}))
    return env


def _server_command(frontend: str, port: int, root_dir: Path) -> list[str]:
    bin_dir = Path(sys.executable).parent
    common = [
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--ServerApp.terminals_enabled=False",
    ]
    if os.geteuid() == 0:  # containers and CI machines often run tests as root
        common.append("--allow-root")
    if frontend == "lab":
        return [
            str(bin_dir / "jupyter-lab"),
            *common,
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
    if frontend == "notebook":
        return [str(bin_dir / "jupyter-notebook"), *common, "--JupyterNotebookApp.expose_app_in_browser=True"]
    raise ValueError(f"unknown frontend {frontend!r}; expected one of {FRONTENDS}")


def wait_until_ready(server: JupyterServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"jupyter {server.frontend} exited with code {server.process.returncode} "
                f"before it served {server.url}:\n{server.log_tail()}"
            )
        try:
            server.api("GET", "/api/status", timeout=2.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"jupyter {server.frontend} did not answer {server.url}/api/status "
                f"within {timeout:.0f} s:\n{server.log_tail()}"
            )
        time.sleep(0.2)


def stop_server(server: JupyterServer) -> None:
    """Shut kernels down through the API (they run in their own process sessions),
    then the server: politely, then by signal, then by force."""
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(Exception):
            server.shutdown_kernels()
        with contextlib.suppress(Exception):
            server.api("POST", "/api/shutdown", timeout=5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _die_with_parent() -> None:
    """Run in the server's child process before exec: on Linux, ask for SIGTERM when
    the test process dies, so a killed pytest run leaves no server behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _launch(frontend: str, home: Path) -> JupyterServer:
    root_dir = home / "root"
    root_dir.mkdir(exist_ok=True)
    log_path = home / "server.log"
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _server_command(frontend, port, root_dir),
            cwd=root_dir,
            env=private_jupyter_env(home),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    return JupyterServer(frontend, f"http://127.0.0.1:{port}", root_dir, log_path, process)


@contextlib.contextmanager
def running_server(frontend: str, timeout: float = SERVER_START_TIMEOUT_S) -> Iterator[JupyterServer]:
    """Start ``jupyter-lab`` (frontend "lab") or ``jupyter-notebook`` ("notebook") from
    this venv on a free 127.0.0.1 port, without token or password, serving a fresh
    temporary directory; wait until it answers; stop it and its kernels on exit.

    >>> with running_server("lab") as server:  # doctest: +SKIP
    ...     server.api("GET", "/api/status")["kernels"]
    0
    """
    home = Path(tempfile.mkdtemp(prefix=f"cnn-widgets-jupyter-{frontend}-"))
    server = None
    try:
        for attempt in range(3):
            server = _launch(frontend, home)
            try:
                wait_until_ready(server, timeout)
                break
            except RuntimeError:
                # Another process took the free port before the server bound it: try another.
                if attempt == 2 or "already in use" not in server.log_tail():
                    raise
                stop_server(server)
        yield server
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


# --- the browser ---------------------------------------------------------------------


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium under Playwright (no browser download)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing; run `bash scripts/setup.sh` to install Debian's chromium")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# Installed before any page script runs: keeps browser-side errors (a widget's ES
# module that throws, an unhandled rejection) so failure messages can show them.
_CAPTURE_CONSOLE_ERRORS = """
if (!window.__cnnWidgetsConsoleErrors) {
  const errors = (window.__cnnWidgetsConsoleErrors = []);
  const original = console.error.bind(console);
  console.error = (...args) => {
    errors.push(args.map((a) => (a && a.stack) || String(a)).join(" "));
    original(...args);
  };
  window.addEventListener("error", (e) => errors.push(String((e.error && e.error.stack) || e.message)));
  window.addEventListener("unhandledrejection", (e) => errors.push("unhandled rejection: " + String((e.reason && e.reason.stack) || e.reason)));
}
"""

# Shared by every script below: find this page's notebook panel in either frontend.
_PRELUDE = """
const app = window.jupyterapp;
function findPanel() {
  const path = window.__cnnWidgetsNotebookPath;
  if (!app) throw new Error("window.jupyterapp is missing: the server must run with expose_app_in_browser");
  if (!path) throw new Error("no notebook on this page: call open_notebook first");
  const mine = (w) => w && w.context && w.context.path === path && w.content && w.content.model;
  if (mine(app.shell.currentWidget)) return app.shell.currentWidget;
  for (const w of app.shell.widgets("main")) if (mine(w)) return w;
  throw new Error(`notebook ${path} is not open on this page`);
}
function withTimeout(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
// ipywidgets sends a model's changes one message at a time: while one is with the
// kernel, later changes wait in the frontend. Code run right after a click could
// otherwise read a stale value, so run_code first waits until every displayed
// widget's changes have been acknowledged by the kernel. This reads ipywidgets 8
// internals; if they move, fail loudly rather than flakily.
async function displayedWidgetModels(panel) {
  const managers = new Set();
  let views = 0;
  for (const cell of panel.content.widgets) {
    if (!cell.outputArea) continue;
    for (const output of cell.outputArea.widgets) {
      for (const child of output.widgets || []) {
        if (child.mimeType !== "application/vnd.jupyter.widget-view+json") continue;
        views += 1;
        if (child._manager && child._manager.promise) managers.add(await child._manager.promise);
      }
    }
  }
  if (views > 0 && managers.size === 0) {
    throw new Error("cannot reach the ipywidgets manager from a widget output (ipywidgets internals changed?)");
  }
  const models = [];
  for (const manager of managers) {
    const settled = await Promise.allSettled(Object.values(manager._models || {}));
    for (const result of settled) if (result.status === "fulfilled") models.push(result.value);
  }
  return models;
}
async function widgetsSynced(panel, ms) {
  const models = await displayedWidgetModels(panel);
  const deadline = Date.now() + ms;
  const unsynced = () => models.filter((m) => m._pending_msgs > 0 || m._msg_buffer);
  while (unsynced().length > 0) {
    if (Date.now() > deadline) throw new Error(`widget changes did not reach the kernel within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
// After a cell, Python asks the views of each widget the cell changed whether anyone is
// in them, and updates the widget's saved picture, which draws its views anew, once one
// answers (cnn_widgets/widgets/static.py). A view shows data-saved-picture="asking" until
// Python's answer came ("owed": the update waits until the person leaves it). The question
// reaches the views before the cell's end does, so waiting here after a cell means a test
// never works on a view about to be replaced. ``states``: the values to wait out.
async function savedPicturesSettled(ms, states) {
  const deadline = Date.now() + ms;
  const selector = states.map((state) => `[data-saved-picture="${state}"]`).join(", ");
  await new Promise((resolve) => setTimeout(resolve, 0));  // a view's "left" goes out on a timer
  while (document.querySelector(selector)) {
    if (Date.now() > deadline) throw new Error(`saved pictures still pending after ${ms} ms: ${selector}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
// A new code cell at the end of the notebook, selected so "notebook:run-cell" runs it
// (after the browser's widget changes have reached the kernel).
async function appendActiveCell(code, ms) {
  const panel = findPanel();
  await widgetsSynced(panel, ms);
  const notebook = panel.content;
  const index = notebook.model.cells.length;
  notebook.model.sharedModel.insertCell(index, { cell_type: "code", source: code });
  app.shell.activateById(panel.id);
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  return { notebook, index };
}
function describeCell(cell, index) {
  const model = cell.model;
  return {
    index,
    cell_type: model.type,
    source: model.sharedModel.getSource(),
    outputs: model.type === "code" ? model.outputs.toJSON() : [],
  };
}
"""


def _script(body: str) -> str:
    return "async (args) => {\n" + _PRELUDE + body + "\n}"


# Synchronous on purpose: wait_for_function treats a returned Promise as truthy.
_PANEL_READY = "() => {" + _PRELUDE + """
try {
  const panel = findPanel();
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return panel.context.isReady && !!kernel && kernel.status === "idle" && kernel.connectionStatus === "connected";
} catch (error) {
  return false;
}
}"""

_RUN_ALL = _script("""
const panel = findPanel();
app.shell.activateById(panel.id);
const ok = await withTimeout(app.commands.execute("notebook:run-all-cells"), args.timeout, "running all cells");
await savedPicturesSettled(args.timeout, ["asking"]);
return { ok, cells: panel.content.widgets.map(describeCell) };
""")

_RUN_NEW_CELL = _script("""
const { notebook, index } = await appendActiveCell(args.code, args.timeout);
const ok = await withTimeout(app.commands.execute("notebook:run-cell"), args.timeout, "running the new cell");
await savedPicturesSettled(args.timeout, ["asking"]);
return { ok, cell: describeCell(notebook.widgets[index], index) };
""")

_START_NEW_CELL = _script("""
const { index } = await appendActiveCell(args.code, args.timeout);
app.commands.execute("notebook:run-cell");  // not awaited: the cell keeps running
return index;
""")

_LEAVE_WIDGETS = _script("""
document.activeElement?.blur();
await savedPicturesSettled(args.timeout, ["asking", "owed"]);
""")

_CELLS = _script("""
const cells = findPanel().content.widgets.map(describeCell);
return { cells, consoleErrors: window.__cnnWidgetsConsoleErrors || [] };
""")


def _output_text(cell: dict) -> str:
    """What the cell printed: stdout, then each result's plain text (not stderr
    warnings, not the text/plain stand-in of a displayed widget)."""
    parts = []
    for output in cell["outputs"]:
        if output["output_type"] == "stream" and output.get("name") == "stdout":
            text = output.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))
        elif output["output_type"] == "execute_result":
            text = output.get("data", {}).get("text/plain", "")
            parts.append((text if isinstance(text, str) else "".join(text)) + "\n")
    return "".join(parts)


def _cell_errors(cells: list[dict]) -> list[str]:
    """Each traceback in these cells, as readable text (ANSI colours stripped)."""
    errors = []
    for cell in cells:
        for output in cell["outputs"]:
            if output["output_type"] == "error":
                traceback = _ANSI_ESCAPE.sub("", "\n".join(output.get("traceback", [])))
                errors.append(
                    f"cell {cell['index']} raised {output.get('ename')}: {output.get('evalue')}\n"
                    f"--- cell source ---\n{cell['source']}\n--- traceback ---\n{traceback}"
                )
    return errors


def _raise_on_error(cells: list[dict], context: str = "") -> None:
    errors = _cell_errors(cells)
    if errors:
        raise NotebookError(context + errors[0])


def console_errors(page: Page) -> list[str]:
    """Errors the page logged (console.error, uncaught exceptions) since it loaded."""
    with contextlib.suppress(Exception):
        return list(page.evaluate("() => window.__cnnWidgetsConsoleErrors || []"))
    return []


# --- notebooks -----------------------------------------------------------------------


def open_notebook(
    page: Page,
    server: JupyterServer,
    cells: list[str],
    name: str | None = None,
    timeout: int = RUN_TIMEOUT_MS,
) -> None:
    """Write a notebook with these code cells into the server's root, open it in the
    server's frontend, wait for its kernel, and run all cells.

    Raises NotebookError with the traceback if a cell raises.

    >>> open_notebook(page, server, ["import math", "print(math.pi)"])  # doctest: +SKIP
    >>> cell_output_text(page, 1)  # doctest: +SKIP
    '3.141592653589793\\n'
    """
    name = name or f"test-{uuid.uuid4().hex[:8]}"
    path = name if name.endswith(".ipynb") else f"{name}.ipynb"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.write(notebook, server.root_dir / path)
    run_notebook_page(page, server.notebook_url(path), path, timeout=timeout, log_tail=server.log_tail)


def run_notebook_page(page: Page, url: str, path: str, timeout: int = RUN_TIMEOUT_MS, log_tail=lambda: "") -> None:
    """Open the notebook page at ``url`` (``path`` is the notebook's path relative to the
    server's root), wait for its kernel, and run all cells; for a server this module did
    not start (the demo script's). The server must expose ``window.jupyterapp``
    (``--LabApp.expose_app_in_browser=True``).

    Raises NotebookError with the traceback if a cell raises.
    """
    page.add_init_script(_CAPTURE_CONSOLE_ERRORS)
    page.add_init_script(f"window.__cnnWidgetsNotebookPath = {json.dumps(path)};")
    page.goto(url, timeout=PAGE_LOAD_TIMEOUT_MS)
    try:
        page.wait_for_function(_PANEL_READY, arg={}, polling=100, timeout=KERNEL_READY_TIMEOUT_MS)
    except PlaywrightTimeoutError as error:
        raise NotebookError(
            f"{path} did not open with an idle kernel within "
            f"{KERNEL_READY_TIMEOUT_MS / 1000:.0f} s\nbrowser errors: {console_errors(page)}\n"
            f"server log:\n{log_tail()}"
        ) from error
    result = page.evaluate(_RUN_ALL, {"timeout": timeout})
    _raise_on_error(result["cells"], context=f"{path}: ")
    if not result["ok"]:
        raise NotebookError(f"{path}: running all cells did not succeed (no traceback in outputs)")


def notebook_cells(page: Page) -> list[dict]:
    """Every cell of the open notebook as nbformat-like dicts (index, cell_type, source, outputs)."""
    return page.evaluate(_CELLS, {})["cells"]


def cell_output_text(page: Page, index: int) -> str:
    """What cell ``index`` (negative counts from the end) printed to stdout, plus its
    result's plain text. Raises NotebookError with the traceback if the cell raised."""
    cells = notebook_cells(page)
    cell = cells[index]
    _raise_on_error([cell])
    return _output_text(cell)


def run_code(page: Page, code: str, timeout: int = RUN_TIMEOUT_MS) -> str:
    """Append a code cell to the open notebook, run it, and return what it printed
    (stdout plus the result's plain text), without the trailing newline.

    It first waits until changes made in the browser (a click on a widget) have
    reached the kernel, so the code sees the state the page shows.

    Raises NotebookError with the traceback if the code raises.

    >>> run_code(page, "print(w.count)")  # doctest: +SKIP
    '2'
    """
    result = page.evaluate(_RUN_NEW_CELL, {"code": code, "timeout": timeout})
    _raise_on_error([result["cell"]])
    if not result["ok"]:
        raise NotebookError(f"running the cell did not succeed (no traceback in outputs):\n{code}")
    return _output_text(result["cell"]).rstrip("\n")


def start_code(page: Page, code: str, timeout: int = RUN_TIMEOUT_MS) -> int:
    """Append a code cell and start running it, without waiting for it to end (a training
    loop the test watches while it runs); returns the cell's index for cell_output_text.

    >>> index = start_code(page, "while not stop.exists(): time.sleep(0.1)")  # doctest: +SKIP
    """
    return page.evaluate(_START_NEW_CELL, {"code": code, "timeout": timeout})


def leave_widgets(page: Page, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Take the pointer and the keyboard away from the widgets, as a person leaving them,
    and wait until the saved pictures owed to them were updated (which draws their views
    anew, cnn_widgets/widgets/static.py). A test that looks at a view after using it while
    a cell changed it calls this first, so no update replaces the view under it.

    >>> leave_widgets(page)  # doctest: +SKIP
    """
    page.mouse.move(0, 0)
    page.evaluate(_LEAVE_WIDGETS, {"timeout": timeout})


def wait_for_output(page: Page, selector: str, timeout: int = OUTPUT_TIMEOUT_MS) -> Locator:
    """Wait until an element matching ``selector`` is visible inside a cell's output
    area and return a locator for every such element.

    On timeout, fails with what explains a missing widget: the cells' tracebacks,
    their outputs, and the browser's errors (a widget whose ES module threw shows
    up there).

    >>> wait_for_output(page, "button.counter").click()  # doctest: +SKIP
    """
    locator = page.locator(".jp-OutputArea-output").locator(selector)
    try:
        locator.first.wait_for(state="visible", timeout=timeout)
    except PlaywrightTimeoutError as error:
        data = page.evaluate(_CELLS, {})
        outputs = "\n".join(f"[{c['index']}] {json.dumps(c['outputs'])[:500]}" for c in data["cells"])
        raise NotebookError(
            f"no visible {selector!r} in any cell output within {timeout / 1000:.0f} s\n"
            + "".join(f"{traceback}\n" for traceback in _cell_errors(data["cells"]))
            + f"--- cell outputs ---\n{outputs}\n--- browser errors ---\n"
            + "\n".join(data["consoleErrors"])
        ) from error
    return locator
