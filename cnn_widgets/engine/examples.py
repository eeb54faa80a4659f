"""Dataset examples, as in OpenAI Microscope: which images of a dataset excite
each filter most, and where.

One batched pass over the dataset records, for every conv layer and filter,
the strongest response of each image (the maximum over positions) and where it
is. A running top-k keeps the best images per filter, so memory stays small
whatever the dataset's size.

The response is the input of the layer's activation (its ReLU): the conv's output
after its BatchNorm where it has one, before the ReLU (see :func:`ranked_by`). So the
order and the values above 0 are those of what the layer passes on, and a filter that
never fires still has its images ordered by how close they come; a BatchNorm with a
negative scale reverses a channel's order, and the ranking follows it. A conv with no
activation after it is ranked by its own output.
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
from ..models.layers import layer_list
from ..models.state import channels_last
from .activations import record_activations, weights_version
from .cam import Cancelled
from .memory import keep_freed_memory
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


def ranked_by(info) -> str:
    """In words, what dataset examples rank a conv layer's filters by (see :func:`scan`).

    >>> import cnn_widgets as cw
    >>> ranked_by(cw.load_model("fashion-cnn").layer("block1_conv1"))
    "the input of its ReLU, which is the conv's own output"
    >>> ranked_by(cw.load_model("resnet18", weights=None).layer("layer1.0.conv1"))
    'the input of its ReLU, after its BatchNorm2d (layer1.0.bn1)'
    """
    ranked = info.activation_input()
    if ranked.before is None:
        return "the conv's own output (no activation follows it)"
    if ranked.module is info.module:
        return f"the input of its {ranked.before}, which is the conv's own output"
    return f"the input of its {ranked.before}, after its {type(ranked.module).__name__} ({ranked.path})"


def example_maps(model, examples: DatasetExamples, layer, filter_index: int) -> torch.Tensor:
    """The maps (k, h, w) of one filter on its top images, best first, float32 on the CPU:
    the tensor the examples are ranked by (:func:`ranked_by`), not rescaled.

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
        ranked = info.activation_input()
        outputs = record_activations(model, model.normalize(pixels.to(model.device)), [ranked])
    return outputs[ranked.name][:, filter_index].float().cpu()


def example_predictions(model, examples: DatasetExamples, layer, filter_index: int) -> list[tuple[str, float]]:
    """The model's most probable class (name, probability) for each of one filter's top
    images, best first.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.models.datasets import load_fashion_mnist
    >>> model = cw.load_model("fashion-cnn")
    >>> examples = dataset_examples(model, load_fashion_mnist("test")[0][:100], "block2_conv1", k=3)
    >>> name, probability = example_predictions(model, examples, "block2_conv1", 5)[0]
    >>> name in model.classes and 0 < probability <= 1
    True
    """
    model = as_model(model)
    info = model.layer(layer)
    indices = [index for index, _, _ in examples.top(info.name, filter_index)]
    with preserved(model.module, model.device), torch.no_grad():
        probabilities = model.logits(model.normalize(examples.pixels[indices].to(model.device))).float().softmax(dim=1).cpu()
    best = probabilities.max(dim=1)
    return [(str(model.classes[int(i)]), float(p)) for p, i in zip(best.values, best.indices)]


def image_labels(images) -> list[str | None] | None:
    """The class of each image of a folder dataset, in the order :func:`as_pixels` reads
    them: the first folder below the root (None for images at the top level); None for
    any other kind of dataset.

    >>> image_labels(torch.zeros(2, 1, 4, 4)) is None
    True
    """
    if not isinstance(images, (str, os.PathLike)) or not Path(images).is_dir():
        return None
    root = Path(images)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [parts[0] if len(parts := p.relative_to(root).parts) > 1 else None for p in files]


DATASET_KINDS = (
    "a folder of image files, a list of images (anything load_image takes) or an image tensor/array: "
    "float (N, C, H, W) in [0, 1], or uint8 (N, H, W) or (N, H, W, C)"
)


