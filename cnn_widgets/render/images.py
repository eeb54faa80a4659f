"""Whole pictures: image tensors to RGB pixels, and heatmaps (CAM, saliency) laid over a photo."""
from __future__ import annotations

import numpy as np
from PIL import Image

from cnn_widgets.render._arrays import as_numpy, as_uint8_array
from cnn_widgets.render.colorbar import value_range
from cnn_widgets.render.colormaps import colorize
from cnn_widgets.render.grids import enlarge
from cnn_widgets.render.normalize import normalize


def to_uint8_image(tensor: object) -> np.ndarray:
    """A (C, H, W) image, or an (H, W) one, in [0, 1] as uint8 RGB (H, W, 3).

    One channel is gray, three are RGB; with more (a multispectral model's
    input) the first three are shown as RGB, with two the first as gray.
    Values outside [0, 1] are clipped and NaN counts as 0; uint8 input is kept as is.

    >>> to_uint8_image(np.full((1, 2, 2), 0.5)).shape
    (2, 2, 3)
    >>> to_uint8_image(np.array([[0.0, 1.0]]))[0].tolist()
    [[0, 0, 0], [255, 255, 255]]
    >>> to_uint8_image(np.ones((4, 2, 2))).shape
    (2, 2, 3)
    """
    array = as_numpy(tensor)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[0] < 1:
        hint = "; pass one image of a batch, e.g. images[0]" if array.ndim == 4 else ""
        raise ValueError(f"expected an image of shape (C, H, W) or (H, W); got shape {array.shape}{hint}")
    if array.shape[0] == 2:
        array = array[:1]
    elif array.shape[0] > 3:
        array = array[:3]
    if array.dtype != np.uint8:
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        array = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    pixels = np.moveaxis(array, 0, -1)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels)


def overlay(image: object, heatmap: object, colormap: str = "inferno", opacity: float = 0.5) -> np.ndarray:
    """Lay a [0, 1] ``heatmap`` of any size over ``image``, as uint8 RGB of the image's size.

    ``image`` is uint8 (H, W, 3) or (H, W), or a PIL image. The heatmap is resized
    bilinearly to the image, colorized with ``colormap`` and blended: ``opacity`` 0
    shows only the image, 1 only the heatmap.

    >>> photo = np.full((4, 4, 3), 200, dtype=np.uint8)
    >>> overlay(photo, np.ones((2, 2)), colormap="gray", opacity=0.5)[0, 0].tolist()
    [228, 228, 228]
    """
    opacity = float(opacity)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    base = _rgb_pixels(image)
    height, width = base.shape[:2]

    heat = np.nan_to_num(as_numpy(heatmap).astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must have shape (h, w), got shape {heat.shape}")
    heat = np.clip(heat, 0.0, 1.0)
    if heat.shape != (height, width):
        # Pillow's float mode "F" resizes without quantizing the heatmap to 256 levels first.
        resized = Image.fromarray(np.ascontiguousarray(heat)).resize((width, height), Image.Resampling.BILINEAR)
        heat = np.asarray(resized)

    colored = colorize(heat, colormap)
    blended = (1.0 - opacity) * base.astype(np.float32) + opacity * colored.astype(np.float32)
    return np.rint(blended).astype(np.uint8)


def heatmap_overlay(image: object, heatmap: object, size: int = 256, colormap: str = "inferno", opacity: float = 0.5,
                    vrange: tuple[float, float] | None = None) -> np.ndarray:
    """A class heatmap over the image the model saw: the image (uint8 RGB) enlarged by a whole
    factor to at most ``size`` pixels (nearest neighbour), and the heatmap laid over it, its
    values ``vrange=(low, high)`` mapped to the colormap's ends (values outside are clipped).
    The default range is the map's own, :func:`~cnn_widgets.render.value_range` (zero to its
    peak); maps compared side by side share one range, so equal colours mean equal values.
    The GradCAM widget and ``cnn-widgets cam`` both draw this.

    >>> heatmap_overlay(np.zeros((28, 28, 3), np.uint8), np.eye(7), size=256).shape
    (252, 252, 3)
    >>> weak = heatmap_overlay(np.zeros((2, 2), np.uint8), np.full((2, 2), 0.1), 2, "gray", 1.0, vrange=(0.0, 1.0))
    >>> weak[0, 0].tolist()  # a tenth of the shared peak is a dark gray, not white
    [26, 26, 26]
    """
    low, high = value_range(heatmap) if vrange is None else vrange
    scaled = normalize(heatmap, "fixed", vrange=(low, high))
    return overlay(enlarge(_rgb_pixels(image), size), scaled, colormap=colormap, opacity=opacity)


def _rgb_pixels(image: object) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    pixels = as_uint8_array(image, "image")
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., np.newaxis], 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3) or (H, W), got shape {pixels.shape}")
    return pixels
