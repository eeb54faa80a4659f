"""What one activation-maximization step costs on the CPU, against the CPU's own peak (issue 19).

    .venv/bin/python benchmarks/bench_step_cost.py --threads 1

For each case: the arithmetic of one step (convolutions forward and backward, counted
by ``torch.utils.flop_counter``), the CPU time of a step (user + system, ``getrusage``,
over a run of steps after a warm-up) and its wall time (median step-to-step), and the
fraction of the peak that makes: the best float32 matmul throughput of this process
at the same thread count, also in CPU time. CPU time is what the computation itself
used, so it stays meaningful on a machine shared with other jobs, where wall time does
not; the wall-time fraction is shown too.

Cases: the shipped fashion-cnn as the ActivationMaximization widget first runs it
(block2_conv1, filters 0-15, 28 px) and with one filter; VGG16 (random weights)
block1_conv2, 16 filters at 128 px, the issue's example of small work.

``--baseline DIR`` compares this tree with another checkout of cnn-widgets (for example
``git worktree add /tmp/speed-base 155cc6b``): each run is a fresh process with PYTHONPATH
set to one tree, in the order this, baseline, baseline, this, ... (ABBA), so that load from
other work on a shared machine falls on both alike; the section then shows both.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

import cnn_widgets as cw  # noqa: E402
from cnn_widgets.engine.optvis import maximize  # noqa: E402

CASES = (
    ("fashion-cnn", "block2_conv1", 16, 28, 32),  # model, layer, filters, size, steps
    ("fashion-cnn", "block2_conv1", 1, 28, 64),
    ("vgg16", "block1_conv2", 16, 128, 4),
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def matmul_peak(n: int = 1024, repeats: int = 7) -> float:
    """Best float32 matmul FLOP/s, per CPU second of this process."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = cpu_seconds()
        for _ in range(5):
            a @ b
        best = min(best, (cpu_seconds() - start) / 5)
    return 2 * n**3 / best


def one_case(model, layer: str, count: int, size: int, steps: int, repeats: int) -> dict:
    filters = list(range(count))
    maximize(model, layer, filters, steps=2, size=size)  # warm-up
    with FlopCounterMode(display=False) as counter:
        maximize(model, layer, filters, steps=1, size=size)
    cpu, wall = [], []
    for _ in range(repeats):
        stamps = []
        start = cpu_seconds()
        maximize(model, layer, filters, steps=steps, size=size, progress=lambda *_: stamps.append(time.perf_counter()))
        cpu.append((cpu_seconds() - start) / steps)
        wall.append(statistics.median(later - earlier for earlier, later in zip(stamps, stamps[1:])))
    return {"flops": counter.get_total_flops(), "cpu": statistics.median(cpu), "wall": statistics.median(wall)}


def measure(threads: int, repeats: int) -> dict:
    """The peak and every case in this process (the tree on sys.path)."""
    torch.set_num_threads(threads)
    results = {"peak": matmul_peak(), "cases": [], "package": cw.__file__}
    models = {}
    for name, layer, count, size, steps in CASES:
        if name not in models:
            torch.manual_seed(0)
            models[name] = cw.load_model(name, weights="default" if name == "fashion-cnn" else None, device="cpu")
        results["cases"].append(one_case(models[name], layer, count, size, steps, repeats))
    return results


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def label(name: str, layer: str, count: int, size: int) -> str:
    return f"{name} {layer}, {count} filter{'s' if count > 1 else ''}, {size} px"


def single(args, began: float) -> str:
    repeats = 3
    result = measure(args.threads, repeats)
    peak, rows = result["peak"], []
    for (name, layer, count, size, _), case in zip(CASES, result["cases"]):
        rows.append(
            f"| {label(name, layer, count, size)} | {case['flops'] / 1e9:.3f} | "
            f"{case['cpu'] * 1000:.1f} ms | {100 * case['flops'] / case['cpu'] / peak:.0f} % | "
            f"{case['wall'] * 1000:.1f} ms | {100 * case['flops'] / case['wall'] / peak:.0f} % |"
        )
        print(rows[-1], flush=True)
    command = f".venv/bin/python benchmarks/bench_step_cost.py --threads {args.threads}"
    if args.section not in (None, "bench_step_cost"):
        command += f" --section {args.section}"
    if args.note:
        command += f' --note "{args.note}"'
    return "\n".join([
        f"## One activation-maximization step against the CPU's peak{' ' + args.note if args.note else ''}",
        "",
        f"Machine: {report.machine()}, {args.threads} torch thread(s); load average {load_average()} "
        f"when it ended (the 2 cores are shared with other jobs). Command: `{command}`. "
        f"Peak: best float32 matmul (1024 x 1024) of the same process, {peak / 1e9:.0f} GFLOP/s per CPU second. "
        f"Medians of {repeats} runs after a warm-up; CPU time per step = the run's user + system time / steps; "
        "wall time per step = median step-to-step time.",
        "",
        "| case | GFLOP per step | CPU time per step | of peak (CPU time) | wall time per step | of peak (wall) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Total benchmark time: {time.perf_counter() - began:.0f} s.",
    ])


