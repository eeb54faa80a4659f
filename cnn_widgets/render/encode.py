"""Pixels to file bytes: PNG (the default, lossless and deterministic), WebP, JPEG and animated GIF.

This is the one image encoder of the package: widgets send its bytes to the
browser and the command line writes them to disk.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from cnn_widgets._choices import invalid_choice
from cnn_widgets.render._arrays import as_uint8_array

IMAGE_FORMATS = ("png", "webp", "jpeg")

# zlib level 1 is several times faster than Pillow's default 6 and only slightly larger;
# widgets re-encode on every slider move, so speed wins.
PNG_COMPRESS_LEVEL = 1


def encode(array: object, format: str = "png", quality: int = 90) -> bytes:
    """Encode a uint8 (H, W) gray or (H, W, 3) RGB array as "png", "webp" or "jpeg" bytes.

    PNG is lossless and deterministic (same pixels, same bytes: no timestamps);
    ``quality`` (1 to 100) applies to the lossy formats.

    >>> encode(np.zeros((2, 2, 3), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    name = str(format).lower()
    if name == "jpg":
        name = "jpeg"
    if name not in IMAGE_FORMATS:
        raise invalid_choice("image format", format, IMAGE_FORMATS)
    quality = int(quality)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    image = _pil_image(array)
    buffer = io.BytesIO()
    if name == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif name == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_png(array: object) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array; the same as ``encode(array, "png")``.

    >>> encode_png(np.zeros((2, 2), dtype=np.uint8)) == encode_png(np.zeros((2, 2), dtype=np.uint8))
    True
    """
    return encode(array, "png")


def save_png(array: object, path: str | os.PathLike) -> Path:
    """Write ``array`` as a PNG file at ``path`` (its folder must exist) and return the path.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_png(np.zeros((2, 2, 3), dtype=np.uint8), Path(folder) / "black.png").name
    'black.png'
    """
    # Encode before opening the file so that a bad array leaves no empty file behind.
    return _write(encode_png(array), path)


def encode_gif(frames: Sequence[object], duration_ms: int | Sequence[int] = 100, loop: int | None = 0) -> bytes:
    """An animated GIF of uint8 (H, W, 3) (or (H, W)) frames, all the same size.

    ``duration_ms`` is per frame (one number, or one per frame); ``loop=0`` repeats
    forever, ``loop=None`` plays once. Each frame gets its own 256-color palette.
    Pillow merges identical consecutive frames into one longer frame, which plays
    the same.

    >>> frames = [np.full((4, 4, 3), value, dtype=np.uint8) for value in (0, 128, 255)]
    >>> encode_gif(frames)[:6]
    b'GIF89a'
    """
    images = [_pil_image(frame) for frame in frames]
    if not images:
        raise ValueError("encode_gif needs at least one frame")
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        shapes = sorted(f"{height}x{width}" for width, height in sizes)
        raise ValueError(f"all frames must have the same size; got frames of {', '.join(shapes)} (height x width)")
    options: dict[str, object] = {"duration": duration_ms}
    if loop is not None:
        options["loop"] = int(loop)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], **options)
    return buffer.getvalue()


def save_gif(frames: Sequence[object], path: str | os.PathLike, duration_ms: int | Sequence[int] = 100) -> Path:
    """Write frames (uint8 arrays or PIL images) as a looping animated GIF at ``path`` and return the path.

    >>> import tempfile
    >>> frames = [np.full((4, 4, 3), value, dtype=np.uint8) for value in (0, 255)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_gif(frames, Path(folder) / "blink.gif").read_bytes()[:6]
    b'GIF89a'
    """
    arrays = [np.asarray(frame.convert("RGB")) if isinstance(frame, Image.Image) else frame for frame in frames]
    return _write(encode_gif(arrays, duration_ms=duration_ms), path)


def _write(data: bytes, path: str | os.PathLike) -> Path:
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot save {str(target)!r}: the folder {str(folder)!r} does not exist")
    target.write_bytes(data)
    return target


def _pil_image(array: object) -> Image.Image:
    pixels = as_uint8_array(array, "image")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] == 3)):
        raise ValueError(f"image must have shape (H, W) or (H, W, 3), got shape {pixels.shape}")
    return Image.fromarray(np.ascontiguousarray(pixels))
