"""Background work for widgets: one thread per widget, the latest request wins.

Every long computation a widget starts (activation maximization, DeepDream, the
heatmaps of a view, a dataset scan) runs in that widget's :class:`Worker`, so the
kernel stays usable meanwhile:

- ``submit(job)`` runs ``job(cancel, report)`` in the worker's thread. A request
  made while a job runs cancels that job's :class:`CancelToken` (the engine checks
  it between two steps) and takes the place of any request still waiting: only
  the latest one runs next.
- ``cancel`` goes to the engine as its ``cancel=`` argument; ``report(fraction,
  status)`` sets the worker's ``progress`` and ``status``.
- The worker's ``busy``, ``progress``, ``status`` and ``error`` traits say what it
  does; a widget links the ones its view shows to its own synced traits. When a job
  ends, ``status`` says how: the text the job returned, else ``done in 1.2 s``,
  ``stopped after 1.2 s`` or ``failed`` (with ``error``); a job replaced by a newer
  request leaves the status to that one.
- ``stop()`` cancels the running job without waiting; ``wait()`` blocks until the
  worker is idle (scripts and tests).
- When Python exits, one hook cancels every worker's job and waits for it to end:
  a torch computation cut off at exit aborts the process.

:class:`RunControls` is the mixin for widgets with Run and Stop buttons, a progress
bar and a status line (``runControls`` in ``js/common.js``).
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Callable

import traitlets

from ..engine import Cancelled
from .messages import handles

Report = Callable[..., None]
Job = Callable[["CancelToken", Report], "str | None"]


class CancelToken:
    """Tells a job to stop, and why: Stop was pressed, a newer request came, or Python exits.

    The engine takes it as ``cancel=`` (it has ``is_set()``, like a ``threading.Event``).

    >>> token = CancelToken()
    >>> token.is_set(), token.reason
    (False, None)
    >>> token.cancel(CancelToken.NEWER)
    >>> token.is_set(), token.reason, token.superseded
    (True, 'newer', True)
    >>> token.cancel(CancelToken.STOP)  # Stop, or exiting, outranks a newer request
    >>> token.reason, token.superseded
    ('stop', False)
    """

    STOP, NEWER, EXIT = "stop", "newer", "exit"

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        """Ask the job to stop. The first reason is kept, except that Stop or exiting
        replaces "a newer request" (the job must then end, whatever the newer one needs)."""
        if not self._event.is_set() or (self.superseded and reason != self.NEWER):
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        """True once the job should stop."""
        return self._event.is_set()

    @property
    def superseded(self) -> bool:
        """True when a newer request cancelled the job (it may finish work the newer one needs)."""
        return self.reason == self.NEWER


_workers: "weakref.WeakSet[Worker]" = weakref.WeakSet()
_exiting = threading.Event()


@atexit.register
def _shut_down() -> None:
    """Cancel every worker's job when Python exits and wait (a little) for each to end."""
    _exiting.set()
    workers = list(_workers)
    for worker in workers:
        worker._cancel(CancelToken.EXIT)
    for worker in workers:
        worker.wait(timeout=10)


