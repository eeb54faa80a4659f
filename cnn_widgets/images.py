"""Getting pictures in: ``load_image`` for anything image-like, ``sample_image``
for the small images shipped with the package."""
from __future__ import annotations

import http.client
import io
import os
import socket
import threading
import time
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
SAMPLE_INFO_KEY = "cnn_widgets.sample"  # a shipped sample's name, kept in its PIL image's info
MAX_PIXELS = 64_000_000  # larger images are refused as possible decompression bombs
URL_MAX_BYTES = 50_000_000  # load_image(url) reads at most this much
URL_TIMEOUT = 20.0  # seconds for a whole load_image(url): connecting, headers and body together


def load_image(
    source, mode: str | None = None, *, max_bytes: int = URL_MAX_BYTES, timeout: float = URL_TIMEOUT
) -> Image.Image:
    """A PIL image from a path, URL, bytes, PIL image, NumPy array or tensor.

    ``mode`` is ``"RGB"`` or ``"L"`` (grayscale); by default grayscale stays
    grayscale and everything else (RGBA, palette, CMYK, 16-bit) becomes RGB.
    Transparent areas are composited on white.

    A URL (``http://``, ``https://``) is read to at most ``max_bytes`` bytes
    (50 MB by default) within one deadline of ``timeout`` seconds (20 by
    default) for the whole transfer, which a slow server cannot extend; either
    limit passed is a ValueError.

    >>> load_image(np.zeros((8, 8, 3), dtype=np.uint8)).size
    (8, 8)
    """
    if mode not in (None, "RGB", "L"):
        raise ValueError(f"unknown mode {mode!r}; valid choices: 'RGB', 'L' or None")
    if not (isinstance(max_bytes, int) and not isinstance(max_bytes, bool) and max_bytes > 0):
        raise ValueError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 < timeout < float("inf")):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    image = _open(source, max_bytes, timeout)
    if image.width == 0 or image.height == 0:
        raise ValueError(f"the image is empty ({image.width}x{image.height} pixels); pass a picture at least 1x1")
    return _convert(image, mode)


def _open(source, max_bytes: int = URL_MAX_BYTES, timeout: float = URL_TIMEOUT) -> Image.Image:
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
            return _decode(_fetch(text, max_bytes, timeout), text)
        if "://" in text[:16]:
            raise ValueError(f"cannot load an image from {text[:200]!r}: only http:// and https:// URLs are read; pass one of those or a file path")
        path = Path(text).expanduser()
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a name too long for the file system
            is_file = False
        if not is_file:
            raise FileNotFoundError(f"no image file at {str(path)[:200]!r}; pass an existing file's path, an http(s) URL, bytes, a PIL image, a NumPy array or a tensor")
        return _decode(path.read_bytes(), str(path))
    raise TypeError(
        f"cannot load an image from {type(source).__name__}; pass a path, URL, bytes, PIL image, NumPy array or tensor"
    )


class _Deadline:
    """Shuts down every socket a fetch opened once ``timeout`` seconds have passed, so
    a server that sends one byte at a time cannot stretch the transfer (a socket
    timeout only bounds each wait)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired.is_set():
                self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._timer.cancel()


def _watched_handlers(deadline: _Deadline) -> list:
    """urllib handlers whose connections report their sockets to ``deadline``."""

    def watched(connection_class):
        class Watched(connection_class):
            def connect(self):
                super().connect()
                deadline.watch(self.sock)

        return Watched

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, request):
            return self.do_open(watched(http.client.HTTPConnection), request)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, request):
            return self.do_open(watched(http.client.HTTPSConnection), request, context=self._context)

    return [HTTP(), HTTPS()]


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    """The body of ``url``: at most ``max_bytes`` bytes, all within ``timeout`` seconds."""
    started = time.monotonic()
    chunks, size = [], 0
    with _Deadline(timeout) as deadline:
        try:
            opener = urllib.request.build_opener(*_watched_handlers(deadline))
            with opener.open(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                if declared and declared.strip().isdigit() and int(declared) > max_bytes:
                    raise ValueError(
                        f"{url} is {int(declared):,} bytes, more than max_bytes={max_bytes:,}; "
                        "pass a larger max_bytes to load_image if you trust it"
                    )
                while chunk := response.read1(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ValueError(
                            f"{url} sent more than max_bytes={max_bytes:,} bytes; stopped reading. "
                            "Pass a larger max_bytes to load_image if you trust it"
                        )
                    chunks.append(chunk)
                    if deadline.expired.is_set():
                        break
        except (OSError, http.client.HTTPException) as error:
            if not deadline.expired.is_set():
                raise ValueError(
                    f"could not fetch image from {url}: {error}; check the address and the network, "
                    "or pass a file path, bytes, a PIL image or an array instead"
                ) from error
        if deadline.expired.is_set() or time.monotonic() - started > timeout:
            raise ValueError(
                f"{url} did not arrive within timeout={timeout:g} s ({size:,} bytes received); "
                "pass a longer timeout to load_image for a slow server"
            )
    return b"".join(chunks)


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
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_):
            raise ValueError(f"an image array must hold real numbers (uint8 0-255, or floats in [0, 1] or [0, 255]), not {array.dtype}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueError("the image array contains NaN or infinite values; pixel values must be finite, in [0, 1] or [0, 255]")
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
    if not isinstance(name, str):
        raise TypeError(f"sample image name must be a text, one of: {', '.join(SAMPLE_NAMES)}; got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = {"t_shirt": "tshirt", "t_shirt/top": "tshirt", "tshirt/top": "tshirt", "boot": "ankle_boot"}.get(key, key)
    if key not in SAMPLE_NAMES:
        raise invalid_choice("sample image", name, SAMPLE_NAMES)
    path = next(SAMPLES_DIR.glob(f"{key}.*"))
    picture = load_image(path)
    picture.info[SAMPLE_INFO_KEY] = key  # widgets given this picture name it after the sample
    return picture


def sample_name(image) -> str | None:
    """The shipped sample's name if ``image`` is a picture from :func:`sample_image`, else None.

    >>> sample_name(sample_image("ankle_boot")), sample_name("ankle_boot")
    ('ankle_boot', None)
    """
    info = getattr(image, "info", None)
    name = info.get(SAMPLE_INFO_KEY) if isinstance(info, dict) else None
    return name if name in SAMPLE_NAMES else None
