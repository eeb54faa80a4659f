"""How an image being optimized is parameterized: what the optimizer actually changes.

Two parameterizations, as in the Distill article "Feature Visualization"
(Olah et al., 2017) and Lucid/Lucent:

- ``fourier``: the image's 2D Fourier spectrum, scaled by 1/frequency, so that
  a gradient step changes low frequencies as readily as high ones (plain
  pixels let high-frequency noise win). For 3-channel images the channels are
  also decorrelated with the color covariance of ImageNet photos.
- ``pixel``: the pixels themselves (the seeds' method), through a sigmoid.
- ``maco``: MaCo (Fel et al., NeurIPS 2023): only the phase of the spectrum is
  optimized; its magnitude stays fixed to a natural-image spectrum, here the
  published 1/f fit (not measured from photos), so every image keeps natural
  image statistics while its structure changes.

``fourier`` and ``pixel`` start near gray (sigmoid(0) = 0.5) with a little noise drawn from each
image's own random stream, and keep one leaf tensor per image so that the
optimizer treats every image on its own and a batch can be processed in
chunks. Calling the parameterization renders pixels in [0, 1].
"""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np
import torch

from ..._choices import check_int, invalid_choice
from .streams import ImageStreams

IMAGE_PARAMS = ("fourier", "pixel", "maco")

# Square root of the color covariance of ImageNet, from Lucid; maps decorrelated
# "color directions" to RGB. Columns are normalized so the largest has norm 1.
_COLOR_CORRELATION_SVD_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float32
)
COLOR_CORRELATION = _COLOR_CORRELATION_SVD_SQRT / _COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()

# Lucid's constant: the inverse FFT of a unit-scale spectrum is too contrasty to start from.
_FOURIER_DAMPING = 4.0


def decorrelate_colors(image: torch.Tensor) -> torch.Tensor:
    """Map decorrelated color channels (N, 3, H, W) to RGB channels (before the sigmoid).

    >>> decorrelate_colors(torch.zeros(1, 3, 2, 2)).shape
    torch.Size([1, 3, 2, 2])
    """
    matrix = COLOR_CORRELATION.to(image.device, image.dtype)
    # One (3, 3) x (3, H*W) product per image: the same sums as einsum("nchw,dc->ndhw"), without
    # its permuted copies (16 images at 128 px, forward and backward: 11 -> 1.5 ms on one core).
    return torch.matmul(matrix, image.reshape(*image.shape[:2], -1)).view(image.shape)


class ImageParam(abc.ABC):
    """A batch of images as per-image leaf tensors plus a rendering to pixels.

    ``parameters`` go to the optimizer; ``render(start, stop)`` returns images
    ``start:stop`` as pixels (n, C, H, W) in [0, 1]; calling it renders all.
    """

    def __init__(self, tensors: list[torch.Tensor], channels: int, size: tuple[int, int], decorrelate: bool) -> None:
        self.tensors = tensors
        self.channels = channels
        self.size = size
        self.decorrelate = decorrelate
        self.transparency: torch.Tensor | None = None  # summed |d objective / d pixel|, when asked for
        self.start: torch.Tensor | None = None  # feature accentuation: the real image to stay close to
        self.closeness = 0.0

    @property
    def parameters(self) -> list[torch.Tensor]:
        return self.tensors

    def __len__(self) -> int:
        return len(self.tensors)

    def __call__(self) -> torch.Tensor:
        return self.render(0, len(self.tensors))

    def render(self, start: int, stop: int) -> torch.Tensor:
        raw = self._raw(torch.stack(self.tensors[start:stop]))
        if self.decorrelate:
            raw = decorrelate_colors(raw)
        return torch.sigmoid(raw)

    @abc.abstractmethod
    def _raw(self, stacked: torch.Tensor) -> torch.Tensor:
        """The unbounded image (before color decorrelation and the sigmoid)."""


class PixelImage(ImageParam):
    """Plain pixels (before a sigmoid)."""

    def _raw(self, stacked: torch.Tensor) -> torch.Tensor:
        return stacked


