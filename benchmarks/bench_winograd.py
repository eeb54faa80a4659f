"""Would Winograd convolution beat oneDNN on the shipped model's step? (issue 19, tried, not kept)

    .venv/bin/python benchmarks/bench_winograd.py

The shipped fashion-cnn's maximization step is mostly block1_conv2: a 3x3, stride-1, 32 x 32
channel conv at 28 px on 16 images, forward and back to its input (itself a 3x3 conv with the
kernel flipped and its channel axes swapped). Direct convolution needs 2 * 16 * 32 * 32 * 9 * 784
= 0.23 GFLOP for each; Winograd F(2x2, 3x3) does 2.25x and F(4x4, 3x3) 4x fewer multiplications
(Lavin and Gray, 2016). This runs both, written with PyTorch operations (tiles gathered from a
strided view, each transform one matrix product with a Kronecker-product matrix, the products
of the transformed tiles one batched matrix product), against oneDNN's conv2d and its backward to
the input, 1 thread, channels_last, CPU time (median of 15 repeats of 10 calls), and prints
each stage's time and the largest error against a float64 conv. Nothing in the package uses it:
on the machine measured (BENCHMARKS.md) both are about 2x slower than oneDNN.
"""
from __future__ import annotations

import resource
import statistics

import torch
import torch.nn.functional as F

# Winograd's matrices (Lavin and Gray): input transform B^T, kernel transform G, output transform A^T.
F4 = (
    [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
)
F2 = (
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    [[1, 1, 1, 0], [0, 1, -1, -1]],
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_ms(call, repeats: int = 15, calls: int = 10) -> float:
    call(), call()
    times = []
    for _ in range(repeats):
        start = cpu_seconds()
        for _ in range(calls):
            call()
        times.append((cpu_seconds() - start) / calls)
    return statistics.median(times) * 1000


class Winograd:
    """A 3x3, stride-1, padding-1 conv by Winograd F(m x m, 3x3), stage by stage."""

    def __init__(self, matrices, weight: torch.Tensor) -> None:
        input_t, kernel_t, output_t = (torch.tensor(m, dtype=torch.float64) for m in matrices)
        self.tile, self.out = input_t.shape[0], output_t.shape[0]
        self.input_product = torch.kron(input_t, input_t).float()  # (a*a, a*a)
        self.output_product = torch.kron(output_t, output_t).float()  # (m*m, a*a)
        kernels = torch.einsum("ij,kcjl,ml->imck", kernel_t, weight.double(), kernel_t)  # (a, a, C, K)
        self.kernels = kernels.reshape(self.tile**2, weight.shape[1], weight.shape[0]).float().contiguous()

    def stages(self, x: torch.Tensor) -> dict:
        """Each stage as a call on the previous one's result (for timing), and the result."""
        a, m = self.tile, self.out
        count, channels, height, width = x.shape
        rows, columns = -(-height // m), -(-width // m)
        calls = {}
        calls["pad"] = lambda: F.pad(x, (1, columns * m + a - m - 1 - width, 1, rows * m + a - m - 1 - height)).contiguous(
            memory_format=torch.channels_last)
        padded = calls["pad"]()
        hp, wp = padded.shape[-2:]
        tiles = padded.as_strided((a, a, count, rows, columns, channels), (wp * channels, channels, hp * wp * channels,
                                                                         m * wp * channels, m * channels, 1))
        calls["gather tiles"] = lambda: tiles.reshape(a * a, -1)
        gathered = calls["gather tiles"]()
        calls["input transform"] = lambda: (self.input_product @ gathered).view(a * a, -1, channels)
        transformed = calls["input transform"]()
        calls["products"] = lambda: torch.bmm(transformed, self.kernels)
        products = calls["products"]()
        filters = products.shape[-1]
        calls["output transform"] = lambda: (self.output_product @ products.view(a * a, -1)).view(m, m, count, rows, columns, filters)
        outputs = calls["output transform"]()
        calls["scatter"] = lambda: outputs.permute(2, 3, 0, 4, 1, 5).reshape(count, rows * m, columns * m, filters)[
            :, :height, :width].permute(0, 3, 1, 2)
        return calls, calls["scatter"]()


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    count, channels, size = 16, 32, 28
    layout = torch.channels_last
    x = torch.randn(count, channels, size, size).contiguous(memory_format=layout)
    weight = (torch.randn(channels, channels, 3, 3) * (2 / (9 * channels)) ** 0.5).contiguous(memory_format=layout)
    upstream = torch.randn(count, channels, size, size).contiguous(memory_format=layout)
    exact = F.conv2d(x.double(), weight.double(), padding=1)
    exact_back = torch.nn.grad.conv2d_input(x.shape, weight.double(), upstream.double(), padding=1)
    flops = 2 * count * channels * channels * 9 * size * size

    def backward():
        return torch.ops.aten.convolution_backward(upstream, x, weight, None, (1, 1), (1, 1), (1, 1), False, (0, 0), 1,
                                                   (True, False, False))[0]

    rows = [("oneDNN conv2d, forward", cpu_ms(lambda: F.conv2d(x, weight, padding=1)),
             (F.conv2d(x, weight, padding=1) - exact).abs().max().item(), None),
            ("oneDNN, backward to the input", cpu_ms(backward), (backward() - exact_back).abs().max().item(), None)]
    # The backward to the input is the same 3x3 conv with the kernel flipped and its channel axes swapped.
    flipped = weight.flip(-1, -2).transpose(0, 1)
    for name, matrices in (("F(2x2, 3x3)", F2), ("F(4x4, 3x3)", F4)):
        for direction, kernel, source, reference in (("forward", weight, x, exact), ("backward to the input", flipped, upstream, exact_back)):
            winograd = Winograd(matrices, kernel)
            calls, result = winograd.stages(source)
            stages = {stage: cpu_ms(call) for stage, call in calls.items()}
            whole = cpu_ms(lambda: winograd.stages(source)[1])
            rows.append((f"Winograd {name}, {direction}", whole, (result - reference).abs().max().item(), stages))
    print(f"16 images, 32 -> 32 channels, 3x3, 28 px, 1 thread; direct arithmetic {flops / 1e9:.3f} GFLOP per conv")
    print("| conv | CPU time | GFLOP/s (direct count) | largest error vs float64 | stages (ms) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, ms, error, stages in rows:
        detail = ", ".join(f"{stage} {value:.2f}" for stage, value in stages.items()) if stages else ""
        print(f"| {name} | {ms:.2f} ms | {flops / ms / 1e6:.0f} | {error:.1e} | {detail} |")


if __name__ == "__main__":
    main()
