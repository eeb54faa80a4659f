"""Training monitor overhead: one epoch of fashion-cnn's architecture on the Fashion-MNIST
training images, with and without cw.TrainingMonitor at default settings (every="auto").

The loop is the one a course would write (AdamW, batch 128, cross-entropy), from the same
seed in every run. Made to give a figure on a machine other jobs share:

- every run is its own fresh process (nothing one run warms up or leaves behind reaches the
  next), and the runs are interleaved in ABBA order (plain, monitored, monitored, plain, ...)
  so that a load that rises or falls during the benchmark falls on both alike;
- each round gives a paired overhead (its monitored run against its plain run, run next to
  each other); the summary is the median over rounds with the spread (min..max);
- OpenMP threads wait for each other passively in both arms (``OMP_WAIT_POLICY=PASSIVE``, unless
  ``--omp-wait-policy`` says otherwise). PyTorch's libgomp spins while it waits; on a loaded machine a
  spinning thread burns the core its partner needs, and libgomp throttles that spinning once the
  process has more OpenMP threads than cores, which the monitor's render thread brings about with its
  first snapshot. With the library's default, the monitored runs came out twice as fast as the plain
  ones at a load average of 10 (54 s against 25 s of CPU time for the same 50 steps): a measure of
  the spinning, not of the monitor. Passive waiting in both arms compares the same thing;
- it reports wall time (what the user waits for the training loop) and the process's CPU
  time (all threads: the monitor's render thread too, until its last snapshot is drawn), the
  median time of one step, the CPU time of the monitor's own thread, and the load average
  when each run started.

    PYTHONPATH=$PWD python benchmarks/bench_monitor.py                  # 60,000 images, 3 rounds (~1 h when busy)
    PYTHONPATH=$PWD python benchmarks/bench_monitor.py --images 6000 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ARMS = ("plain", "monitored")


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (the monitor's render thread too)."""
    times = os.times()
    return times.user + times.system


