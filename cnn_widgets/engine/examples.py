"""Dataset examples, as in OpenAI Microscope: which images of a dataset excite
each filter most, and where.

One batched pass over the dataset records, for every conv layer and filter,
the strongest response of each image (the maximum over positions) and where it
is. A running top-k keeps the best images per filter, so memory stays small
whatever the dataset's size.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..images import load_image, to_tensor
from ..models import as_model, preserved
from ..models.handle import picture_channels
from ..models.state import channels_last
from .activations import record_activations, weights_version
from .cam import Cancelled
from .optvis.forward import is_cancelled

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
_cache: dict[tuple, "DatasetExamples"] = {}


@dataclass(frozen=True)
class DatasetExamples:
    """Top images per filter: for layer name L, ``indices[L]``, ``values[L]`` and
    ``positions[L]`` have shapes (C, k), (C, k) and (C, k, 2) (row, column on the
    layer's output grid), best first. ``pixels`` holds the dataset (N, C, H, W) in [0, 1]."""

    indices: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor]
    positions: dict[str, torch.Tensor]
    pixels: torch.Tensor
    k: int

    def top(self, layer: str, filter_index: int) -> list[tuple[int, float, tuple[int, int]]]:
        """(image index, strongest response, (row, column)) for the filter's top images."""
        return [
            (int(i), float(v), (int(p[0]), int(p[1])))
            for i, v, p in zip(self.indices[layer][filter_index], self.values[layer][filter_index], self.positions[layer][filter_index])
        ]


def example_maps(model, examples: DatasetExamples, layer, filter_index: int) -> torch.Tensor:
    """The activation maps (k, h, w) of one filter on its top images, best first, float32
    on the CPU, as the filter's layer outputs them (not rescaled).

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.models.datasets import load_fashion_mnist
    >>> model = cw.load_model("fashion-cnn")
    >>> examples = dataset_examples(model, load_fashion_mnist("test")[0][:100], "block2_conv1", k=3)
    >>> example_maps(model, examples, "block2_conv1", 5).shape
    torch.Size([3, 14, 14])
    """
    model = as_model(model)
    info = model.layer(layer)
    indices = [index for index, _, _ in examples.top(info.name, filter_index)]
    pixels = examples.pixels[indices]
    with preserved(model.module, model.device), torch.no_grad():
        outputs = record_activations(model, model.normalize(pixels.to(model.device)), [info])
    return outputs[info.path][:, filter_index].float().cpu()


