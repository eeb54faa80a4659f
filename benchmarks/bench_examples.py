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
from cnn_widgets.models.state import channels_last  # noqa: E402


def main() -> None:
    args = report.parse_threads(__doc__)
    model = cw.load_model("fashion-cnn", device="cpu")
    images, _ = load_fashion_mnist("test")
    filters = sum(layer.out_channels for layer in model.layers)
    times = report.timeit(lambda: dataset_examples(model, images, k=9, cache=False), repeat=3, warmup=1)
    cached = report.timeit(lambda: dataset_examples(model, images, k=9), repeat=3, warmup=1)
    inputs = model.normalize(images.float().div(255).unsqueeze(1))

    def forward_only(layout=torch.contiguous_format, batch=500):
        with torch.no_grad(), channels_last(model.module, enabled=layout == torch.channels_last):
            for start in range(0, len(inputs), batch):
                model.module.features(inputs[start : start + batch].contiguous(memory_format=layout))

    plain = report.timeit(forward_only, repeat=3, warmup=1)
    nhwc = report.timeit(lambda: forward_only(torch.channels_last, 256), repeat=3, warmup=1)
    body = (
        "## Dataset examples (top 9 images per filter)\n\n"
        f"Machine: {report.machine()}, {args.threads} torch thread(s). Command: `.venv/bin/python benchmarks/bench_examples.py --threads {args.threads}`.\n\n"
        "| what | median | target |\n| --- | ---: | --- |\n"
        f"| 10,000 Fashion-MNIST test images x all {filters} filters of fashion-cnn ({len(model.layers)} layers), one batched pass | {report.median_ms(times) / 1000:.1f} s | a few seconds |\n"
        f"| the same again (cached) | {report.median_ms(cached):.2f} ms | |\n"
        f"| for scale: a plain forward pass of the conv layers over the same images (batches of 500, default layout) | {report.median_ms(plain) / 1000:.1f} s | |\n"
        f"| for scale: the same forward pass in channels_last, batches of 256 (what the scan uses) | {report.median_ms(nhwc) / 1000:.1f} s | |\n\n"
        "The scan runs the convolutions in channels_last (the weights are switched for the scan and the very same "
        "tensors put back), reads each filter's strongest response inside the forward hook, and keeps a running top-k."
    )
    print(body)
    report.write_section("bench_examples", body)


if __name__ == "__main__":
    main()
