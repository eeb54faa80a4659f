"""The ``cnn-widgets`` command line: the widgets' pictures as PNG/GIF files.

    cnn-widgets layers vgg16 --weights none
    cnn-widgets weights fashion-cnn --layer block1_conv1 --out filters.png
    cnn-widgets features fashion-cnn --image sneaker --layer block2_conv1 --out maps.png
    cnn-widgets maximize fashion-cnn --layer block2_conv1 --filters 0-15 --steps 128 --out maximize.png
    cnn-widgets dream fashion-cnn --image ankle_boot --layer block2_conv2 --frames 8 --out dream.gif
    cnn-widgets cam fashion-cnn --image sneaker --method gradcam --out heatmap.png
    cnn-widgets html notebooks/quickstart.ipynb --out quickstart.html
    cnn-widgets lessons course/
    cnn-widgets atlas fashion-cnn --data images/ --out atlas/
    torchrun --nproc_per_node=2 -m cnn_widgets.cli atlas resnet18 --data shards/ --out atlas/
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from . import render
from .engine.cam import METHODS
from .models.zoo import MODEL_NAMES

EPILOG = "models: " + ", ".join(MODEL_NAMES) + ", timm/<name> with the timm extra (or a path to a TorchScript file)"


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
    features.add_argument("--stage", default="activation", choices=("activation", "conv"),
                          help="activation: the layer's output after the ReLU (or other activation) that follows the conv (default); conv: the conv's own output, before it")
    _display(features, "viridis")

    maximize = commands.add_parser("maximize", help="images that maximize a layer's filters (activation maximization)", epilog=EPILOG)
    _common(maximize)
    _layer(maximize)
    maximize.add_argument("--filters", default="0-15", help="'all', a range like 0-63, or a list like 3,7,20-23 (default 0-15)")
    maximize.add_argument("--steps", type=int, default=256, help="gradient steps (default 256)")
    maximize.add_argument("--size", type=int, default=None, help="image size in pixels (default: 128, or the model's input size if smaller)")
    maximize.add_argument("--quality", default="high", choices=("high", "basic"), help="high: Fourier parameterization with transformation robustness; basic: plain pixels (the seeds' method)")
    maximize.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    maximize.add_argument("--columns", type=int, default=None, help="tiles per row (default: a square grid)")
    maximize.add_argument("--scale", type=int, default=None, help="integer upscaling of each tile")
    maximize.add_argument("--labels", action="store_true", help="write each tile's filter index under it")

    dream = commands.add_parser("dream", help="DeepDream an image; several frames make a zooming GIF", epilog=EPILOG)
    _common(dream, out_help="PNG (last frame) or GIF (all frames) file to write")
    _layer(dream)
    dream.add_argument("--image", required=True, help="image path or URL, or a shipped sample name")
    dream.add_argument("--filter", type=int, default=None, help="one filter to amplify (default: the whole layer)")
    dream.add_argument("--octaves", type=int, default=4, help="number of image scales (default 4)")
    dream.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (default 1.4)")
    dream.add_argument("--steps", type=int, default=10, help="gradient steps per octave (default 10)")
    dream.add_argument("--frames", type=int, default=1, help="frames of the dream loop (default 1)")
    dream.add_argument("--zoom", type=float, default=1.05, help="zoom between frames (default 1.05)")
    dream.add_argument("--seed", type=int, default=0, help="random seed")

    cam = commands.add_parser("cam", help="class activation heatmap (or saliency) over an image", epilog=EPILOG)
    _common(cam)
    cam.add_argument("--image", required=True, help="image path or URL, or a shipped sample name")
    cam.add_argument("--class", dest="target", default=None, help="class index or name to explain (default: the top prediction)")
    cam.add_argument("--method", default="gradcam", choices=list(METHODS), metavar="METHOD",
                     help="attribution method (default gradcam): " + ", ".join(f"{m.name} ({m.label})" for m in METHODS.values()))
    cam.add_argument("--layer", default=None, help="a conv layer's name means its output after the activation that follows it "
                     "(block3_conv2), NAME:raw the conv's own output, and any module path works too (a ResNet's layer4); "
                     "default: the output of the last spatial stage")
    cam.add_argument("--colormap", default="inferno", choices=render.COLORMAPS, help="heatmap colormap (default inferno)")
    cam.add_argument("--opacity", type=float, default=0.5, help="heatmap opacity over the image, 0-1 (default 0.5)")
    cam.add_argument("--size", type=int, default=256, help="longer side of the written picture in pixels (default 256)")

    _atlas_parser(commands)

    page = commands.add_parser(
        "html", help="a saved notebook as an HTML page whose widgets show offline",
        description="Convert a saved notebook to HTML. Widgets with saved state (a notebook run by "
        "`jupyter nbconvert --execute` or nbclient) are shown as they were last; others as their PNG.",
    )
    page.add_argument("notebook", type=Path, help="the .ipynb file")
    page.add_argument("--out", type=Path, default=None, help="HTML file to write (default: the notebook's name with .html)")

    lessons = commands.add_parser(
        "lessons", help="copy the course's lesson notebooks into a folder, to hand out or to work in",
        description="Copy the eight lesson notebooks (docs/teaching.md says how to use them) into DIR, "
        "created if needed. Existing files are kept unless --force is given.",
    )
    lessons.add_argument("dir", type=Path, help="the folder to copy the lessons into")
    lessons.add_argument("--force", action="store_true", help="overwrite lessons that are already in DIR")
    return parser


# -- lessons: the course notebooks, shipped in the package ---------------------------------


def lesson_files() -> list[Path]:
    """The lesson notebooks, in course order: inside an installed package (the wheel carries
    ``notebooks/lessons`` as ``cnn_widgets/lessons``), else in the source checkout.

    >>> [path.name for path in lesson_files()][:2]
    ['01_what_a_convolution_does.ipynb', '02_what_the_first_layer_learned.ipynb']
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "lessons", here.parent / "notebooks" / "lessons"):
        if any(folder.glob("*.ipynb")):
            return sorted(folder.glob("*.ipynb"))
    raise FileNotFoundError(f"the lesson notebooks are missing from {here / 'lessons'}: reinstall cnn-widgets")


