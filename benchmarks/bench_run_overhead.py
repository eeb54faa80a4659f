"""What a student waits for after pressing Run, beyond the optimization's own steps.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_run_overhead.py --baseline /tmp/runcost-base
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_run_overhead.py --omp

Run mode (the default): the shipped fashion-cnn's ActivationMaximization with its defaults
(block1_conv1, 16 filters, 128 steps, 28 px) and a DeepDream with its defaults get a Run
message through ipywidgets' comm path (as from the view), and the time to the final picture
is split into

- **engine alone**: the same ``maximize`` / ``dream`` call without the widget (no progress
  callback, no previews), in a fresh thread as the widget's worker runs it;
- **widget overhead**: the run's time minus that: previews drawn and encoded, status and
  progress messages, cache keys, bookkeeping.

It also counts the comm messages and bytes the run sends to the view (a recording comm in place
of the kernel's). Every figure is the median of ``--runs`` runs (new seed each, nothing cached)
in one fresh process per round; with ``--baseline DIR`` (another checkout, e.g.
``git worktree add /tmp/runcost-base a57ff44``) the rounds alternate this tree and that one in
ABBA order, so load from other processes hits both alike. Wall and CPU time (all threads).

``--omp`` mode: the cost of libgomp's spin-waiting in a long computation called from the
user's thread (the command line, a notebook calling ``cw.engine.maximize``). It times 40 steps
of ``maximize`` on block2_conv1 (16 filters) in the main thread and in a fresh thread, each in
fresh processes with OpenMP's wait policy unset (libgomp spins) and with
``OMP_WAIT_POLICY=PASSIVE``; and the same for opening a FeatureMaps (its first drawing, in the
kernel's thread, as every view draws), median of 8 samples per process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


# -- measured in a child process ----------------------------------------------------------


class RecordingComm:
    """Stands in for the kernel's comm: counts the messages and bytes a widget sends to its view."""

    messages = 0
    bytes = 0

    def __init__(self, *args, **kwargs) -> None:
        self.comm_id = kwargs.get("comm_id") or f"recording-{id(self)}"
        self.kernel = "recording"  # ipywidgets sends only through a comm that has a kernel

    def open(self, *args, **kwargs) -> None:
        pass

    def send(self, data=None, metadata=None, buffers=None) -> None:
        RecordingComm.messages += 1
        RecordingComm.bytes += len(json.dumps(data, default=str)) + sum(len(memoryview(b).cast("B")) for b in buffers or ())

    def close(self, *args, **kwargs) -> None:
        pass

    def on_msg(self, callback) -> None:
        pass

    def on_close(self, callback) -> None:
        pass


