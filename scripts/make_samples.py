"""Rebuild the sample images shipped in cnn_widgets/samples/.

    python scripts/make_samples.py [--skimage-data DIR]

Fashion-MNIST: the first test image of each class, from Debian's
dataset-fashion-mnist. Photos: scikit-image's sample data (CC0 / public
domain, see samples/LICENSES.md), shrunk to at most 320 px; point
--skimage-data at the ``skimage/data`` folder of an unpacked scikit-image wheel.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from cnn_widgets.images import FASHION_SAMPLES, SAMPLES_DIR
from cnn_widgets.models.datasets import load_fashion_mnist

PHOTOS = {"astronaut": "astronaut.png", "cat": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skimage-data", type=Path, default=None)
    args = parser.parse_args()
    images, labels = load_fashion_mnist("test")
    for label, name in enumerate(FASHION_SAMPLES):
        index = int((labels == label).nonzero()[0])
        Image.fromarray(images[index].numpy(), mode="L").save(SAMPLES_DIR / f"{name}.png", optimize=True)
        print(f"{name}: test image {index}")
    if args.skimage_data:
        for name, source in PHOTOS.items():
            photo = Image.open(args.skimage_data / source).convert("RGB")
            photo.thumbnail((320, 320), Image.LANCZOS)
            photo.save(SAMPLES_DIR / f"{name}.jpg", quality=90, optimize=True)
            print(f"{name}: {photo.size}")


if __name__ == "__main__":
    main()
