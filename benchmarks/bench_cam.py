"""Grad-CAM for one 224x224 image on ResNet-50 and VGG16 (random weights), on this machine's CPU:
cnn-widgets' ``engine.cam`` against captum's ``LayerGradCam`` and pytorch-grad-cam's ``GradCAM``,
in the same run.

Every implementation gets the same network (each peer its own copy, because
pytorch-grad-cam keeps hooks registered while it lives), the same input, the same
layer and the same explicit class, and returns a map upsampled to 224x224. The
three run round-robin (the order rotating every round), so a busy machine slows
them alike; the table gives the median of the repeats after warm-up, next to
one plain forward pass without gradients, the floor for any Grad-CAM (it needs
the logits). Each setting of torch's thread count is a row: on a shared
machine one thread measures the work, more threads measure the contention too. The result goes to stdout and into
BENCHMARKS.md between ``<!-- bench_cam:start -->`` and ``<!-- bench_cam:end -->``.

    python benchmarks/bench_cam.py [--repeats 11] [--warmup 2] [--threads 1,2] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision

import cnn_widgets as cw
from cnn_widgets.engine.cam import cam

START, END = "<!-- bench_cam:start -->", "<!-- bench_cam:end -->"
BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
MODELS = {"resnet50": "layer4.2.conv3", "vgg16": "features.28"}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()


def contenders(name: str, layer: str):
    """name -> callable(image, class) returning a (224, 224) map, for each implementation."""
    from captum.attr import LayerAttribution, LayerGradCam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ours_net, captum_net, pgc_net = build(name), build(name), build(name)
    model = cw.load_model(ours_net)
    model.layers  # layer discovery (a dry run) happens once, as in a widget session
    captum_method = LayerGradCam(captum_net, captum_net.get_submodule(layer))
    pgc_method = GradCAM(model=pgc_net, target_layers=[pgc_net.get_submodule(layer)])

    def ours(image, target):
        return cam(model, image, layer=layer + ":raw", target=target)  # the conv module itself, as the peers hook it

    def captum(image, target):
        attr = captum_method.attribute(image, target, relu_attributions=True)
        return LayerAttribution.interpolate(attr, image.shape[-2:], interpolate_mode="bilinear")

    def pytorch_grad_cam(image, target):
        return pgc_method(input_tensor=image, targets=[ClassifierOutputTarget(target)])

    def forward_pass(image, _target):
        with torch.no_grad():
            return ours_net(image)

    methods = {"cnn-widgets": ours, "captum": captum, "pytorch-grad-cam": pytorch_grad_cam, "forward": forward_pass}
    return methods, pgc_method


def pearson(a, b) -> float:
    a = torch.as_tensor(a, dtype=torch.float64).flatten()
    b = torch.as_tensor(b, dtype=torch.float64).flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def run(repeats: int, warmup: int, threads: list[int]) -> tuple[list[dict], str]:
    rows = []
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for name, layer in MODELS.items():
        methods, pgc = contenders(name, layer)
        for count in threads:
            torch.set_num_threads(count)
            rows.append(measure(name, layer, methods, image, repeats, warmup))
        pgc.activations_and_grads.release()
    return rows, table(rows, repeats, warmup)


def measure(name, layer, methods, image, repeats, warmup) -> dict:
    """Median milliseconds of each implementation, at the current thread count."""
    target = int(methods["forward"](image, None).argmax())
    # Same work: our map equals captum's (the oracle tests check this in depth).
    ours_map = methods["cnn-widgets"](image, target)
    captum_map = methods["captum"](image, target).detach()[0, 0]
    agreement = pearson(ours_map, captum_map)
    times: dict[str, list[float]] = {key: [] for key in methods}
    order = list(methods)
    for round_ in range(warmup + repeats):
        for key in order[round_ % len(order):] + order[: round_ % len(order)]:
            start = time.perf_counter()
            methods[key](image, target)
            elapsed = time.perf_counter() - start
            if round_ >= warmup:
                times[key].append(elapsed)
    medians = {key: statistics.median(values) * 1000 for key, values in times.items()}
    best = {f"{key} best": min(values) * 1000 for key, values in times.items()}
    threads = torch.get_num_threads()
    print(f"{name}, {threads} threads: " + ", ".join(f"{k} {v:.0f} ms (best {best[k + ' best']:.0f})" for k, v in medians.items())
          + f" (correlation with captum {agreement:.6f})", flush=True)
    return {"model": name, "layer": layer, "threads": threads, "agreement": agreement, **medians, **best}


def table(rows: list[dict], repeats: int, warmup: int) -> str:
    lines = [
        "## Grad-CAM, one 224x224 image, CPU",
        "",
        f"`python benchmarks/bench_cam.py`: median (and best) of {repeats} runs after {warmup} warm-up runs, "
        "the implementations interleaved; random weights, an explicit class, the map upsampled to 224x224; "
        "the ratio compares medians. "
        f"torch {torch.__version__.split('+')[0]} on {os.cpu_count()} CPU cores ({platform.machine()}), "
        "shared with other jobs while this ran.",
        "",
        "| model (layer) | threads | cnn-widgets `engine.cam` | captum `LayerGradCam` | pytorch-grad-cam `GradCAM` | one forward pass, no gradients |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours = row["cnn-widgets"]
        cells = [str(row["threads"]), f"{ours:.0f} ms (best {row['cnn-widgets best']:.0f})"]
        for peer in ("captum", "pytorch-grad-cam", "forward"):
            cells.append(f"{row[peer]:.0f} ms (best {row[peer + ' best']:.0f}); {row[peer] / ours:.2f}x ours")
        lines.append(f"| {row['model']} (`{row['layer']}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = BENCHMARKS) -> None:
    """Replace this benchmark's section of BENCHMARKS.md (or add it), leaving the others alone."""
    block = f"{START}\n{text}{END}\n"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        updated = before + block + ("\n" + after if after else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    path.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", default=None, help="comma-separated torch thread counts (default: 1 and torch's choice)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, torch.get_num_threads()})
    _, text = run(args.repeats, args.warmup, threads)
    print()
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"written to {BENCHMARKS}")


if __name__ == "__main__":
    main()