class FourierImage(ImageParam):
    """A real 2D spectrum per image and channel, scaled by 1/frequency**decay_power."""

    def __init__(self, tensors, channels, size, decorrelate, scale: torch.Tensor) -> None:
        super().__init__(tensors, channels, size, decorrelate)
        self.scale = scale

    def _raw(self, stacked: torch.Tensor) -> torch.Tensor:
        spectrum = torch.view_as_complex(stacked) * self.scale
        image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho")
        return image / _FOURIER_DAMPING


class MacoImage(ImageParam):
    """A phase per image and frequency; the magnitude is fixed (MaCo). The image
    from the inverse FFT is standardized per image (mean 0, std 1) before the
    sigmoid, so its contrast does not depend on the magnitude's overall scale."""

    def __init__(self, tensors, channels, size, decorrelate, magnitude: torch.Tensor) -> None:
        super().__init__(tensors, channels, size, decorrelate)
        self.magnitude = magnitude

    def _raw(self, stacked: torch.Tensor) -> torch.Tensor:
        spectrum = torch.polar(self.magnitude.expand_as(stacked), stacked)
        image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho")
        flat = image.flatten(1)
        standardized = (flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-8)
        return standardized.view_as(image)


def _optimized(kind: type[ImageParam], start: torch.Tensor, channels: int, size: tuple[int, int], device, decorrelate: bool | None, *extra) -> ImageParam:
    """A ``kind`` parameterization whose images start at ``start`` (one tensor per image),
    each a leaf tensor on ``device`` to optimize; ``decorrelate`` checked against ``channels``."""
    decorrelate = _check_decorrelate(channels, decorrelate)
    tensors = [t.to(device).requires_grad_(True) for t in start]
    return kind(tensors, channels, size, decorrelate, *extra)


