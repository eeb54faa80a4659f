"""How close ActivationMaximization's first time estimate is to the run it estimates (issue 14).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_first_estimate.py fashion-cnn
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_first_estimate.py vgg16 block3_conv1

One fresh process per case (nothing measured before): a widget with the default
filters, steps and size for the model and device, its status line before Run (the
estimate and its measured basis), then Run, and the run's wall time over the estimate.
VGG16 gets random weights (the estimate is about time, not about what it shows).
"""
from __future__ import annotations

import argparse
import re
import time

import cnn_widgets as cw
from cnn_widgets.widgets.maximization import ActivationMaximization


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="fashion-cnn or vgg16 (random weights)")
    parser.add_argument("layer", nargs="?", default=None, help="the layer (default: the widget's, the first conv)")
    args = parser.parse_args()
    model = cw.load_model(args.model, weights=None) if args.model == "vgg16" else cw.load_model(args.model)
    started = time.perf_counter()
    widget = ActivationMaximization(model, layer=args.layer)
    opened = time.perf_counter() - started
    print(f"widget opened in {opened:.1f} s (the step timing included)")
    print(f"before Run: {widget.status}")
    shown = re.search(r"in about ([0-9.]+) (s|min|h)", widget.status)
    estimate = float(shown.group(1)) * {"s": 1, "min": 60, "h": 3600}[shown.group(2)]
    started = time.perf_counter()
    widget.run(wait=True)
    took = time.perf_counter() - started
    print(f"run: {took:.1f} s; shown estimate about {estimate:g} s; run / estimate = {took / estimate:.2f}")


if __name__ == "__main__":
    main()
