"""The one background worker every long-running widget uses: the latest request
wins, Stop ends the work within one step, the status says how the work ended,
and exiting Python stops every job. Order comes from events and step counts,
never from timing."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cnn_widgets.widgets import deepdream as deepdream_module
from cnn_widgets.widgets import maximization as maximization_module
from cnn_widgets.widgets.deepdream import DeepDream
from cnn_widgets.widgets.maximization import ActivationMaximization
from cnn_widgets.widgets.worker import CancelToken, Worker
from view_messages import send_from_view

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


def stepping_job(log: list, name: str, steps: int, at_step=None):
    """A job of ``steps`` steps that checks its token before each step, as the engine
    does; ``at_step(step)`` runs after each step, in the worker's thread."""

    def job(cancel, report):
        log.append((name, "start"))
        for step in range(1, steps + 1):
            if cancel.is_set():
                log.append((name, "cancelled", cancel.reason))
                return None
            log.append((name, step))
            report(step / steps, f"{name} step {step}")
            if at_step is not None:
                at_step(step)
        log.append((name, "end"))

    return job


def test_the_latest_request_wins():
    worker, log = Worker("test"), []
    gate, inside = threading.Event(), threading.Event()

    def at_step(step):
        if step == 2:
            inside.set()
            gate.wait(30)  # the test makes its requests while step 2 runs

    worker.submit(stepping_job(log, "first", 10, at_step))
    assert inside.wait(30)
    worker.submit(stepping_job(log, "second", 3))
    worker.submit(stepping_job(log, "third", 3))
    assert worker.busy
    gate.set()
    worker.wait()
    # The first ends before its step 3; the second was replaced before it began; the third runs to the end.
    assert log == [
        ("first", "start"), ("first", 1), ("first", 2), ("first", "cancelled", CancelToken.NEWER),
        ("third", "start"), ("third", 1), ("third", 2), ("third", 3), ("third", "end"),
    ]
    assert not worker.busy and worker.progress == 1.0 and worker.status.startswith("done in")


def test_stop_ends_the_work_within_one_step_and_the_status_says_stopped():
    worker, log = Worker("test"), []
    worker.submit(stepping_job(log, "run", 100, at_step=lambda step: step == 4 and worker.stop()))
    worker.wait()
    assert log[-2:] == [("run", 4), ("run", "cancelled", CancelToken.STOP)]
    assert worker.progress == 0.04 and worker.status.startswith("stopped after") and not worker.busy


def test_a_failure_is_reported_and_the_next_request_runs():
    worker, log = Worker("test"), []

    def broken(cancel, report):
        raise ValueError("no such filter")

    worker.submit(broken)
    worker.wait()
    assert (worker.status, worker.error, worker.busy) == ("failed", "ValueError: no such filter", False)
    worker.submit(stepping_job(log, "again", 2))
    worker.wait()
    assert worker.error == "" and worker.status.startswith("done") and log[-1] == ("again", "end")


def test_a_job_may_name_its_last_status():
    worker = Worker("test")
    worker.submit(lambda cancel, report: "nothing to compute")
    worker.wait()
    assert worker.status == "nothing to compute"


def test_maximization_stop_from_the_browser_ends_within_one_step(fashion, monkeypatch):
    widget = ActivationMaximization(fashion, layer="block2_conv1", filters="0-3", steps=500, size=28)
    steps = []

    # Progress reaches the view at most every STATUS_EVERY_S (the first step always): the Stop
    # button is pressed while the second step reported is shown.
    def on_progress(change):
        steps.append(round(change["new"] * 500))
        if len(steps) == 2:
            send_from_view(widget, {"type": "stop"}, [])

    widget.observe(on_progress, names="progress")
    widget.run(wait=True)
    assert len(steps) == 2 and 1 == steps[0] < steps[1] < 500, steps  # no step after the one that saw Stop
    stopped = steps[1]
    assert widget.status.startswith(f"stopped at step {stopped} of 500 ") and not widget.running  # issue 14: where it stopped
    assert all(title.endswith(f"stopped at step {stopped} of 500: select it or press Run to start again") for title in widget.tile_titles)
    assert widget.tile_caption.endswith(f"stopped at step {stopped} of 500: select it or press Run to start again")


def test_maximization_run_while_running_replaces_the_run(fashion, monkeypatch):
    calls = []
    original = maximization_module.maximize
    monkeypatch.setattr(maximization_module, "maximize", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    widget = ActivationMaximization(fashion, layer="block2_conv1", filters="0-1", steps=40, size=28)
    statuses = []

    def on_status(change):
        statuses.append(change["new"])
        if change["new"].startswith("step 1/40") and len(calls) == 1:  # new settings and Run, mid-run
            widget.filters = "2-3"
            widget.run()

    widget.observe(on_status, names="status")
    widget.run(wait=True)
    assert calls == [[0, 1], [2, 3, 0]]  # Run also finishes the selected filter (0), shown enlarged
    # The first run stopped after its step 1 without claiming to be done or stopped; the second ran to the end.
    first = statuses[: statuses.index("starting", 1)]
    assert first[-1].startswith("step 1/40") and not any(s.startswith(("done", "stopped")) for s in first)
    assert statuses[-1].startswith("done") and widget.tile_titles == ["filter 2", "filter 3"]
    assert "the run before stopped at step 1 of 40" in statuses[-1]
    widget.filters = "0-1"
    assert widget.tile_titles[0] == "filter 0" and "stopped at step 1 of 40" in widget.tile_titles[1]


def test_dream_stop_ends_within_one_step(fashion, monkeypatch):
    widget = DeepDream(fashion, "sneaker", layer="block1_conv2", steps=50, frames=10)
    steps = []
    original = deepdream_module.dream

    def counted(*args, progress, **kwargs):  # every engine step reports (done, total, frame)
        def step_done(done, total, frame):
            steps.append(done)
            if done == 7:  # the Stop button pressed during step 7
                send_from_view(widget, {"type": "stop"}, [])
            progress(done, total, frame)

        return original(*args, progress=step_done, **kwargs)

    monkeypatch.setattr(deepdream_module, "dream", counted)
    widget.run(wait=True)
    assert steps == [1, 2, 3, 4, 5, 6, 7]  # no step after the one during which Stop came
    assert widget.status.startswith("stopped after") and not widget.running and widget.progress < 1.0
    assert widget.caption.startswith("stopped:")


EXIT_SCRIPT = """
import atexit, sys
seen = {}
atexit.register(lambda: print("status at exit:", seen["widget"].status, seen["widget"].running, flush=True))
import cnn_widgets as cw
widget = seen["widget"] = cw.ActivationMaximization(cw.load_model("fashion-cnn", device="cpu"), layer="block1_conv1", filters="0-1", steps=10**5, size=28)
reported = __import__("threading").Event()
widget.observe(lambda change: change["new"] > 0 and reported.set(), names="progress")
widget.run()
assert reported.wait(60)
print("running:", widget.running, flush=True)
"""


def test_exiting_python_stops_every_job():
    """Python exits while a run goes on: the one exit hook stops the job, and the process
    ends normally (a torch computation cut off at exit would abort it)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)], capture_output=True, text=True, timeout=120,
        cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "running: True"
    assert lines[1].startswith("status at exit: stopped at step") and lines[1].endswith("False")