def _in_fresh_thread(function):
    """``function()``'s result, computed in a new thread (as a widget's worker computes)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function()))
    thread.start()
    thread.join()
    return result["value"]


def _timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _measure_runs(runs: int) -> dict:
    import comm

    comm.create_comm = RecordingComm  # before any widget exists
    import cnn_widgets as cw
    from cnn_widgets import engine
    from cnn_widgets.engine.optvis import QUALITY_PRESETS

    sys.path.insert(0, str(REPOSITORY / "tests"))
    from view_messages import send_from_view

    model = cw.load_model("fashion-cnn")
    figures: dict[str, list] = {}

    def record(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    def pressed_run(widget) -> None:
        send_from_view(widget, {"type": "run"})
        widget.wait()
        assert widget.status.startswith("done"), widget.status

    maximization = cw.ActivationMaximization(model)
    settings = dict(steps=maximization.steps, size=maximization.size, objective=maximization.used_objective(),
                    **QUALITY_PRESETS[maximization.preset])
    filters = maximization.chosen_filters()
    dream = cw.DeepDream(model)
    for run in range(runs + 1):  # the first is a warm-up
        maximization.seed = 1000 + run  # nothing cached
        seed = maximization.seed
        alone = _timed(lambda: _in_fresh_thread(lambda: engine.maximize(model, maximization.layer, filters, seed=seed, **settings)))
        RecordingComm.messages = RecordingComm.bytes = 0
        widget = _timed(lambda: pressed_run(maximization))
        messages, sent = RecordingComm.messages, RecordingComm.bytes
        dream.seed = 1000 + run  # a new dream each run
        dream_alone = _timed(lambda: _in_fresh_thread(lambda: engine.dream(model, dream._dreamed_photo(), **dream.settings())))
        RecordingComm.messages = RecordingComm.bytes = 0
        dreamt = _timed(lambda: pressed_run(dream))
        if run == 0:
            continue
        for name, (wall, cpu) in (("max run", widget), ("max engine", alone), ("dream run", dreamt), ("dream engine", dream_alone)):
            record(name + " wall", wall)
            record(name + " cpu", cpu)
        record("max messages", messages)
        record("max kB sent", sent / 1000)
        record("dream messages", RecordingComm.messages)
        record("dream kB sent", RecordingComm.bytes / 1000)
    return {name: statistics.median(values) for name, values in figures.items()}


def _measure_omp(where: str, steps: int) -> dict:
    import cnn_widgets as cw
    from cnn_widgets.engine.optvis import maximize

    model = cw.load_model("fashion-cnn")
    if where == "maps":  # a FeatureMaps opened in the kernel's thread: its first drawing
        cw.FeatureMaps(model, "sneaker")  # warm-up
        samples = ["bag", "coat", "dress", "pullover", "sandal", "shirt", "trouser", "tshirt"]
        wall, cpu = zip(*(_timed(lambda: cw.FeatureMaps(model, sample, layer="block2_conv1")) for sample in samples))
        return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}

    def steps_run():
        maximize(model, "block2_conv1", list(range(16)), steps=steps, preview_every=steps)

    run = steps_run if where == "main" else (lambda: _in_fresh_thread(steps_run))
    run()  # warm-up
    wall, cpu = zip(*(_timed(run) for _ in range(3)))
    return {"wall": statistics.median(wall) / steps, "cpu": statistics.median(cpu) / steps}


# -- the parent: rounds of fresh processes ------------------------------------------------


def _child(tree: Path, arguments: list[str], environment: dict | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *arguments]
    env = {**os.environ, "PYTHONPATH": str(tree), **(environment or {})}
    for name, value in list(env.items()):
        if value is None:
            env.pop(name)
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=tree).stdout
    return json.loads(output.strip().splitlines()[-1])


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (ABBA rounds)")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per tree (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="runs per process, after a warm-up (default 5)")
    parser.add_argument("--omp", action="store_true", help="main thread against a fresh thread, OpenMP wait policy unset and PASSIVE")
    parser.add_argument("--steps", type=int, default=40, help="steps per --omp timing (default 40)")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        kind = args.child[0]
        result = _measure_runs(int(args.child[1])) if kind == "runs" else _measure_omp(args.child[1], int(args.child[2]))
        print(json.dumps(result))
        return
    if args.omp:
        print(f"load before: {_load()}")
        results: dict[tuple, list] = {}
        for round_ in range(args.rounds):
            for policy in ("unset", "PASSIVE") if round_ % 2 == 0 else ("PASSIVE", "unset"):
                for where in ("main", "fresh", "maps"):
                    environment = {"OMP_WAIT_POLICY": None if policy == "unset" else policy}
                    results.setdefault((policy, where), []).append(_child(REPOSITORY, ["omp", where, str(args.steps)], environment))
        print(f"load after: {_load()}")
        print("| OMP_WAIT_POLICY | thread | ms per step, wall | ms per step, CPU |\n|---|---|---|---|")
        for (policy, where), rows in sorted(results.items()):
            if where == "maps":
                continue
            walls = sorted(1000 * row["wall"] for row in rows)
            cpus = sorted(1000 * row["cpu"] for row in rows)
            print(f"| {policy} | {where} | {statistics.median(walls):.1f} ({walls[0]:.1f}-{walls[-1]:.1f}) "
                  f"| {statistics.median(cpus):.1f} ({cpus[0]:.1f}-{cpus[-1]:.1f}) |")
        print("\n| OMP_WAIT_POLICY | FeatureMaps opened (its first drawing), ms wall | ms CPU |\n|---|---|---|")
        for policy in ("unset", "PASSIVE"):
            walls = sorted(1000 * row["wall"] for row in results[(policy, "maps")])
            cpus = sorted(1000 * row["cpu"] for row in results[(policy, "maps")])
            print(f"| {policy} | {statistics.median(walls):.0f} ({walls[0]:.0f}-{walls[-1]:.0f}) "
                  f"| {statistics.median(cpus):.0f} ({cpus[0]:.0f}-{cpus[-1]:.0f}) |")
        return
    trees = {"this": REPOSITORY}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), "this": REPOSITORY}
    order = [name for round_ in range(args.rounds) for name in (list(trees) if round_ % 2 == 0 else list(trees)[::-1])]
    print(f"load before: {_load()}; order {order}")
    results = {name: [] for name in trees}
    for name in order:
        results[name].append(_child(trees[name], ["runs", str(args.runs)]))
    print(f"load after: {_load()}")
    names = list(results[order[0]][0])
    print("| figure (median over rounds) | " + " | ".join(trees) + " |\n|---|" + "---|" * len(trees))
    for figure in names:
        cells = [statistics.median(row[figure] for row in results[name]) for name in trees]
        print(f"| {figure} | " + " | ".join(f"{cell:.3g}" for cell in cells) + " |")
    for prefix in ("max", "dream"):
        for name in trees:
            wall = statistics.median(row[f"{prefix} run wall"] - row[f"{prefix} engine wall"] for row in results[name])
            cpu = statistics.median(row[f"{prefix} run cpu"] - row[f"{prefix} engine cpu"] for row in results[name])
            print(f"{prefix} widget overhead ({name}): wall {wall:.3f} s, CPU {cpu:.3f} s")


if __name__ == "__main__":
    main()
