"""What an activation-maximization run will cost, before it runs.

A step is a forward pass up to the target layer and a backward pass to the pixels,
for every image. Its arithmetic is counted from the conv layers the model already
knows (``Model.layers``: channels, kernel, output shape), scaled to the image size;
dividing by the device's throughput gives seconds. The throughput is first guessed
from a short matrix multiplication on the device (:func:`matmul_throughput`) times the
fraction of it that optimization steps reached here (``STEP_EFFICIENCY``), and should
then be replaced by what real steps measure (:func:`seconds`'s ``throughput``).
"""
from __future__ import annotations

import time

import torch

from ...models import as_model, resolve_device

# Optimization steps (convolutions forward and backward to the pixels, small batches) reach
# roughly this fraction of a float32 matmul's throughput: measured on a 2-core CPU, from
# 12 % (VGG16 block1_conv2, 128 px) to 50 % (fashion-cnn, 28 px) in BENCHMARKS.md
# (bench_step_cost), higher for deep VGG16 layers. Only a first guess: the widget replaces
# it with the throughput its own steps reach.
STEP_EFFICIENCY = 0.3
_throughputs: dict[str, float] = {}


def step_flops(model, layer=None, size=None, images: int = 1, objective: str = "channel") -> float:
    """Floating-point operations of one optimization step: ``images`` images of ``size``
    (int or (height, width); default the model's input size) through the conv layers up
    to ``layer`` (all of them, at the model's input size, for ``objective="class"``) and back to the pixels.

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> step_flops(model, "block2_conv1", 28, images=16) > step_flops(model, "block1_conv1", 28, images=16) > 0
    True
    """
    model = as_model(model)
    if objective == "class":  # the whole network, at its own input size (maximize resizes to it)
        size = None
    height, width = (size, size) if isinstance(size, int) else (size or model.input_size[1:])
    last = None if objective == "class" else model.layer(layer).index
    total = 0.0
    for info in model.layers:
        if last is not None and info.index > last:
            continue
        if not info.output_shape:
            continue
        _, out_h, out_w = info.output_shape
        positions = out_h * out_w * (height / model.input_size[1]) * (width / model.input_size[2])
        kh, kw = info.kernel_size
        total += 2 * (info.in_channels // info.groups) * info.out_channels * kh * kw * positions
    return 2 * total * images  # the backward pass to the pixels costs about as much as the forward


def matmul_throughput(device=None) -> float:
    """Floating-point operations per second of a float32 matmul on ``device`` (best of a few
    512x512 products, about 50 ms on a CPU), measured once per device and process.

    >>> matmul_throughput("cpu") > 0
    True
    """
    device = resolve_device(device or "cpu")
    key = str(device)
    if key not in _throughputs:
        a = torch.randn(512, 512, device=device)
        best = float("inf")
        for _ in range(5):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            (a @ a).sum().item()
            best = min(best, time.perf_counter() - started)
        _throughputs[key] = 2 * 512**3 / max(best, 1e-9)
    return _throughputs[key]


def seconds(model, layer=None, images: int = 1, steps: int = 1, size=None, objective: str = "channel", throughput: float | None = None) -> float:
    """Estimated seconds of a run: :func:`step_flops` times ``steps`` over ``throughput``
    (operations per second; by default :func:`matmul_throughput` of the model's device
    times ``STEP_EFFICIENCY``).

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> seconds(model, "block2_conv1", images=16, steps=128, size=28, throughput=1e10)
    9.06...
    """
    model = as_model(model)
    if throughput is None:
        throughput = matmul_throughput(model.device) * STEP_EFFICIENCY
    return step_flops(model, layer, size, images, objective) * steps / throughput
