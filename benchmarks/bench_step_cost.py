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
"""
from __future__ import annotations

import resource
import statistics
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


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--section", default="bench_step_cost", help="BENCHMARKS.md section to write (to keep a before/after pair)")
    parser.add_argument("--note", default="", help="appended to the section's heading, e.g. which version of the code ran")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    repeats = 3
    peak = matmul_peak()
    rows = []
    models = {}
    for name, layer, count, size, steps in CASES:
        if name not in models:
            torch.manual_seed(0)
            models[name] = cw.load_model(name, weights="default" if name == "fashion-cnn" else None, device="cpu")
        result = one_case(models[name], layer, count, size, steps, repeats)
        rows.append(
            f"| {name} {layer}, {count} filter{'s' if count > 1 else ''}, {size} px | {result['flops'] / 1e9:.3f} | "
            f"{result['cpu'] * 1000:.1f} ms | {100 * result['flops'] / result['cpu'] / peak:.0f} % | "
            f"{result['wall'] * 1000:.1f} ms | {100 * result['flops'] / result['wall'] / peak:.0f} % |"
        )
        print(rows[-1], flush=True)
    command = f".venv/bin/python benchmarks/bench_step_cost.py --threads {args.threads}"
    if args.section != "bench_step_cost":
        command += f" --section {args.section}"
    if args.note:
        command += f' --note "{args.note}"'
    body = "\n".join([
        f"## One activation-maximization step against the CPU's peak{' ' + args.note if args.note else ''}",
        "",
        f"Machine: {report.machine()}, {args.threads} torch thread(s); load average {', '.join(f'{v:.1f}' for v in __import__('os').getloadavg())} "
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
    print(body)
    report.write_section(args.section, body)


if __name__ == "__main__":
    main()
