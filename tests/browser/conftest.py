"""Fixtures for real-browser tests: one Jupyter server per frontend for the whole
session, one headless Chromium, and a fresh page per test.

A test that asks for ``jupyter_server`` runs once in JupyterLab and once in
Notebook 7; narrow it with ``@pytest.mark.parametrize("frontend", ["lab"])``.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .jupyter import (
    CHROMIUM,
    FRONTENDS,
    VIEWPORT,
    JupyterServer,
    console_errors,
    launch_chromium,
    running_server,
)
from .jupyter import artifact_path as _artifact_path


@pytest.fixture(params=FRONTENDS)
def frontend(request) -> str:
    """Which Jupyter frontend the test runs in: "lab" (JupyterLab 4) or "notebook" (Notebook 7)."""
    return request.param


class _ServerPool:
    """Starts each frontend's server the first time a test needs it; stops all at the end."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._servers: dict[str, JupyterServer] = {}

    def get(self, frontend: str) -> JupyterServer:
        if frontend not in self._servers:
            self._servers[frontend] = self._stack.enter_context(running_server(frontend))
        return self._servers[frontend]


@pytest.fixture(scope="session")
def jupyter_servers() -> Iterator[_ServerPool]:
    with contextlib.ExitStack() as stack:
        yield _ServerPool(stack)


@pytest.fixture
def jupyter_server(frontend: str, jupyter_servers: _ServerPool, browser: Browser) -> Iterator[JupyterServer]:
    """The session's server for ``frontend``; after the test, its pages are closed and
    its kernels shut down so the next test starts from a quiet server."""
    server = jupyter_servers.get(frontend)
    yield server
    # Close pages before ending kernels, so no frontend reacts to a dying kernel.
    for context in browser.contexts:
        with contextlib.suppress(Exception):
            context.close()
    server.shutdown_kernels()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/setup.sh` to install Debian's chromium", pytrace=False)
    # Playwright's 5 s default for expect(...) is short for a widget round trip
    # through a busy kernel on a loaded two-core machine.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    with contextlib.suppress(Exception):
        context.close()


@pytest.fixture
def artifact_path():
    """``artifact_path(name) -> Path`` under ``<repo>/test-artifacts/`` (git-ignored)."""
    return _artifact_path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """When a browser test fails, keep a screenshot of the page as it was and add the
    browser's errors and the server's log to the report."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    funcargs = getattr(item, "funcargs", {})
    page = funcargs.get("page")
    if page is not None and not page.is_closed():
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", item.nodeid.split("::", 1)[-1]).strip("-")
        with contextlib.suppress(Exception):
            path = _artifact_path(f"failure-{name}.png")
            page.screenshot(path=path, full_page=True)
            report.sections.append(("browser screenshot", str(path)))
        errors = console_errors(page)
        if errors:
            report.sections.append(("browser errors", "\n".join(errors)))
    server = funcargs.get("jupyter_server")
    if server is not None:
        report.sections.append((f"jupyter {server.frontend} log (tail)", server.log_tail()))
    return report