def copy_lessons(folder, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy the lessons into ``folder`` (created if needed); returns (copied, kept): files
    already there are kept as they are unless ``force``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     copied, kept = copy_lessons(folder)
    >>> len(copied), kept
    (8, [])
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; give a folder to copy the lessons into")
    folder.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for lesson in lesson_files():
        target = folder / lesson.name
        if target.exists() and not force:
            kept.append(target)
            continue
        shutil.copyfile(lesson, target)
        copied.append(target)
    return copied, kept


def _lessons(args) -> str:
    copied, kept = copy_lessons(args.dir, force=args.force)
    lines = [f"copied {len(copied)} lesson{'s' if len(copied) != 1 else ''} into {args.dir}"]
    if kept:
        lines.append(f"kept {len(kept)} already there (use --force to overwrite): " + ", ".join(path.name for path in kept))
    lines.append("start with 01_what_a_convolution_does.ipynb; the instructor notes are docs/teaching.md in the repository")
    return "\n".join(lines)


# -- atlas: the top dataset examples of every unit, on one or many processes (torchrun) --------


def _atlas_parser(commands) -> None:
    atlas = commands.add_parser(
        "atlas", help="top dataset examples of every conv unit, with receptive-field crops, written to a store",
        description="The top-k images of a dataset for every unit (channel) of every conv layer, where the "
        "response is strongest, its value and the receptive-field crop, written to the folder --out "
        "(format: docs/atlas.md). Run it under torchrun to scan on several processes, GPUs or nodes; "
        "rerun the same command to resume from the checkpoints of a run that stopped.",
        epilog=EPILOG,
    )
    _common(atlas, out_help="folder of the store (created; checkpoints are kept there while it runs)")
    atlas.add_argument("--data", required=True, help="a folder of images (the class is the folder name), a .tar shard, a folder of shards, or a glob like 'shards/*.tar' (WebDataset layout)")
    atlas.add_argument("--layers", default=None, help="comma-separated conv layers (default: all)")
    atlas.add_argument("--k", type=int, default=9, help="examples per unit (default 9)")
    atlas.add_argument("--batch-size", type=int, default=64, help="images per batch and process (default 64)")
    atlas.add_argument("--workers", type=int, default=None, help="DataLoader decoding processes per rank (default: the CPUs per rank, up to 8)")
    atlas.add_argument("--crop-size", type=int, default=128, help="longest side of a stored crop in pixels (default 128)")
    atlas.add_argument("--checkpoint-every", type=int, default=100, help="batches between checkpoints of each rank (default 100)")
    atlas.add_argument("--visualizations", action="store_true", help="also store each unit's feature visualization (activation maximization; slow on a CPU)")
    atlas.add_argument("--visualization-steps", type=int, default=256, help="optimization steps per feature visualization (default 256)")
    atlas.add_argument("--no-progress", action="store_true", help="no progress bars")


def _atlas(model, args) -> str:
    from .atlas import atlas, open_atlas

    layers = [name.strip() for name in args.layers.split(",")] if args.layers else None
    manifest = atlas(model, args.data, args.out, layers=layers, k=args.k, batch_size=args.batch_size, workers=args.workers,
                     crop_size=args.crop_size, checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
                     visualizations=args.visualizations, visualization_steps=args.visualization_steps)
    store = open_atlas(args.out)
    units = sum(layer["units"] for layer in store.manifest["layers"])
    return f"wrote {manifest}: top {store.manifest['k']} of {store.manifest['data']['images']} images for {units} units in {len(store.layer_names)} layers"


# -- loading models and images ------------------------------------------------------------


def _load(args):
    import os

    from .models import load_model

    if args.command == "atlas" and args.device == "auto" and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():  # under torchrun: one GPU per process
            args.device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
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
    """The heatmap over the image as the model saw it, enlarged to about ``args.size`` pixels,
    with its numbered colorbar under it (zero to the larger of the map's peak and the top
    class's, in the method's units): the GradCAM widget's picture of one map (both are
    :func:`render.heatmap_overlay` on :func:`render.class_map_scale`)."""
    target = int(args.target) if args.target is not None and args.target.lstrip("-").isdigit() else args.target
    image = _image(args.image)
    result = engine.cam_result(model, image, method=args.method, layer=args.layer, target=target, k=1)
    seen = render.to_uint8_image(model.deprocess(model.preprocess(image))[0].cpu())
    # On the top class's scale, as the GradCAM widget draws one class (render.class_map_scale).
    top = engine.predict(model, image, k=1)[0]
    top_peak = None
    if result.class_index != top.index:
        top_peak = float(engine.cam_result(model, image, method=args.method, layer=args.layer, target=top.index, k=1).map.max())
    scale = render.class_map_scale(result.map, args.colormap, engine.METHODS[args.method].scale_note,
                                   top_class=f"{top.name} ({100 * top.probability:.1f}%)", top_peak=top_peak)
    picture = render.heatmap_overlay(seen, result.map, size=args.size, colormap=args.colormap, opacity=args.opacity,
                                     vrange=(scale["low"], scale["high"]))
    picture = render.with_colorbar(picture, scale, args.colormap)
    label = f"class {result.class_index} ({result.class_name}, p={result.probability:.2f})"
    if result.layers:
        label += f" at layer {', '.join(result.layers)}"
    return picture, label, result.warning


def _maximize_picture(model, args):
    from tqdm import tqdm

    from .engine.optvis import QUALITY_PRESETS, default_objective, maximize, middle_unit_window
    from .models.layers import parse_filters

    filters = parse_filters(args.filters, model.layer(args.layer).out_channels)
    size = args.size or (model.input_size[1] if model.input_size[1] <= 64 else 128)
    with tqdm(total=args.steps, desc=f"maximize {len(filters)} filters", unit="step", file=sys.stderr) as bar:
        images = maximize(model, args.layer, filters, steps=args.steps, size=size, seed=args.seed,
                          progress=lambda step, values, images: bar.update(1), **QUALITY_PRESETS[args.quality])
    tiles = np.stack([render.to_uint8_image(image) for image in images])
    if default_objective(model, args.layer) == "neuron":  # the first conv: its middle unit, see maximize
        top, left, height, width = middle_unit_window(model, args.layer, size)
        factor = max(1, 60 // max(height, width))  # blocks of nearest pixels, in a gray frame that keeps tiles apart
        tiles = tiles[:, top:top + height, left:left + width].repeat(factor, axis=1).repeat(factor, axis=2)
        tiles = np.pad(tiles, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=128)
        print(f"{model.layer(args.layer).name} reads the pixels: each tile is the {height}x{width} pixels that excite "
              "the filter's middle unit most, enlarged", file=sys.stderr)
    return _stitch(tiles, args, [f"filter {f}" for f in filters])


def _dream(model, args) -> str:
    from tqdm import tqdm

    from .engine.optvis import dream

    if args.out.suffix.lower() not in (".gif", ".png"):
        raise ValueError(f"--out must end in .gif (all frames) or .png (last frame), not {args.out.suffix or 'nothing'}")
    with tqdm(total=args.frames * args.octaves * args.steps, desc="dream", unit="step", file=sys.stderr) as bar:
        frames = dream(model, _image(args.image), args.layer, filter=args.filter, octaves=args.octaves,
                       octave_scale=args.octave_scale, steps=args.steps, frames=args.frames, zoom=args.zoom,
                       seed=args.seed, progress=lambda done, total, frame: bar.update(done - bar.n))
    if args.out.suffix.lower() == ".gif":
        path = render.save_gif(frames, args.out)
    else:
        path = render.save_png(np.asarray(frames[-1].convert("RGB")), args.out)
    return f"wrote {path} ({len(frames)} frame{'s' if len(frames) > 1 else ''}, {frames[-1].width}x{frames[-1].height} px)"


def run(args) -> str:
    from . import engine

    if args.command == "lessons":
        return _lessons(args)
    if args.command == "html":
        from .export import export_notebook_html

        path = export_notebook_html(args.notebook, args.out)
        return f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)"
    model = _load(args)
    if args.command == "atlas":
        return _atlas(model, args)
    if args.command == "layers":
        rows = [f"{'#':>3}  {'name':<24} {'module path':<28} {'in':>5} {'out':>5}  kernel  output"]
        for layer in model.layers:
            shape = "x".join(str(s) for s in layer.output_shape)
            kernel = "x".join(str(k) for k in layer.kernel_size)
            rows.append(f"{layer.index:>3}  {layer.name:<24} {layer.path:<28} {layer.in_channels:>5} {layer.out_channels:>5}  {kernel:<6}  {shape}")
        return "\n".join(rows) + _weights_note(model)
    if args.command == "weights":
        tiles, labels = render.weight_tiles(engine.filter_weights(model, args.layer), view=args.view, normalization=args.normalize, colormap=args.colormap)
        picture = _stitch(tiles, args, labels)
    elif args.command == "features":
        maps = engine.feature_maps(model, _image(args.image), layers=[args.layer], stage=args.stage)
        values = next(iter(maps.values()))
        tiles = render.colorize(render.normalize(values, mode=args.normalize), args.colormap)
        picture = _stitch(tiles, args, [f"filter {i}" for i in range(len(tiles))])
    elif args.command == "maximize":
        picture = _maximize_picture(model, args)
    elif args.command == "dream":
        return _dream(model, args) + _weights_note(model)
    elif args.command == "cam":
        picture, label, warning = _cam_picture(model, engine, args)
        path = render.save_png(picture, args.out)
        if warning:
            print(f"cnn-widgets cam: warning: {warning}", file=sys.stderr)
        return f"wrote {path} ({picture.shape[1]}x{picture.shape[0]} px): {args.method} for {label}" + _weights_note(model)
    path = render.save_png(picture, args.out)
    return f"wrote {path} ({picture.shape[1]}x{picture.shape[0]} px)" + _weights_note(model)


def _weights_note(model) -> str:
    """A line saying the pictures come from an untrained model ("" for a trained one)."""
    return f"\nnote: {model.name} is {model.weights_note}" if model.weights_note else ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        print(run(args))
    except (ValueError, OSError, TypeError) as error:
        print(f"cnn-widgets {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
