"""Which heatmap to teach with on the shipped fashion-cnn: deletion and insertion (Petsiuk et al.,
RISE, 2018), where the map's heat lies, and the sanity check (Adebayo et al., 2018), for Grad-CAM at
several layers and for Layer-CAM, HiResCAM and Grad-CAM++ at the default layer, against a random and
a centred map. Written for BENCHMARKS.md, "Where fashion-cnn's Grad-CAM peaks" (hand-copied).

Protocol. ``--images`` Fashion-MNIST test images drawn with seed 0 (Debian's dataset-fashion-mnist),
each explained for the class the model predicts. Deletion: pixels are set to black (the dataset's
background) in the order the map ranks them, 56 at a time (0 to 784, 15 points); insertion: they are
put into a black picture in that order. The curve is the softmax probability of the predicted class;
AUC is its mean over the 15 points (deletion: lower is better; insertion: higher). Ties (a flat map,
the zeros of a ReLU map) are broken at random (seed 0). "heat on garment": the share of the map's
(positive) sum that lies on pixels brighter than 0.05 (the garment), against the garment's share of
the picture; "peak on garment": how often the brightest pixel is on the garment. Sanity: Spearman's
rho between the map and the map after re-initializing the output layer (``engine.sanity_check``,
steps=1) for the first ``--sanity`` images, median (low: the map depends on what was learned).

    PYTHONPATH=$PWD python benchmarks/bench_cam_faithfulness.py [--images 500] [--sanity 20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.models.datasets import load_fashion_mnist
from cnn_widgets.models.fashion_cnn import MEAN, STD

CANDIDATES = [("gradcam", "block3_conv2"), ("gradcam", "block3_conv1"), ("gradcam", "block2_conv2"),
              ("layercam", "block3_conv2"), ("hirescam", "block3_conv2"), ("gradcam++", "block3_conv2"),
              ("random", None), ("centre", None)]
STEP = 56  # pixels removed or inserted per point of the curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--sanity", type=int, default=20)
    args = parser.parse_args()
    model = cw.load_model("fashion-cnn", device="cpu")
    images, _labels = load_fashion_mnist("test")
    generator = torch.Generator().manual_seed(0)
    chosen = torch.randperm(len(images), generator=generator)[: args.images]
    pixels = images[chosen].float().reshape(-1, 1, 28, 28)
    pixels = pixels / 255 if pixels.max() > 1 else pixels
    count = pixels.shape[0]
    normalize = lambda p: (p - MEAN[0]) / STD[0]  # noqa: E731
    inputs = normalize(pixels)
    with torch.no_grad():
        predicted = model.module(inputs).argmax(1)
    garment = (pixels[:, 0] > 0.05).float()
    print(f"{count} test images (seed 0); the garment (pixels > 0.05) is {float(garment.mean()):.3f} of the picture")
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centred = -((rows - 13.5) ** 2 + (cols - 13.5) ** 2)
    print("| map | deletion AUC (lower better) | insertion AUC (higher better) | heat on garment | peak on garment | all-zero maps | sanity rho, output layer random (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, layer in CANDIDATES:
        started = time.perf_counter()
        if method == "random":
            maps = torch.rand(count, 28, 28, generator=generator)
        elif method == "centre":
            maps = centred.expand(count, 28, 28).clone()
        else:
            maps = engine.cam(model, inputs, method, layer=layer, target=predicted.tolist())
        flat = maps.reshape(count, -1)
        ties = torch.rand(count, 784, generator=generator) * 1e-6 * (flat.abs().amax(1, keepdim=True) + 1e-12)
        order = (flat + ties).argsort(1, descending=True)
        deletion, insertion = _curves(model, pixels, normalize, predicted, order)
        positive = maps.clamp(min=0)
        on_garment = ((positive * garment).sum((1, 2)) / positive.sum((1, 2)).clamp(min=1e-12)).mean()
        peak_on_garment = garment.reshape(count, -1).gather(1, order[:, :1]).mean()
        zero = (flat.amax(1) <= 0).float().mean()
        rho = "-"
        if method not in ("random", "centre"):
            found = [engine.sanity_check(model, inputs[i], method, layer, int(predicted[i]), steps=1).rho[0]
                     for i in range(min(args.sanity, count))]
            rho = f"{np.nanmedian(np.array(found, float)):.2f}"
        name = f"{method} {layer}" if layer else method
        print(f"| {name} | {deletion:.3f} | {insertion:.3f} | {float(on_garment):.2f} | {float(peak_on_garment):.2f} | "
              f"{float(zero):.2f} | {rho} |  ({time.perf_counter() - started:.0f} s)", flush=True)


def _curves(model, pixels, normalize, predicted, order) -> tuple[float, float]:
    count = pixels.shape[0]
    rows = torch.arange(count)
    deletion, insertion = [], []
    for k in range(0, 785, STEP):
        mask = torch.zeros(count, 784)
        if k:
            mask.scatter_(1, order[:, :k], 1.0)
        mask = mask.reshape(count, 1, 28, 28)
        with torch.no_grad():
            deletion.append(model.module(normalize(pixels * (1 - mask))).softmax(1)[rows, predicted].mean())
            insertion.append(model.module(normalize(pixels * mask)).softmax(1)[rows, predicted].mean())
    return float(torch.stack(deletion).mean()), float(torch.stack(insertion).mean())


if __name__ == "__main__":
    main()