def maco_image(streams: ImageStreams, channels: int, size: tuple[int, int], device: torch.device | str = "cpu", *,
               decay_power: float = 1.0, decorrelate: bool | None = None) -> MacoImage:
    """Images parameterized by the phase of their spectrum, the magnitude fixed to
    1/frequency**decay_power (MaCo). They start from a random phase: a natural-looking
    noise image, not gray.

    >>> image = maco_image(ImageStreams(0, [0, 1]), channels=3, size=(8, 8))
    >>> pixels = image()
    >>> pixels.shape, 0 <= pixels.min().item() <= pixels.max().item() <= 1
    (torch.Size([2, 3, 8, 8]), True)
    """
    height, width = size
    phases = (streams.uniform((channels, height, width // 2 + 1)) * 2 - 1) * torch.pi
    magnitude = spectrum_scale(height, width, decay_power).to(device)
    return _optimized(MacoImage, phases, channels, (height, width), device, decorrelate, magnitude)


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """1/f scaling for a (height, width // 2 + 1) real spectrum, capped at the lowest frequency.

    >>> spectrum_scale(4, 4).shape
    torch.Size([4, 3])
    """
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    frequencies = torch.sqrt(fx * fx + fy * fy)
    return (1.0 / frequencies.clamp(min=1.0 / max(height, width)) ** decay_power).to(torch.float32)


def fourier_image(streams: ImageStreams, channels: int, size: tuple[int, int], device: torch.device | str = "cpu", *,
                  sd: float = 0.01, decay_power: float = 1.0, decorrelate: bool | None = None) -> FourierImage:
    """Images parameterized by their 1/f-scaled Fourier spectrum (the default).

    ``decorrelate`` defaults to True for 3 channels (ImageNet color statistics) and
    is off for any other channel count.

    >>> image = fourier_image(ImageStreams(0, [0, 1]), channels=3, size=(8, 8))
    >>> pixels = image()
    >>> pixels.shape, bool(((pixels - 0.5).abs() < 0.1).all())
    (torch.Size([2, 3, 8, 8]), True)
    """
    height, width = size
    noise = streams.normal((channels, height, width // 2 + 1, 2)) * sd
    scale = spectrum_scale(height, width, decay_power).to(device)
    return _optimized(FourierImage, noise, channels, (height, width), device, decorrelate, scale)


def pixel_image(streams: ImageStreams, channels: int, size: tuple[int, int], device: torch.device | str = "cpu", *,
                sd: float = 0.01, decorrelate: bool | None = None) -> PixelImage:
    """Images parameterized by their pixels (through a sigmoid): the seeds' method.

    >>> pixel_image(ImageStreams(0, [0]), channels=1, size=(5, 6))().shape
    torch.Size([1, 1, 5, 6])
    """
    height, width = size
    noise = streams.normal((channels, height, width)) * sd
    return _optimized(PixelImage, noise, channels, (height, width), device, decorrelate)


def make_image(name: str, streams: ImageStreams, channels: int, size: tuple[int, int], device) -> ImageParam:
    """The parameterization called ``name`` ("fourier", "pixel" or "maco")."""
    if name == "fourier":
        return fourier_image(streams, channels, size, device)
    if name == "maco":
        return maco_image(streams, channels, size, device)
    if name == "pixel":
        return pixel_image(streams, channels, size, device)
    raise invalid_choice("image parameterization", name, IMAGE_PARAMS)


def start_from(images: ImageParam, pixels: torch.Tensor) -> None:
    """Set ``fourier`` or ``pixel`` images to show ``pixels`` (N or 1, C, H, W) in [0, 1]
    (feature accentuation starts from a real image).

    >>> image = pixel_image(ImageStreams(0, [0]), channels=1, size=(4, 4))
    >>> start_from(image, torch.full((1, 1, 4, 4), 0.25)); round(image().mean().item(), 4)
    0.25
    """
    if isinstance(images, MacoImage):
        raise ValueError("start needs param='fourier' or 'pixel': MaCo's magnitude is fixed, so it cannot show a given image")
    expected = (images.channels, *images.size)
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"start must be a tensor of images (1 or {len(images)}, {expected[0]}, {expected[1]}, {expected[2]}) in [0, 1], "
                        f"got {type(pixels).__name__}")
    if pixels.is_floating_point() and not bool(torch.isfinite(pixels).all()):
        raise ValueError("start contains NaN or infinite values; it must be images with pixel values in [0, 1]")
    if pixels.dim() != 4 or tuple(pixels.shape[1:]) != expected or pixels.shape[0] not in (1, len(images)):
        raise ValueError(f"start must be images of shape (1 or {len(images)}, {expected[0]}, {expected[1]}, {expected[2]}), got {tuple(pixels.shape)}")
    device = images.tensors[0].device
    raw = torch.logit(pixels.float().to(device).clamp(1e-3, 1 - 1e-3)).expand(len(images), *expected)
    if images.decorrelate:
        raw = torch.einsum("nchw,dc->ndhw", raw, torch.linalg.inv(COLOR_CORRELATION.to(device)))
    if isinstance(images, FourierImage):
        spectrum = torch.fft.rfft2(raw * _FOURIER_DAMPING, norm="ortho") / images.scale
        raw = torch.view_as_real(spectrum)
    with torch.no_grad():
        for tensor, value in zip(images.tensors, raw):
            tensor.copy_(value)


def _check_decorrelate(channels: int, decorrelate: bool | None) -> bool:
    if decorrelate is None:
        return channels == 3
    if decorrelate and channels != 3:
        raise ValueError(f"color decorrelation needs 3 channels, the images have {channels}")
    return bool(decorrelate)


# The largest side of an optimized image: 4096x4096 RGB is 200 MB per image and its gradients.
MAX_SIDE = 4096

def image_size(size: "int | Sequence[int]") -> tuple[int, int]:
    """``size`` as (height, width): an int is a square.

    >>> image_size(64), image_size((48, 80))
    ((64, 64), (48, 80))
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"size must be an int or (height, width), got {size!r}")
    return tuple(check_int("size (each side, in pixels)", side, low=1, high=MAX_SIDE) for side in size)
