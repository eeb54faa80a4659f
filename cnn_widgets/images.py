"""Getting pictures in: ``load_image`` for anything image-like, ``sample_image``
for the small images shipped with the package."""
from __future__ import annotations

import io
import os
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ._choices import invalid_choice

SAMPLES_DIR = Path(__file__).with_name("samples")
# Color photos from scikit-image's sample data (licenses in samples/LICENSES.md).
PHOTO_SAMPLES = ("cat", "coffee", "astronaut", "rocket")
# One Fashion-MNIST test image per class, named after the class.
FASHION_SAMPLES = (
    "tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)
SAMPLE_NAMES = PHOTO_SAMPLES + FASHION_SAMPLES
MAX_PIXELS = 64_000_000  # larger images are refused as possible decompression bombs
_URL_TIMEOUT = 20.0


def load_image(source, mode: str | None = None) -> Image.Image:
    """A PIL image from a path, URL, bytes, PIL image, NumPy array or tensor.

    ``mode`` is ``"RGB"`` or ``"L"`` (grayscale); by default grayscale stays
    grayscale and everything else (RGBA, palette, CMYK, 16-bit) becomes RGB.
    Transparent areas are composited on white.

    >>> load_image(np.zeros((8, 8, 3), dtype=np.uint8)).size
    (8, 8)
    """
    if mode not in (None, "RGB", "L"):
        raise ValueError(f"unknown mode {mode!r}; valid choices: 'RGB', 'L' or None")
    image = _open(source)
    return _convert(image, mode)


def _open(source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, torch.Tensor):
        array = source.detach().cpu()
        if array.dim() == 4 and array.shape[0] == 1:
            array = array[0]
        if array.dim() == 3 and array.shape[0] in (1, 3, 4):
            array = array.permute(1, 2, 0)
        return _from_array(array.numpy())
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), "the given bytes")
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(text, timeout=_URL_TIMEOUT) as response:
                    return _decode(response.read(), text)
            except OSError as error:
                raise ValueError(f"could not fetch image from {text}: {error}") from error
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        return _decode(path.read_bytes(), str(path))
    raise TypeError(
        f"cannot load an image from {type(source).__name__}; pass a path, URL, bytes, PIL image, NumPy array or tensor"
    )


def _decode(data: bytes, origin: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(
                    f"{origin} is {image.width}x{image.height} pixels, more than the {MAX_PIXELS:,} allowed; "
                    "refusing it as a possible decompression bomb"
                )
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ValueError(f"{origin} is too large to decode safely (possible decompression bomb): {error}") from error
        except UnidentifiedImageError as error:
            raise ValueError(f"{origin} is not an image in a format Pillow can read (PNG, JPEG, GIF, WebP, ...)") from error
        except OSError as error:
            raise ValueError(f"{origin} could not be decoded as an image: {error}") from error
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"an image array must be (H, W), (H, W, 1|3|4) or (C, H, W) for a tensor; got shape {array.shape}")
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueError("the image array contains NaN or infinite values")
        if array.max(initial=0) > 1.0 + 1e-6 or array.min(initial=0) < 0:
            if array.min(initial=0) >= 0 and array.max(initial=0) <= 255:
                array = array / 255.0
            else:
                raise ValueError("a float image must have values in [0, 1] (or [0, 255])")
        array = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(array)


def _convert(image: Image.Image, mode: str | None) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if mode is None:
        mode = "L" if image.mode in ("L", "1", "I", "I;16", "F") else "RGB"
    if image.mode in ("I", "I;16", "F") and mode == "L":
        array = np.asarray(image, dtype=np.float64)
        span = array.max() - array.min()
        array = (array - array.min()) / span if span > 0 else np.zeros_like(array)
        return Image.fromarray(np.round(array * 255).astype(np.uint8))
    return image.convert(mode) if image.mode != mode else image


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A PIL image as a float tensor (C, H, W) in [0, 1], resized to ``size`` = (H, W) if given."""
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def sample_image(name: str = "cat") -> Image.Image:
    """An image shipped with the package: a photo or a Fashion-MNIST test image.

    >>> sample_image("cat").mode, sample_image("sneaker").size
    ('RGB', (28, 28))
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = {"t_shirt": "tshirt", "t_shirt/top": "tshirt", "tshirt/top": "tshirt", "boot": "ankle_boot"}.get(key, key)
    if key not in SAMPLE_NAMES:
        raise invalid_choice("sample image", name, SAMPLE_NAMES)
    path = next(SAMPLES_DIR.glob(f"{key}.*"))
    return load_image(path)
