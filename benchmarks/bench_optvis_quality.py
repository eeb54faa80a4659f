"""Does each filter's own image excite it most? The fair test of activation maximization.

For every layer of the shipped model, images are made for the first N filters
(one run, ``maximize`` with the given settings), then the activation table
``table[i, j]`` = filter j's response to image i (no transforms), as the objective
used measures it (the mean conv output over the map; the middle unit's output at a
conv that reads the pixels, where that is the default, see ``default_objective``), is
read column by column: filter j passes when its own image i = j excites it more
than every other image does. Columns, not rows, because filters differ in scale.
Also printed: the achieved activation (mean of the diagonal) and how many are positive.

    PYTHONPATH=$PWD python benchmarks/bench_optvis_quality.py --filters 8 --steps 128
    PYTHONPATH=$PWD python benchmarks/bench_optvis_quality.py --transforms lucent128  # the old rule
    PYTHONPATH=$PWD python benchmarks/bench_optvis_quality.py --objective channel  # the mean on every layer
"""
from __future__ import annotations

import argparse
import time

import torch

import cnn_widgets as cw
from cnn_widgets.engine.activations import record_activations
from cnn_widgets.engine.optvis import default_objective, maximize
from cnn_widgets.engine.optvis.transform import jitter, pad, random_rotate, random_scale
from cnn_widgets.models import preserved


def lucent_at_128(size: int) -> list:
    """The rule before: Lucent's amounts times size / 128 at every size (jitters under 1 px left out)."""
    factor = size / 128
    transforms = [pad(max(1, round(12 * factor)))]
    if 8 * factor >= 1:
        transforms.append(jitter(8 * factor))
    transforms += [random_scale([1 + (i - 5) / 50 for i in range(11)]), random_rotate(list(range(-10, 11)) + 5 * [0])]
    if 4 * factor >= 1:
        transforms.append(jitter(4 * factor))
    return transforms


def own_image_table(model, layer: str, images: torch.Tensor, filters: list[int], objective: str = "channel") -> torch.Tensor:
    """table[i, j]: filters[j]'s mean conv output on image i, or its middle unit's with "neuron"."""
    info = model.layer(layer)
    with preserved(model.module, model.device), torch.no_grad():
        acts = record_activations(model, model.normalize(images.to(model.device)), [info])[info.path][:, filters]
    if objective == "neuron":
        return acts[:, :, acts.shape[-2] // 2, acts.shape[-1] // 2].cpu()
    return acts.flatten(2).mean(2).cpu()


def own_image_wins(table: torch.Tensor) -> torch.Tensor:
    """Per column j: does image j excite filter j more than any other image?"""
    others = table.clone()
    others.fill_diagonal_(float("-inf"))
    return table.diagonal() > others.max(0).values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--transforms", choices=["standard", "lucent128", "none"], default="standard")
    parser.add_argument("--param", choices=["fourier", "pixel", "maco"], default="fourier")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--objective", choices=["default", "channel"], default="default",
                        help="default: what maximize uses when none is given; channel: the mean on every layer")
    parser.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = cw.load_model("fashion-cnn")
    size = model.input_size[1]
    transforms = lucent_at_128(size) if args.transforms == "lucent128" else args.transforms
    chosen = [name for name in args.layers.split(",") if name]
    for info in [model.layer(name) for name in chosen] or model.layers:
        filters = list(range(min(args.filters, info.out_channels)))
        objective = default_objective(model, info.name) if args.objective == "default" else args.objective
        start = time.perf_counter()
        images = maximize(model, info.name, filters, steps=args.steps, transforms=transforms, param=args.param, objective=objective)
        seconds = time.perf_counter() - start
        table = own_image_table(model, info.name, images, filters, objective)
        own = table.diagonal()
        print(f"{info.name} ({objective}): own image wins {int(own_image_wins(table).sum())}/{len(filters)}, "
              f"achieved mean {own.mean():.3f}, positive {int((own > 0).sum())}/{len(filters)}, {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