def child_run(tree: str, threads: int) -> dict:
    environment = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run([sys.executable, __file__, "--child", "--threads", str(threads)], env=environment,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["package"].startswith(tree):
        sys.exit(f"the run for {tree} imported cnn_widgets from {result['package']}")
    return result


def paired(args, began: float) -> str:
    """ABBA runs of this tree (after) and the baseline (before), one fresh process each."""
    here = str(Path(__file__).resolve().parents[1])
    trees = {"after": here, "before": str(Path(args.baseline).resolve())}
    runs: dict[str, list[dict]] = {"after": [], "before": []}
    loads = [load_average()]
    for round_ in range(args.rounds):
        for which in (("after", "before") if round_ % 2 == 0 else ("before", "after")):
            runs[which].append(child_run(trees[which], args.threads))
            print(which, json.dumps(runs[which][-1]), flush=True)
        loads.append(load_average())

    def median(which: str, index: int, key: str) -> float:
        return statistics.median(run["cases"][index][key] for run in runs[which])

    peak = statistics.median(run["peak"] for run in runs["after"] + runs["before"])
    rows = []
    for index, (name, layer, count, size, _) in enumerate(CASES):
        before_cpu, after_cpu = median("before", index, "cpu"), median("after", index, "cpu")
        before_wall, after_wall = median("before", index, "wall"), median("after", index, "wall")
        flops = median("after", index, "flops")
        every = ", ".join(f"{run['cases'][index]['cpu'] * 1000:.1f}" for run in runs["before"])
        every_after = ", ".join(f"{run['cases'][index]['cpu'] * 1000:.1f}" for run in runs["after"])
        rows.append(
            f"| {label(name, layer, count, size)} | {flops / 1e9:.3f} | {before_cpu * 1000:.1f} ms ({every}) | "
            f"{after_cpu * 1000:.1f} ms ({every_after}) | **{before_cpu / after_cpu:.2f}x** | "
            f"{before_wall * 1000:.1f} ms | {after_wall * 1000:.1f} ms | {before_wall / after_wall:.2f}x | "
            f"{100 * flops / before_cpu / peak:.0f} % | **{100 * flops / after_cpu / peak:.0f} %** |"
        )
    shipped, small = 0, 2  # the rows the targets are about
    shipped_before, shipped_after = median("before", shipped, "cpu"), median("after", shipped, "cpu")
    shipped_flops = median("after", shipped, "flops")
    small_fraction = 100 * median("after", small, "flops") / median("after", small, "cpu") / peak
    targets = (
        f"Issue 19's targets, measured here: the shipped model's step 3x faster than before: "
        f"{shipped_before / shipped_after:.2f}x ({'met' if shipped_before / shipped_after >= 3 else 'missed'}); "
        f"block1_conv2 at 128 px at 40 % of peak: {small_fraction:.0f} % ({'met' if small_fraction >= 40 else 'missed'}). "
        f"A 3x faster shipped-model step would take {shipped_before / 3 * 1000:.1f} ms of CPU time; its arithmetic alone "
        f"({shipped_flops / 1e9:.2f} GFLOP, nearly all of it block1_conv2's 32 x 32 channel conv at 28 px, forward "
        f"and back to its input) takes {shipped_flops / peak * 1000:.1f} ms at this process's float32 matmul peak."
    )
    command = f".venv/bin/python benchmarks/bench_step_cost.py --threads {args.threads} --baseline {args.baseline}"
    if args.rounds != 4:
        command += f" --rounds {args.rounds}"
    return "\n".join([
        f"## One activation-maximization step, before and after{' ' + args.note if args.note else ''}",
        "",
        f"Machine: {report.machine()}, {args.threads} torch thread(s). Command: `{command}` "
        f"(before: `{args.baseline}`, a checkout of {args.before_name}; after: this tree). "
        f"{args.rounds} rounds, each a fresh process per version, in ABBA order; medians over the rounds, "
        "every run's CPU time per step in brackets. CPU time per step = the run's user + system time / steps "
        "(median of 3 runs after a warm-up in each process); wall time = median step-to-step time. "
        f"Peak: best float32 matmul (1024 x 1024), {peak / 1e9:.0f} GFLOP/s per CPU second (median over the processes); "
        "the arithmetic (GFLOP per step) is the same in both versions. "
        f"Load average (1, 5, 15 min) before and after each round: {' / '.join(loads)}: the machine's 2 cores "
        "were shared with other sessions' tests and benchmarks throughout, so wall times are inflated and noisy; "
        "CPU times much less so, but memory-bound work still slows when other processes share the caches and memory.",
        "",
        "| case | GFLOP per step | CPU time per step, before | after | speed-up (CPU) | wall, before | wall, after | speed-up (wall) | of peak, before | of peak, after (CPU time) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        targets,
        "",
        f"Total benchmark time: {time.perf_counter() - began:.0f} s.",
    ])


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--section", default=None, help="BENCHMARKS.md section to write (to keep a before/after pair)")
    parser.add_argument("--note", default="", help="appended to the section's heading, e.g. which version of the code ran")
    parser.add_argument("--baseline", default=None, help="another checkout to compare with, ABBA (see the module docstring)")
    parser.add_argument("--before-name", default="main at 155cc6b", help="what the baseline checkout is, for the text")
    parser.add_argument("--rounds", type=int, default=4, help="ABBA rounds with --baseline")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.threads, 3)))
        return
    began = time.perf_counter()
    if args.baseline:
        body = paired(args, began)
        section = args.section or "bench_step_cost_before"
    else:
        body = single(args, began)
        section = args.section or "bench_step_cost"
    print(body)
    report.write_section(section, body)


if __name__ == "__main__":
    main()