class Worker(traitlets.HasTraits):
    """The one background thread of a widget: runs the latest request, cancels the rest.

    >>> worker = Worker("example")
    >>> def count(cancel, report):
    ...     for step in range(1, 4):
    ...         report(step / 3, f"step {step} of 3")
    >>> worker.submit(count); worker.wait()
    True
    >>> worker.busy, worker.progress, worker.status.startswith("done in")
    (False, 1.0, True)
    """

    busy = traitlets.Bool(False)
    progress = traitlets.Float(0.0)  # 0..1
    status = traitlets.Unicode("")
    error = traitlets.Unicode("")

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        # Reentrant: trait observers run while it is held and may submit or stop.
        self._condition = threading.Condition(threading.RLock())
        self._pending: tuple[Job, str] | None = None
        self._token: CancelToken | None = None  # the running job's
        self._thread: threading.Thread | None = None  # while a job runs or waits
        self._last_thread: threading.Thread | None = None  # the one that ran the last job
        _workers.add(self)

    def submit(self, job: Job, status: str = "") -> None:
        """Run ``job(cancel, report)`` in the background once the running job (if any) has
        seen its token cancelled; a request still waiting is dropped. ``status`` is shown
        when the job starts. Returns at once."""
        with self._condition:
            if _exiting.is_set():
                return
            if self._token is not None:
                self._token.cancel(CancelToken.NEWER)
            self._pending = (job, status)
            self.busy = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name=self.name)
                self._thread.start()

    def stop(self) -> None:
        """Cancel the running job (it ends within one step) and drop a waiting one. Returns at once."""
        self._cancel(CancelToken.STOP)

    def _cancel(self, reason: str) -> None:
        with self._condition:
            self._pending = None
            if self._token is not None:
                self._token.cancel(reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job runs or waits; False if ``timeout`` seconds passed first.
        In the worker's own thread (a job that waits for its widget) it returns at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            if self._thread is threading.current_thread():
                return True
            if not self._condition.wait_for(lambda: self._thread is None, timeout):
                return False
            last = self._last_thread
        if last is not None and last is not threading.current_thread():  # it is leaving its loop: join it
            last.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return True

    def report(self, fraction: float | None = None, status: str = "") -> None:
        """Set ``progress`` (clipped to 0..1) and, when given, ``status``; from the job's thread."""
        if fraction is not None:
            self.progress = max(0.0, min(1.0, float(fraction)))
        if status:
            self.status = status

    def _loop(self) -> None:
        while True:
            with self._condition:
                if self._pending is None:
                    self._token, self._thread, self._last_thread = None, None, self._thread
                    self.busy = False
                    self._condition.notify_all()
                    return
                (job, status), self._pending = self._pending, None
                token = self._token = CancelToken()
                self.progress, self.status, self.error = 0.0, status, ""
            self._run(job, token)

    def _run(self, job: Job, token: CancelToken) -> None:
        started = time.monotonic()
        try:
            final = job(token, self.report)
        except Cancelled:
            final = None
        except Exception as error:  # shown in the widget; the kernel and the widget stay usable
            self.error = f"{type(error).__name__}: {error}"
            self.status = "failed"
            return
        with self._condition:
            if self._pending is not None:  # replaced by a newer request, which sets its own status
                return
            seconds = time.monotonic() - started
            if final is not None:
                self.status = final
            elif token.is_set():
                self.status = f"stopped after {seconds:.1f} s"
            else:
                self.status = f"done in {seconds:.1f} s"


class RunControls(traitlets.HasTraits):
    """Mixin for a widget with Run and Stop buttons, a progress bar and a status line
    (``runControls`` in ``js/common.js``): it handles the ``{"type": "run"}`` and
    ``{"type": "stop"}`` messages (its message table) and runs the widget's ``_job(cancel, report)`` in its
    :class:`Worker`, whose state the synced ``running``, ``progress`` and ``status``
    traits show; a failure goes to the widget's ``error`` line."""

    running = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._worker = Worker(type(self).__name__)
        for source, target in (("busy", "running"), ("progress", "progress"), ("status", "status"), ("error", "error")):
            traitlets.dlink((self._worker, source), (self, target))

    def run(self, wait: bool = False) -> None:
        """Start the computation in the background; one that is running stops within one
        step and this one follows. ``wait=True`` blocks until it is done."""
        self.error = ""
        self._worker.submit(self._job, status="starting")
        if wait:
            self.wait()

    def stop(self) -> None:
        """Stop the running computation within one step; it keeps what it has. Blocks until it has stopped."""
        self._worker.stop()
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background computation has finished (or ``timeout`` seconds have passed)."""
        self._worker.wait(timeout)

    def _job(self, cancel: CancelToken, report: Report) -> str | None:
        raise NotImplementedError

    @handles("run")
    def _on_run(self, _content, _buffers) -> None:
        self.run()

    @handles("stop")
    def _on_stop(self, _content, _buffers) -> None:
        self._worker.stop()  # do not block the kernel's message loop