def check_dataset(model, images) -> None:
    """Refuse, before any scanning, a dataset :func:`dataset_examples` cannot read (the
    DatasetExamples widget scans in the background, so it asks here first): a path
    that is no folder, something that is not a list, tensor or array, an empty
    dataset, a tensor of the wrong shape or with NaN, a first image that does not load.

    >>> import cnn_widgets as cw
    >>> check_dataset(cw.load_model("fashion-cnn"), torch.rand(2, 1, 28, 28))
    >>> check_dataset(cw.load_model("fashion-cnn"), [])
    Traceback (most recent call last):
    ...
    ValueError: the dataset is empty; it must be a folder of image files, a list of images (anything load_image takes) or an image tensor/array: float (N, C, H, W) in [0, 1], or uint8 (N, H, W) or (N, H, W, C), with at least one image
    """
    channels = as_model(model).input_size[0]
    empty = ValueError(f"the dataset is empty; it must be {DATASET_KINDS}, with at least one image")
    if isinstance(images, (str, os.PathLike)):
        if not Path(images).is_dir():
            raise FileNotFoundError(f"no folder at {images}; the dataset must be {DATASET_KINDS}")
        return
    if isinstance(images, (np.ndarray, torch.Tensor)):
        tensor = torch.as_tensor(images)
        if tensor.dim() == 0 or len(tensor) == 0:
            raise empty
        as_pixels(tensor[:1], channels)  # its shape and channels
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError("the dataset tensor contains NaN or infinite values; pixel values must be finite, in [0, 1]")
        return
    if isinstance(images, (dict, bytes, bytearray)) or not hasattr(images, "__iter__"):
        raise TypeError(f"the dataset must be {DATASET_KINDS}, not {type(images).__name__}")
    if hasattr(images, "__len__") and len(images) == 0:
        raise empty
    if hasattr(images, "__getitem__"):
        try:
            load_image(images[0])
        except (ValueError, TypeError) as error:
            raise type(error)(f"dataset image 0: {error}") from None


