"""Long computations in widgets: run in a background thread so the notebook
stays usable, report progress through traits, stop on request.

A widget that mixes in :class:`Runnable` gets synced ``running``, ``progress``
(0..1) and ``status`` traits, handles ``{"type": "run"}`` / ``{"type": "stop"}``
messages from its frontend, and calls its own ``_job(cancel, report)`` in a
thread. ``report(fraction, status)`` may be called from that thread; ipywidgets
sends trait changes from any thread. ``wait()`` blocks until the job is done
(for scripts and tests).
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref

import traitlets

_started: "weakref.WeakSet[Runnable]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop running jobs when Python exits: a torch computation cut off at exit aborts the process."""
    for job in list(_started):
        if job._cancel is not None:
            job._cancel.set()
        job.wait(timeout=10)


class Runnable(traitlets.HasTraits):
    running = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    _thread: threading.Thread | None = None
    _cancel: threading.Event | None = None

    def run(self, wait: bool = False) -> None:
        """Start the computation in the background (stopping one that is running)."""
        self.stop()
        self._cancel = threading.Event()
        self.error = ""
        self.running, self.progress, self.status = True, 0.0, "starting"
        self._thread = threading.Thread(target=self._work, args=(self._cancel,), daemon=True, name=type(self).__name__)
        _started.add(self)
        self._thread.start()
        if wait:
            self.wait()

    def stop(self) -> None:
        """Ask the running computation to stop; it keeps what it has (within one step)."""
        if self._cancel is not None:
            self._cancel.set()
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background computation has finished."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _work(self, cancel: threading.Event) -> None:
        started = time.monotonic()

        def report(fraction: float, status: str = "") -> None:
            self.progress = max(0.0, min(1.0, fraction))
            if status:
                self.status = status

        try:
            self._job(cancel, report)
            seconds = time.monotonic() - started
            self.status = f"stopped after {seconds:.1f} s" if cancel.is_set() else f"done in {seconds:.1f} s"
        except Exception as error:  # shown in the widget; the kernel and the widget stay usable
            self.error = f"{type(error).__name__}: {error}"
            self.status = "failed"
        finally:
            self.running = False

    def _handle_run_messages(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "run":
            self.run()
        elif content.get("type") == "stop":
            if self._cancel is not None:
                self._cancel.set()  # do not block the kernel's message loop