def as_pixels(images, channels: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A dataset as float pixels (N, channels, H, W) in [0, 1].

    ``images``: a folder of image files, a list of anything ``load_image`` takes,
    or a tensor/array: uint8 (N, H, W) or (N, H, W, C), or float (N, C, H, W) in [0, 1].
    """
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder at {folder}")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        images = files
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if isinstance(images, torch.Tensor):
        tensor = images
        if tensor.dtype == torch.uint8:
            tensor = tensor.unsqueeze(1) if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2)
            tensor = tensor.float().div(255)
        if tensor.dim() != 4:
            raise ValueError(f"a dataset tensor must be (N, H, W) or (N, H, W, C) uint8, or (N, C, H, W) float; got {tuple(images.shape)}")
        if tensor.shape[1] != channels:
            if tensor.shape[1] not in (1, 3):
                raise ValueError(f"the dataset has {tensor.shape[1]} channels; the model takes {channels}")
            tensor = picture_channels(tensor.float(), channels)
        if size is not None and tuple(tensor.shape[2:]) != tuple(size):
            tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)
        return tensor.float().clamp(0, 1).contiguous()
    mode = "L" if channels == 1 else "RGB"
    pictures = [load_image(item, mode=mode) for item in images]
    if not pictures:
        raise ValueError("the dataset is empty")
    size = size or (pictures[0].height, pictures[0].width)
    return picture_channels(torch.stack([to_tensor(picture, size) for picture in pictures]), channels)


def _fingerprint(pixels: torch.Tensor) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(tuple(pixels.shape)).encode())
    digest.update(pixels[:: max(1, len(pixels) // 256)].numpy().tobytes())  # a sample keeps hashing cheap
    digest.update(pixels.sum(dim=(1, 2, 3)).numpy().tobytes())
    return digest.hexdigest()


def _strongest(output: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
    """Per image and channel: the strongest response, where it is (row * width + column),
    and the width, read in whichever memory layout the convolution produced."""
    n, c, h, w = output.shape
    if output.is_contiguous(memory_format=torch.channels_last) and not output.is_contiguous():
        strongest = output.permute(0, 2, 3, 1).reshape(n, h * w, c).max(dim=1)  # a view, no copy
    else:
        strongest = output.flatten(2).max(dim=2)
    return (strongest.values, strongest.indices), w


def dataset_examples(
    model,
    images,
    layers=None,
    *,
    k: int = 9,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
    cache: bool = True,
) -> DatasetExamples:
    """The ``k`` images of a dataset that excite each filter most, for every conv layer.

    ``images``: a folder, a list of images, or a tensor (see :func:`as_pixels`);
    resized to the model's input size. ``progress(done, total)`` is called after
    each batch (the widgets show it; the command line uses tqdm); ``cancel`` (a
    ``threading.Event`` or a callable returning True to stop) is checked before each
    batch and stops the scan with :class:`cnn_widgets.engine.Cancelled`. Results are
    cached per (model weights, dataset, layers, k).

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> from cnn_widgets.models.datasets import load_fashion_mnist
    >>> images, _ = load_fashion_mnist("test")
    >>> examples = engine.dataset_examples(cw.load_model("fashion-cnn"), images[:200], k=4)
    >>> examples.indices["block1_conv1"].shape
    torch.Size([32, 4])
    """
    model = as_model(model)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    chosen = list(model.layers) if layers is None else [model.layer(layer) for layer in ([layers] if isinstance(layers, (str, int)) else layers)]
    pixels = as_pixels(images, model.input_size[0], tuple(model.input_size[1:]))
    count = len(pixels)
    k = min(k, count)
    key = (weights_version(model), _fingerprint(pixels), tuple(info.path for info in chosen), k)
    if cache and key in _cache:
        return _cache[key]
    best_values = {info.name: torch.full((info.out_channels, 0), float("-inf")) for info in chosen}
    best_indices = {info.name: torch.zeros((info.out_channels, 0), dtype=torch.long) for info in chosen}
    best_flat = {info.name: torch.zeros((info.out_channels, 0), dtype=torch.long) for info in chosen}
    widths = {}
    nhwc = model.device.type != "mps"  # channels_last: about 1.5x faster convolutions on the CPU
    layout = torch.channels_last if nhwc else torch.contiguous_format
    with preserved(model.module, model.device), channels_last(model.module, enabled=nhwc), torch.no_grad():
        for start in range(0, count, batch_size):
            if is_cancelled(cancel):
                raise Cancelled("the dataset scan was cancelled")
            batch = model.normalize(pixels[start : start + batch_size].to(model.device)).contiguous(memory_format=layout)
            # Strongest response per image and channel, and where: taken inside the hook,
            # so no full activation is copied.
            outputs = record_activations(model, batch, chosen, reduce=_strongest)
            for info in chosen:
                (strongest, where), widths[info.name] = outputs[info.path]  # (B, C) each
                strongest = strongest.float()
                values = torch.cat([best_values[info.name], strongest.T.cpu()], dim=1)
                indices = torch.cat([best_indices[info.name], torch.arange(start, start + len(batch)).expand(strongest.shape[1], -1)], dim=1)
                places = torch.cat([best_flat[info.name], where.T.cpu()], dim=1)
                top = values.topk(min(k, values.shape[1]), dim=1)
                best_values[info.name] = top.values
                best_indices[info.name] = indices.gather(1, top.indices)
                best_flat[info.name] = places.gather(1, top.indices)
            if progress is not None:
                progress(min(start + batch_size, count), count)
    positions = {name: torch.stack([flat // widths[name], flat % widths[name]], dim=-1) for name, flat in best_flat.items()}
    result = DatasetExamples(best_indices, best_values, positions, pixels, k)
    if cache:
        _cache.clear()  # one dataset at a time: the pixels can be large
        _cache[key] = result
    return result