def as_pixels(images, channels: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A dataset as float pixels (N, channels, H, W) in [0, 1].

    ``images``: a folder of image files, a list of anything ``load_image`` takes,
    or a tensor/array: uint8 (N, H, W) or (N, H, W, C), or float (N, C, H, W) in [0, 1].
    """
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder at {folder}; the dataset must be {DATASET_KINDS}")
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
        raise ValueError(f"the dataset is empty; it must be {DATASET_KINDS}, with at least one image")
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


class RunningTopK:
    """The best ``k`` images per channel of each layer, updated batch by batch.

    Order is by strongest response, ties broken by the smaller image index, so the
    result does not depend on how the images were split into batches or processes.
    Candidates must arrive in increasing image index (a scan does), which lets one
    stable sort on the values keep that tie order. Tensors stay on ``device``.

    >>> top = RunningTopK({"conv": 2}, k=2)
    >>> top.update("conv", torch.tensor([[1.0, 5.0], [3.0, 5.0]]), torch.tensor([[0, 1], [2, 3]]), first_index=0)
    >>> top.indices["conv"].tolist(), top.values["conv"].tolist()
    ([[1, 0], [0, 1]], [[3.0, 1.0], [5.0, 5.0]])
    """

    def __init__(self, channels: dict[str, int], k: int, device: torch.device | str = "cpu") -> None:
        self.k = k
        self.values = {name: torch.empty((c, 0), device=device) for name, c in channels.items()}
        self.indices = {name: torch.empty((c, 0), dtype=torch.long, device=device) for name, c in channels.items()}
        self.places = {name: torch.empty((c, 0), dtype=torch.long, device=device) for name, c in channels.items()}

    def update(self, name: str, strongest: torch.Tensor, where: torch.Tensor, first_index: int) -> None:
        """Offer a batch: ``strongest`` and ``where`` (B, C) for images ``first_index`` onwards."""
        strongest = torch.nan_to_num(strongest.float(), nan=float("-inf"))
        count, channels = strongest.shape
        device = self.values[name].device
        indices = torch.arange(first_index, first_index + count, device=device).expand(channels, -1)
        self._keep(name, torch.cat([self.values[name], strongest.T.to(device)], 1),
                   torch.cat([self.indices[name], indices], 1),
                   torch.cat([self.places[name], where.T.to(device)], 1), presorted=True)

    def _keep(self, name: str, values, indices, places, presorted: bool) -> None:
        if not presorted:  # order by index first, so that the stable sort below breaks ties by it
            order = indices.argsort(dim=1, stable=True)
            values, indices, places = values.gather(1, order), indices.gather(1, order), places.gather(1, order)
        order = values.sort(dim=1, descending=True, stable=True).indices[:, : self.k]
        self.values[name], self.indices[name], self.places[name] = values.gather(1, order), indices.gather(1, order), places.gather(1, order)

    def merge(self, values: torch.Tensor, indices: torch.Tensor, places: torch.Tensor, name: str) -> None:
        """Fold in other candidates (C, n) for layer ``name``, in any index order (another process's top-k)."""
        device = self.values[name].device
        self._keep(name, torch.cat([self.values[name], values.to(device)], 1), torch.cat([self.indices[name], indices.to(device)], 1),
                   torch.cat([self.places[name], places.to(device)], 1), presorted=False)

    def state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Plain CPU tensors, for ``torch.save`` (load with ``weights_only=True``)."""
        return {part: {name: t.cpu() for name, t in getattr(self, part).items()} for part in ("values", "indices", "places")}

    def load_state(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for part in ("values", "indices", "places"):
            current = getattr(self, part)
            for name in current:
                current[name] = state[part][name].to(current[name].device)


def scan(
    model, batches, layers, top: RunningTopK, device: torch.device, progress: Callable[[int], None] | None = None, cancel=None
) -> dict[str, int]:
    """The scanner behind dataset examples and the atlas: feed ``batches`` of
    (index of the first image, pixels (B, C, H, W): floats in [0, 1] or uint8) through the model and
    update ``top`` with each channel's strongest response per image and where it is.
    The response is the input of the activation that follows the conv (after any
    BatchNorm in between, before the ReLU; the conv's own output where no activation
    follows): :meth:`~cnn_widgets.models.layers.LayerInfo.activation_input`.
    ``cancel`` is checked before each batch (:class:`cnn_widgets.engine.Cancelled`).

    The caller owns the :func:`preserved` block that put the model on ``device``.
    Returns each layer's output width (positions are row * width + column).
    """
    nhwc = device.type != "mps"  # channels_last: about 1.5x faster convolutions on the CPU
    layout = torch.channels_last if nhwc else torch.contiguous_format
    widths = {}
    ranked = [info.activation_input() for info in layers]
    # Every batch frees buffers the next one needs again: keep them in the process (memory.py).
    with keep_freed_memory(device), channels_last(model.module, enabled=nhwc), torch.no_grad():
        for first_index, pixels in batches:
            if is_cancelled(cancel):
                raise Cancelled("the dataset scan was cancelled")
            pixels = pixels.to(device, non_blocking=True)
            if pixels.dtype == torch.uint8:  # decoded files travel as bytes, 4x less than floats
                pixels = pixels.float().div_(255)
            batch = model.normalize(pixels.float()).contiguous(memory_format=layout)
            # Strongest response per image and channel, and where: taken inside the hook,
            # so no full activation is copied.
            outputs = record_activations(model, batch, ranked, reduce=_strongest)
            for info, tensor in zip(layers, ranked):
                (strongest, where), widths[info.name] = outputs[tensor.name]  # (B, C) each; BatchNorm keeps the positions
                top.update(info.name, strongest.float(), where, first_index)  # float32 for half models too
            if progress is not None:
                progress(len(batch))
    return widths


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
    """The ``k`` images of a dataset that excite each filter most, for every conv layer,
    ranked by the input of the layer's ReLU (after its BatchNorm, where it has one; see
    :func:`ranked_by`).

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
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    check_dataset(model, images)
    chosen = list(model.layers) if layers is None else [model.layer(layer) for layer in layer_list(layers)]
    pixels = as_pixels(images, model.input_size[0], tuple(model.input_size[1:]))
    count = len(pixels)
    if count == 0:
        raise ValueError("the dataset is empty: pass a folder of images, a list of images or a tensor (N, C, H, W) with N >= 1")
    k = min(k, count)
    key = (weights_version(model), _fingerprint(pixels), tuple(info.path for info in chosen), k)
    if cache and key in _cache:
        return _cache[key]
    top = RunningTopK({info.name: info.out_channels for info in chosen}, k)
    done = 0

    def report(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, len(pixels))

    batches = ((start, pixels[start : start + batch_size]) for start in range(0, count, batch_size))
    with preserved(model.module, model.device):
        widths = scan(model, batches, chosen, top, model.device, report, cancel=cancel)
    positions = {name: torch.stack([flat // widths[name], flat % widths[name]], dim=-1) for name, flat in top.places.items()}
    result = DatasetExamples(top.indices, top.values, positions, pixels, k)
    if cache:
        _cache.clear()  # one dataset at a time: the pixels can be large
        _cache[key] = result
    return result
