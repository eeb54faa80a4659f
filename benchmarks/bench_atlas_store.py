"""What ``atlas()`` costs after its scan (merge, receptive fields, reading the example
images again, the model's predictions, crops, WebP strips, JSON), on this CPU, one process:
fashion-cnn over the 10,000 Fashion-MNIST test images (PNGs) with all its layers, and
ResNet-18 (random weights; ``--resnet resnet50``) at 224 px over JPEGs with two layers
(``--resnet-layers``). The time from the
scan's last batch to the call's return, less the receptive-field probe (timed on its
own: it is the same before and after this stage's changes).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_atlas_store.py [--resnet resnet50 --resnet-layers conv1 layer4.0.conv1 --skip-fashion]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_atlas import write_folders  # noqa: E402  the same image folders as the scan benchmark


def after_scan(model, data: Path, out: Path, layers) -> tuple[float, float, int]:
    """Seconds after the scan (receptive fields left out), the probe's seconds, and the units."""
    from cnn_widgets.atlas import atlas
    from cnn_widgets.engine.receptive_field import receptive_fields

    chosen = [model.layer(name) for name in layers] if layers else list(model.layers)
    start = time.perf_counter()
    receptive_fields(model, chosen)
    probe = time.perf_counter() - start
    stamps = []
    atlas(model, data, out, layers=layers, progress=lambda done, total: stamps.append(time.perf_counter()))
    return time.perf_counter() - stamps[-1] - probe, probe, sum(info.out_channels for info in chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-images", type=int, default=10_000)
    parser.add_argument("--resnet-images", type=int, default=256)
    parser.add_argument("--resnet", default="resnet18", help="the 224 px model (random weights), e.g. resnet50")
    parser.add_argument("--resnet-layers", nargs="+", default=["conv1", "layer4.1.conv2"])
    parser.add_argument("--skip-fashion", action="store_true")
    arguments = parser.parse_args()
    import cnn_widgets as cw

    with tempfile.TemporaryDirectory(prefix="cnn-widgets-atlas-store-") as name:
        root = Path(name)
        fashion, large = write_folders(root, arguments.fashion_images, arguments.resnet_images)
        runs = [] if arguments.skip_fashion else [
            (cw.load_model("fashion-cnn", device="cpu"), fashion, None, f"fashion-cnn, {arguments.fashion_images:,} PNGs, every layer")]
        runs.append((cw.load_model(arguments.resnet, weights=None, device="cpu"), large, arguments.resnet_layers,
                     f"{arguments.resnet} (random weights), {arguments.resnet_images:,} JPEGs at 224 px, {' and '.join(arguments.resnet_layers)}"))
        for model, data, layers, what in runs:
            seconds, probe, units = after_scan(model, data, root / "out", layers)
            print(f"{what}: {units} units, after the scan {seconds:.2f} s without the receptive-field probe ({probe:.2f} s), "
                  f"{seconds / units * 1000:.1f} ms per unit; torch threads {torch.get_num_threads()}", flush=True)


if __name__ == "__main__":
    main()
