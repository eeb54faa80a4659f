"""The README's first command, run the way a newcomer runs it: `bash scripts/demo.sh`
starts JupyterLab (as root too), prints the address to open, and the quick start
opened there runs from top to bottom with every widget rendered."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .jupyter import (
    REPO_ROOT,
    SERVER_START_TIMEOUT_S,
    JupyterServer,
    free_port,
    private_jupyter_env,
    run_notebook_page,
    stop_server,
    wait_for_output,
    wait_until_ready,
)

QUICKSTART = REPO_ROOT / "notebooks" / "quickstart.ipynb"
# Every widget the quick start shows.
QUICKSTART_WIDGETS = (".cw-filter-weights", ".cw-feature-maps", ".cw-maximization", ".cw-gradcam")


def _printed_address(log: Path, process: subprocess.Popen, timeout: float) -> str:
    """The address the demo script prints ("demo: open URL"), once it has printed it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        match = re.search(r"^demo: open (\S+)$", text, re.MULTILINE)
        if match:
            return match.group(1)
        if process.poll() is not None:
            pytest.fail(f"scripts/demo.sh exited with {process.returncode} before printing an address:\n{text}")
        time.sleep(0.2)
    pytest.fail(f"scripts/demo.sh printed no address within {timeout:.0f} s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def demo_server(*extra_args: str):
    """`bash scripts/demo.sh --no-browser --port=N ...` in the background; yields the
    server and the address the script printed; stops the server and its kernels."""
    if not (REPO_ROOT / ".venv" / "bin" / "jupyter").exists():
        pytest.fail("the demo runs .venv/bin/jupyter: run `bash scripts/setup.sh` first", pytrace=False)
    home = Path(tempfile.mkdtemp(prefix="cnn-widgets-demo-"))
    log_path = home / "demo.log"
    port = free_port()
    env = private_jupyter_env(home)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["bash", "scripts/demo.sh", "--no-browser", f"--port={port}", *extra_args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = None
    try:
        address = _printed_address(log_path, process, timeout=SERVER_START_TIMEOUT_S + 120)
        parts = urllib.parse.urlsplit(address)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        base = f"{parts.scheme}://{parts.netloc}"
        server = JupyterServer("lab", base, QUICKSTART.parent, log_path, process, token=token)
        wait_until_ready(server, SERVER_START_TIMEOUT_S)
        yield server, address
    finally:
        if server is not None:
            stop_server(server)
        elif process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.browser
@pytest.mark.slow
def test_the_demo_command_opens_a_quickstart_that_runs(page, artifact_path):
    saved = QUICKSTART.read_bytes()
    try:
        # Extra arguments pass through to JupyterLab: this one lets the test drive it.
        with demo_server("--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None") as (server, address):
            log = server.log_path.read_text(errors="replace")
            assert ("--allow-root" in log) == (os.geteuid() == 0), log
            assert address.startswith("http://localhost:") and "/lab/tree/quickstart.ipynb?token=" in address

            run_notebook_page(page, address.replace("localhost", "127.0.0.1"), "quickstart.ipynb", log_tail=server.log_tail)

            for selector in QUICKSTART_WIDGETS:
                expect(wait_for_output(page, selector).first).to_be_visible()
            expect(wait_for_output(page, ".cw-maximization").first).to_have_attribute("data-tile-count", "16")
            expect(page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(0)
            page.screenshot(path=artifact_path("quickstart-lab.png"), full_page=True)
    finally:
        # The notebook in the repository stays exactly as it was (autosave is off too).
        if QUICKSTART.read_bytes() != saved:
            QUICKSTART.write_bytes(saved)
            pytest.fail("running the demo changed notebooks/quickstart.ipynb")

