"""Feature maps and filter switching: engine and kernel-side costs (issue: look inside).

    .venv/bin/python benchmarks/bench_feature_maps.py

1. All 13 conv layers of VGG16 for one 224x224 image versus one plain forward pass.
2. Moving to another filter of a cached layer (crop, normalize, encode) for a 224x224 map.
3. Drawing a full grid of 512 maps of a 14x14 layer.
Random weights: timing does not depend on what the weights are.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

import cnn_widgets as cw  # noqa: E402
from cnn_widgets import engine  # noqa: E402


def main() -> None:
    args = report.parse_threads(__doc__)
    torch.manual_seed(0)
    model = cw.load_model("vgg16", weights=None, device="cpu")
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        forward = report.timeit(lambda: model.module(image), repeat=7)
    maps = report.timeit(lambda: engine.feature_maps(model, image, cache=False), repeat=7)
    ratio = report.median_ms(maps) / report.median_ms(forward)

    widget = cw.FeatureMaps(model, cw.sample_image("cat"), layer="block1_conv1")
    state = {"i": 0}

    def next_filter():
        state["i"] = (state["i"] + 1) % 64
        widget.filter_index = state["i"]

    switch = report.timeit(next_filter, repeat=30)
    widget.layer = "block5_conv3"
    widget.colormap = "viridis"

    def redraw_grid():
        widget._grid_cache.clear()
        widget.colormap = "inferno" if widget.colormap == "viridis" else "viridis"

    grid = report.timeit(redraw_grid, repeat=7)
    rows = [
        ("Feature maps, all 13 VGG16 conv layers, 224x224 (one pass)", report.median_ms(maps), f"{ratio:.2f}x one forward pass ({report.median_ms(forward):.0f} ms)", "<= 1.2x"),
        ("Next filter of a cached 224x224 layer (crop, normalize, encode)", report.median_ms(switch), "", "< 20 ms"),
        ("Full grid of 512 maps, 14x14 layer (normalize, colorize, stitch, encode)", report.median_ms(grid), "", "< 100 ms"),
    ]
    table = ["| what | median | compared with | target |", "| --- | ---: | --- | --- |"]
    table += [f"| {what} | {ms:.1f} ms | {versus} | {target} |" for what, ms, versus, target in rows]
    body = (
        "## Feature maps and filter switching (kernel side)\n\n"
        f"Machine: {report.machine()}, {args.threads} torch thread(s). Command: `.venv/bin/python benchmarks/bench_feature_maps.py --threads {args.threads}`.\n\n" + "\n".join(table)
    )
    print(body)
    report.write_section("bench_feature_maps", body)


if __name__ == "__main__":
    main()
