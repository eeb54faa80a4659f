"""Activation maximization with and without keeping freed memory in the process (issue 19).

    .venv/bin/python benchmarks/bench_memory.py

VGG16 (random weights) block3_conv1, 16 filters at 128 px, a few steps, at 1 and 2
torch threads, with ``keep_freed_memory`` on (the default) and off
(``CNN_WIDGETS_KEEP_FREED_MEMORY=0``). Each run is a fresh Python process, because
malloc's state belongs to the process (and any ``mallopt`` call changes glibc's
behaviour for the rest of it); the settings are interleaved (on, off, on, off, ...)
so that load from other work on a shared machine falls on both alike. Per run: the
median time of a step (step-to-step, after the first), and the CPU time (user and
system, ``getrusage``) and minor page faults of the whole timed call.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
import torch
import cnn_widgets as cw
from cnn_widgets.engine.optvis import maximize

threads, steps, size, count = (int(value) for value in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = cw.load_model("vgg16", weights=None, device="cpu")
maximize(model, "block3_conv1", [0, 1], steps=1, size=size)  # warm-up: oneDNN kernels, layer discovery
stamps = []
usage = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
maximize(model, "block3_conv1", list(range(count)), steps=steps, size=size, seed=0,
         progress=lambda *_: stamps.append(time.perf_counter()))
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
steps_s = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
print(json.dumps({
    "step": sorted(steps_s)[len(steps_s) // 2], "wall": wall,
    "user": after.ru_utime - usage.ru_utime, "sys": after.ru_stime - usage.ru_stime,
    "faults": after.ru_minflt - usage.ru_minflt,
}))
"""


def one_run(keep: bool, threads: int, args) -> dict:
    environment = {**os.environ, "CNN_WIDGETS_KEEP_FREED_MEMORY": "1" if keep else "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), str(args.steps), str(args.size), str(args.filters)],
        env=environment, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        sys.exit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> str:
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting and thread count (interleaved)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    began = time.perf_counter()
    loads = [load_average()]
    runs: dict[tuple[int, bool], list[dict]] = {}
    for repeat in range(args.repeats):
        for threads in args.threads:
            for keep in ((True, False) if repeat % 2 == 0 else (False, True)):
                result = one_run(keep, threads, args)
                runs.setdefault((threads, keep), []).append(result)
                print(threads, "keep" if keep else "off", result, flush=True)
        loads.append(load_average())

    body = section(runs, args, loads, time.perf_counter() - began)
    print(body)
    if not args.no_write:
        report.write_section("bench_memory", body)


def section(runs: dict, args, loads: list[str], seconds: float) -> str:
    """The BENCHMARKS.md section from the runs {(threads, keep): [result, ...]}."""
    for results in runs.values():
        for run in results:
            run["cpu"] = run["user"] + run["sys"]

    def median(threads, keep, key):
        return statistics.median(run[key] for run in runs[(threads, keep)])

    def ratio(threads, key):
        return median(threads, False, key) / max(median(threads, True, key), 1e-9)

    rows = []
    for threads in args.threads:
        for keep in (False, True):
            label = "kept (default)" if keep else "off (`CNN_WIDGETS_KEEP_FREED_MEMORY=0`)"
            all_steps = ", ".join(f"{run['step']:.2f}" for run in runs[(threads, keep)])
            rows.append(
                f"| {threads} | {label} | {median(threads, keep, 'step'):.2f} s ({all_steps}) | "
                f"{median(threads, keep, 'cpu'):.1f} s | {median(threads, keep, 'user'):.1f} s | "
                f"{median(threads, keep, 'sys'):.1f} s | {median(threads, keep, 'faults') / 1000:.0f} k |"
            )
        rows.append(
            f"| {threads} | **off / kept** | **{ratio(threads, 'step'):.2f}** | **{ratio(threads, 'cpu'):.2f}** | "
            f"**{ratio(threads, 'user'):.2f}** | **{ratio(threads, 'sys'):.2f}** | **{ratio(threads, 'faults'):.1f}** |"
        )
    defaults = {"repeats": 3, "steps": 4, "size": 128, "filters": 16, "threads": [1, 2]}
    options = [f"--{name} {' '.join(map(str, value)) if isinstance(value, list) else value}"
               for name, value in vars(args).items() if name in defaults and value != defaults[name]]
    command = " ".join([".venv/bin/python benchmarks/bench_memory.py", *options])
    return "\n".join([
        "## Keeping freed memory during activation maximization (CPU)",
        "",
        f"Machine: {report.machine()}. Command: `{command}`. VGG16 (random weights) block3_conv1, "
        f"{args.filters} filters at {args.size} px, {args.steps} steps per run; each run a fresh process, the two "
        f"settings interleaved, {args.repeats} runs each; medians. CPU time (user + system, `getrusage`) and page "
        f"faults are for the whole timed call ({args.steps} steps, the first included). Load average (1, 5, 15 min) "
        f"before and after each round: {' / '.join(loads)}: the machine's 2 cores were shared with other jobs, "
        "so wall times are noisy (see each run's step time); CPU times much less so.",
        "",
        "| torch threads | freed memory | time per step (median; all runs) | CPU time | user | system | minor page faults |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "With the setting (on by default, `cnn_widgets.engine.memory.keep_freed_memory`), glibc serves the step's "
        "large buffers from its heap and does not trim it while the optimization runs, so freed buffers are reused "
        "instead of unmapped, mapped again and zero-filled by the kernel; afterwards the settings are put back and the "
        "memory is returned (`malloc_trim`).",
        "",
        f"Total benchmark time: {seconds:.0f} s.",
    ])


if __name__ == "__main__":
    main()
