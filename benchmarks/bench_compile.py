"""Does ``torch.compile`` (inductor, CPU) pay on the parts of an activation-maximization step
that are memory-bound elementwise work? (issue 19, item 2; figures in BENCHMARKS.md)

    .venv/bin/python benchmarks/bench_compile.py

One process, 1 torch thread, the shapes of VGG16 block1_conv2 at 128 px with 16 images
(the canvas after the standard transforms' padding is 152 px). Each part is timed eager and
compiled (``torch.compile(dynamic=False)``, default mode), alternating, in CPU time (user +
system, ``getrusage``); medians over the rounds. The compile time is that of the first call
(inductor's on-disk cache, ~/.cache or /tmp/torchinductor_*, makes a second process faster).

Parts:
- the image front: Fourier parameterization, color decorrelation, sigmoid, the standard
  transforms (one grid_sample) and the ImageNet normalization, forward and backward;
- the target filter's convolution as the engine runs it on the CPU
  (``narrow.selected_channels``: one product and 9 shifted sums), forward and backward to
  its 64-channel input;
- the same backward product fused with the ReLU backward in front of it (which the engine
  leaves to autograd today): eager = the product then ``threshold_backward``; compiled = the
  two in one function, where inductor writes the masked result in one pass.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnn_widgets.engine.optvis import narrow  # noqa: E402
from cnn_widgets.engine.optvis.param import make_image  # noqa: E402
from cnn_widgets.engine.optvis.streams import ImageStreams  # noqa: E402
from cnn_widgets.engine.optvis.transform import make_transforms  # noqa: E402

COUNT, SIZE, CHANNELS, ROUNDS = 16, 128, 64, 7


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def front_part():
    streams = ImageStreams(0, list(range(COUNT)))
    images = make_image("fourier", streams, 3, (SIZE, SIZE), "cpu")
    transform = make_transforms("standard", (SIZE, SIZE))
    draws = streams.uniform((1, transform.draws))[:, 0]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def front(uniform):
        return (transform(images.render(0, COUNT), uniform) - mean) / std

    def step(fn):
        for tensor in images.parameters:
            tensor.grad = None
        out = fn(draws)
        out.backward(torch.ones_like(out))
        return out

    return front, step


def selected_part():
    canvas = SIZE + 24
    inputs = torch.relu(torch.randn(COUNT, CHANNELS, canvas, canvas)).to(memory_format=torch.channels_last)
    weight, bias = torch.randn(COUNT, CHANNELS, 3, 3), torch.randn(COUNT)

    def selected(x):
        return narrow.selected_channels(x, weight, bias, (1, 1, 1, 1))

    def step(fn):
        x = inputs.detach().requires_grad_(True)
        out = fn(x)
        out.backward(torch.ones_like(out))
        return x.grad

    return selected, step


def relu_part():
    canvas = SIZE + 24
    positions = canvas * canvas
    inside, taps = torch.randn(COUNT, 9, positions), torch.randn(COUNT, 9, CHANNELS)
    relu_out = torch.relu(torch.randn(COUNT, positions, CHANNELS))

    def eager(inside, taps, relu_out):
        return torch.ops.aten.threshold_backward(torch.bmm(inside.transpose(1, 2), taps), relu_out, 0.0)

    def fused(inside, taps, relu_out):
        rows = torch.bmm(inside.transpose(1, 2), taps)
        return torch.where(relu_out <= 0, torch.zeros((), dtype=rows.dtype), rows)

    def step(fn):
        return fn(inside, taps, relu_out)

    return eager, fused, step


def measure(name: str, eager, compiled_source, step) -> str:
    start_cpu, start_wall = cpu_seconds(), time.perf_counter()
    compiled = torch.compile(compiled_source, dynamic=False)
    first = step(compiled)
    compile_cpu, compile_wall = cpu_seconds() - start_cpu, time.perf_counter() - start_wall
    difference = (first - step(eager)).abs().max().item()
    times = {"eager": [], "compiled": []}
    for _ in range(ROUNDS):
        for label, fn in (("eager", eager), ("compiled", compiled)):
            start = cpu_seconds()
            step(fn)
            times[label].append(cpu_seconds() - start)
    eager_ms, compiled_ms = (statistics.median(times[k]) * 1e3 for k in ("eager", "compiled"))
    return (f"| {name} | {eager_ms:.1f} ms | {compiled_ms:.1f} ms | {eager_ms / compiled_ms:.2f}x | "
            f"{compile_cpu:.1f} s ({compile_wall:.1f} s wall) | {difference:.1e} |")


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {COUNT} images at {SIZE} px; load average before: "
          + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print("| part (forward and backward unless said) | eager, CPU time | compiled | speed-up | compile time (CPU) | max difference |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    front, step = front_part()
    print(measure("image front: Fourier image, colors, sigmoid, transforms, normalization", front, front, step), flush=True)
    selected, step = selected_part()
    print(measure("target filter's conv (narrow.selected_channels), 64 channels in", selected, selected, step), flush=True)
    eager, fused, step = relu_part()
    print(measure("its backward product + the ReLU backward before it (backward only)", eager, fused, step), flush=True)
    print("load average after: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
