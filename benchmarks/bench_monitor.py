"""Training monitor overhead: one epoch of fashion-cnn's architecture on the Fashion-MNIST
training images, with and without cw.TrainingMonitor at default settings (every="auto").

The loop is the one a course would write (AdamW, batch 128, cross-entropy), from the same
seed both times; the runs alternate (plain, monitored, plain, monitored ...) so that the
shared machine's load falls on both alike. Prints each run's wall time and the process's CPU
time (all threads, the monitor's render thread included, until its last snapshot is drawn):
on a machine other jobs share, CPU time is the steadier measure of what the monitor costs.

    PYTHONPATH=$PWD python benchmarks/bench_monitor.py                  # 60,000 images, 1 round
    PYTHONPATH=$PWD python benchmarks/bench_monitor.py --images 6000 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets.models.datasets import load_fashion_mnist
from cnn_widgets.models.fashion_cnn import MEAN, STD, fashion_cnn


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (the monitor's render thread too)."""
    times = os.times()
    return times.user + times.system


def one_epoch(images: torch.Tensor, labels: torch.Tensor, batch_size: int, monitored: bool) -> tuple[float, float, int]:
    torch.manual_seed(0)
    network = fashion_cnn(pretrained=False).train()
    monitor = None
    if monitored:
        model = cw.load_model(network, input_size=(1, 28, 28), mean=MEAN, std=STD, classes=list(cw.load_model("fashion-cnn").classes))
        monitor = cw.TrainingMonitor(model, cw.sample_image("sneaker"))
    optimizer = torch.optim.AdamW(network.parameters(), lr=2e-3)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for start in range(0, len(images) - batch_size + 1, batch_size):
        batch, target = images[start : start + batch_size], labels[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        logits = network(batch)
        loss = nn.functional.cross_entropy(logits, target)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.step(loss=loss, accuracy=(logits.argmax(1) == target).float().mean())
    seconds = time.perf_counter() - started
    snapshots = 0
    if monitor is not None:
        monitor.wait(timeout=600)  # the snapshots still being drawn count in the CPU time
        snapshots = len(monitor.snapshot_steps)
        print(f"  {monitor.every_text}", flush=True)
        monitor.close()
    return seconds, cpu_seconds() - cpu_started, snapshots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    images, labels = load_fashion_mnist("train")
    images = ((images[: args.images].float() / 255 - MEAN[0]) / STD[0]).unsqueeze(1)
    labels = labels[: args.images].long()
    print(f"torch threads: {torch.get_num_threads()}, images: {len(images)}, batch {args.batch_size}", flush=True)
    plain, watched, plain_cpu, watched_cpu = [], [], [], []
    for round_ in range(args.rounds):
        seconds, cpu, _ = one_epoch(images, labels, args.batch_size, monitored=False)
        plain.append(seconds)
        plain_cpu.append(cpu)
        print(f"round {round_ + 1}: plain {seconds:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        seconds, cpu, snapshots = one_epoch(images, labels, args.batch_size, monitored=True)
        watched.append(seconds)
        watched_cpu.append(cpu)
        print(f"round {round_ + 1}: monitored {seconds:.1f} s wall, {cpu:.1f} s CPU ({snapshots} snapshots)", flush=True)
    wall = statistics.median(watched) / statistics.median(plain) - 1
    cpu = statistics.median(watched_cpu) / statistics.median(plain_cpu) - 1
    print(f"median wall: plain {statistics.median(plain):.1f} s, monitored {statistics.median(watched):.1f} s: overhead {wall * 100:+.1f} %")
    print(f"median CPU time: plain {statistics.median(plain_cpu):.1f} s, monitored {statistics.median(watched_cpu):.1f} s: overhead {cpu * 100:+.1f} %")


if __name__ == "__main__":
    main()
