"""Dataset examples: the 10,000 Fashion-MNIST test images through every filter of
the shipped model (issue: course-ready experience).

    .venv/bin/python benchmarks/bench_examples.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

import cnn_widgets as cw  # noqa: E402
from cnn_widgets.engine.examples import dataset_examples  # noqa: E402
from cnn_widgets.models.datasets import load_fashion_mnist  # noqa: E402


def main() -> None:
    args = report.parse_threads(__doc__)
    model = cw.load_model("fashion-cnn", device="cpu")
    images, _ = load_fashion_mnist("test")
    filters = sum(layer.out_channels for layer in model.layers)
    times = report.timeit(lambda: dataset_examples(model, images, k=9, cache=False), repeat=3, warmup=1)
    cached = report.timeit(lambda: dataset_examples(model, images, k=9), repeat=3, warmup=1)
    inputs = model.normalize(images.float().div(255).unsqueeze(1))

    def forward_only():
        with torch.no_grad():
            for start in range(0, len(inputs), 500):
                model.module.features(inputs[start : start + 500])

    forward = report.timeit(forward_only, repeat=3, warmup=1)
    body = (
        "## Dataset examples (top 9 images per filter)\n\n"
        f"Machine: {report.machine()}, {args.threads} torch thread(s). Command: `.venv/bin/python benchmarks/bench_examples.py`.\n\n"
        "| what | median | target |\n| --- | ---: | --- |\n"
        f"| 10,000 Fashion-MNIST test images x all {filters} filters of fashion-cnn ({len(model.layers)} layers), one batched pass | {report.median_ms(times) / 1000:.1f} s | a few seconds |\n"
        f"| the same again (cached) | {report.median_ms(cached):.2f} ms | |\n"
        f"| for scale: a plain forward pass of the conv layers over the same images | {report.median_ms(forward) / 1000:.1f} s | |"
    )
    print(body)
    report.write_section("bench_examples", body)


if __name__ == "__main__":
    main()