def thread_cpu_seconds(native_id: int) -> float:
    """User + system CPU time of one thread of this process (Linux /proc), 0.0 where unknown."""
    try:
        fields = open(f"/proc/self/task/{native_id}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def one_epoch(arm: str, count: int, batch_size: int) -> dict:
    """Train one epoch in this process and return its timings (one JSON line for the parent)."""
    import torch
    from torch import nn

    import cnn_widgets as cw
    from cnn_widgets.models.datasets import load_fashion_mnist
    from cnn_widgets.models.fashion_cnn import CLASSES, MEAN, STD, fashion_cnn

    images, labels = load_fashion_mnist("train")
    images = ((images[:count].float() / 255 - MEAN[0]) / STD[0]).unsqueeze(1)
    labels = labels[:count].long()
    torch.manual_seed(0)
    network = fashion_cnn(pretrained=False).train()
    monitor = None
    if arm == "monitored":
        model = cw.load_model(network, input_size=(1, 28, 28), mean=MEAN, std=STD, classes=list(CLASSES))
        monitor = cw.TrainingMonitor(model, cw.sample_image("sneaker"))
    optimizer = torch.optim.AdamW(network.parameters(), lr=2e-3)
    load = os.getloadavg()[0]
    step_seconds, in_monitor = [], 0.0
    drawn_before = monitor.snapshot_seconds if monitor is not None else 0.0  # snapshot 0, drawn before the loop
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for start in range(0, len(images) - batch_size + 1, batch_size):
        step_started = time.perf_counter()
        batch, target = images[start : start + batch_size], labels[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        logits = network(batch)
        loss = nn.functional.cross_entropy(logits, target)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            called = time.perf_counter()
            monitor.step(loss=loss, accuracy=(logits.argmax(1) == target).float().mean())
            in_monitor += time.perf_counter() - called
        step_seconds.append(time.perf_counter() - step_started)
    wall = time.perf_counter() - started
    result = {"arm": arm, "wall": wall, "step": statistics.median(step_seconds), "steps": len(step_seconds),
              "load": load, "snapshots": 0, "monitor_cpu": 0.0, "drain": 0.0, "every": "", "own": 0.0}
    if monitor is not None:
        monitor.wait(timeout=600)  # the snapshots still being drawn count in the CPU time
        result.update(snapshots=len(monitor.snapshot_steps), every=monitor.every_text,
                      drain=time.perf_counter() - started - wall,
                      monitor_cpu=thread_cpu_seconds(monitor._thread.native_id),
                      # the monitor's own measured time: its step() calls on the training thread plus copying
                      # and drawing the snapshots, against the loop's time without those calls
                      own=(in_monitor + monitor.snapshot_seconds - drawn_before) / (wall - in_monitor))
    result["cpu"] = cpu_seconds() - cpu_started
    if monitor is not None:
        monitor.close()
    result["threads"] = torch.get_num_threads()
    return result


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """'median (min..max)' of ``values`` times ``scale``."""
    return (f"{statistics.median(values) * scale:.{digits}f} "
            f"({min(values) * scale:.{digits}f}..{max(values) * scale:.{digits}f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--omp-wait-policy", choices=("PASSIVE", "ACTIVE", "default"), default="PASSIVE",
                        help="OMP_WAIT_POLICY of every run ('default': leave it unset, libgomp's spinning)")
    parser.add_argument("--one", choices=ARMS, help=argparse.SUPPRESS)  # one run, in a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_epoch(args.one, args.images, args.batch_size)), flush=True)
        return
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    environment = dict(os.environ)
    environment.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait_policy != "default":
        environment["OMP_WAIT_POLICY"] = args.omp_wait_policy
    print(f"{args.images} images, batch {args.batch_size}, {args.rounds} rounds in ABBA order, one process per run, "
          f"OMP_WAIT_POLICY={environment.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    for round_ in range(args.rounds):
        for arm in ARMS if round_ % 2 == 0 else ARMS[::-1]:
            child = subprocess.run(
                [sys.executable, __file__, "--one", arm, "--images", str(args.images), "--batch-size", str(args.batch_size)],
                capture_output=True, text=True, check=True, env=environment)
            run = json.loads(child.stdout.strip().splitlines()[-1])
            runs[arm].append(run)
            print(f"round {round_ + 1} {arm:>9}: {run['wall']:7.1f} s wall, {run['cpu']:7.1f} s CPU, "
                  f"step {run['step'] * 1000:5.0f} ms (median), load {run['load']:.1f}, {run['threads']} torch threads"
                  + (f"; {run['snapshots']} snapshots, monitor thread {run['monitor_cpu']:.1f} s CPU, "
                     f"{run['drain']:.1f} s to draw the last ones, its own time {run['own'] * 100:.1f} % of the loop's; "
                     f"{run['every']}" if arm == "monitored" else ""),
                  flush=True)
    plain, watched = runs["plain"], runs["monitored"]
    paired = {key: [w[key] / p[key] - 1 for p, w in zip(plain, watched)] for key in ("wall", "cpu", "step")}
    print("\nmedian (min..max) over rounds")
    for key, label in (("wall", "wall s"), ("cpu", "CPU s")):
        print(f"  {label:>8}: plain {spread([r[key] for r in plain])}, monitored {spread([r[key] for r in watched])}")
    print(f"  step ms : plain {spread([r['step'] for r in plain], 1000, 0)}, monitored {spread([r['step'] for r in watched], 1000, 0)}")
    print(f"  monitor thread CPU / plain CPU: {spread([w['monitor_cpu'] / p['cpu'] for p, w in zip(plain, watched)], 100)} %")
    print(f"  the monitor's own time (step() + copying + drawing) / the loop's: {spread([w['own'] for w in watched], 100)} %")
    for key, label in (("wall", "wall time"), ("cpu", "CPU time"), ("step", "median step")):
        print(f"  overhead, {label:>11} (paired per round): {spread(paired[key], 100)} %")


if __name__ == "__main__":
    main()
