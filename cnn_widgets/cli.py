"""The ``cnn-widgets`` command line: the widgets' pictures as PNG/GIF files.

    cnn-widgets layers vgg16 --weights none
    cnn-widgets weights fashion-cnn --layer block1_conv1 --out filters.png
    cnn-widgets features fashion-cnn --image sneaker --layer block2_conv1 --out maps.png
    cnn-widgets cam fashion-cnn --image sneaker --method gradcam --out heatmap.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import render
from .engine.cam import CAM_METHODS
from .models.zoo import MODEL_NAMES

EPILOG = "models: " + ", ".join(MODEL_NAMES) + " (or a path to a TorchScript file)"


def _common(parser: argparse.ArgumentParser, out: bool = True, out_help: str = "PNG file to write") -> None:
    parser.add_argument("model", help="a model name (see below) or a path to a TorchScript model file")
    parser.add_argument(
        "--weights", default="default",
        help="'imagenet' (default for torchvision models; cached or downloaded), 'none' (random), "
        "or a path to a state_dict file; fashion-cnn uses its shipped weights by default",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    if out:
        parser.add_argument("--out", type=Path, required=True, help=out_help)


def _layer(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--layer", required=required, help="conv layer: Keras-style name (block1_conv1) or module path (features.0)")


def _display(parser: argparse.ArgumentParser, colormap: str) -> None:
    parser.add_argument("--colormap", default=colormap, choices=render.COLORMAPS, help=f"colormap (default {colormap})")
    parser.add_argument("--normalize", default="tile", choices=render.NORMALIZATIONS[:2], help="scale each tile on its own, or the whole layer together")
    parser.add_argument("--columns", type=int, default=None, help="tiles per row (default: a square grid)")
    parser.add_argument("--scale", type=int, default=None, help="integer upscaling of each tile (default: about 64 px per tile)")
    parser.add_argument("--labels", action="store_true", help="write each tile's filter index under it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnn-widgets", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    layers = commands.add_parser("layers", help="list the conv layers of a model", epilog=EPILOG)
    _common(layers, out=False)

    weights = commands.add_parser("weights", help="stitched grid of a layer's filter weights", epilog=EPILOG)
    _common(weights)
    _layer(weights)
    weights.add_argument("--view", default="auto", choices=render.WEIGHT_VIEWS, help="color (3-channel kernels), summary (mean over input channels), channels (filters x input channels), auto")
    _display(weights, "diverging")

    features = commands.add_parser("features", help="stitched grid of a layer's feature maps for an image", epilog=EPILOG)
    _common(features)
    _layer(features)
    features.add_argument("--image", required=True, help="image path or URL, or a shipped sample name (cat, coffee, sneaker, ...)")
    _display(features, "viridis")

    cam = commands.add_parser("cam", help="class activation heatmap (or saliency) over an image", epilog=EPILOG)
    _common(cam)
    cam.add_argument("--image", required=True, help="image path or URL, or a shipped sample name")
    cam.add_argument("--class", dest="target", default=None, help="class index or name to explain (default: the top prediction)")
    cam.add_argument("--method", default="gradcam", choices=CAM_METHODS, help="attribution method (default gradcam)")
    _layer(cam, required=False)
    cam.add_argument("--colormap", default="inferno", choices=render.COLORMAPS, help="heatmap colormap (default inferno)")
    cam.add_argument("--opacity", type=float, default=0.5, help="heatmap opacity over the image, 0-1 (default 0.5)")
    cam.add_argument("--size", type=int, default=256, help="longer side of the written picture in pixels (default 256)")
    return parser


def _load(args):
    from .models import load_model

    weights = None if args.weights.lower() == "none" else args.weights
    return load_model(args.model, weights=weights, device=args.device)


def _image(source: str):
    from .images import SAMPLE_NAMES, load_image, sample_image

    return sample_image(source) if source in SAMPLE_NAMES else load_image(source)


def _stitch(tiles, args, labels=None):
    height, width = tiles.shape[1:3]
    scale = args.scale or render.tile_scale(height, width, target=64)
    return render.grid(tiles, columns=args.columns, padding=2, scale=scale, labels=labels if args.labels else None)


def _cam_picture(model, engine, args):
    """The heatmap over the image as the model saw it, upscaled to about ``args.size`` pixels."""
    from PIL import Image

    target = int(args.target) if args.target is not None and args.target.lstrip("-").isdigit() else args.target
    image = _image(args.image)
    result = engine.cam_result(model, image, method=args.method, layer=args.layer, target=target, k=1)
    seen = render.to_uint8_image(model.deprocess(model.preprocess(image))[0].cpu())
    factor = max(1, args.size // max(seen.shape[:2]))
    height, width = seen.shape[0] * factor, seen.shape[1] * factor
    backdrop = np.asarray(Image.fromarray(seen).resize((width, height), Image.BICUBIC))
    picture = render.overlay(backdrop, render.normalize(result.map), colormap=args.colormap, opacity=args.opacity)
    return picture, f"class {result.class_index} ({result.class_name}, p={result.probability:.2f})"


def run(args) -> str:
    from . import engine

    model = _load(args)
    if args.command == "layers":
        rows = [f"{'#':>3}  {'name':<24} {'module path':<28} {'in':>5} {'out':>5}  kernel  output"]
        for layer in model.layers:
            shape = "x".join(str(s) for s in layer.output_shape)
            kernel = "x".join(str(k) for k in layer.kernel_size)
            rows.append(f"{layer.index:>3}  {layer.name:<24} {layer.path:<28} {layer.in_channels:>5} {layer.out_channels:>5}  {kernel:<6}  {shape}")
        return "\n".join(rows)
    if args.command == "weights":
        tiles, labels = render.weight_tiles(engine.filter_weights(model, args.layer), view=args.view, normalization=args.normalize, colormap=args.colormap)
        picture = _stitch(tiles, args, labels)
    elif args.command == "features":
        maps = engine.feature_maps(model, _image(args.image), layers=[args.layer])
        values = next(iter(maps.values()))
        tiles = render.colorize(render.normalize(values, mode=args.normalize), args.colormap)
        picture = _stitch(tiles, args, [f"filter {i}" for i in range(len(tiles))])
    elif args.command == "cam":
        picture, label = _cam_picture(model, engine, args)
        path = render.save_png(picture, args.out)
        return f"wrote {path} ({picture.shape[1]}x{picture.shape[0]} px): {args.method} for {label}"
    path = render.save_png(picture, args.out)
    return f"wrote {path} ({picture.shape[1]}x{picture.shape[0]} px)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        print(run(args))
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"cnn-widgets {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
