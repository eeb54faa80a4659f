"""Transformation robustness: small random changes applied to the images before
every forward pass, so that the optimization finds patterns a filter responds to
wherever they are, rather than pixel noise that only works in one place.

As in Lucent, transforms are tiny pieces composed with ``compose([...])``:
``pad``, ``jitter``, ``random_scale`` and ``random_rotate``. Two differences:

- every image of the batch gets its own random draw (Lucent draws once per
  batch with NumPy's global RNG); the draws are passed in, so the caller
  decides where randomness comes from (see ``streams.py``);
- consecutive geometric transforms are fused into one affine matrix per image
  and applied with a single ``grid_sample`` on the device: one resampling
  (less blur) and one kernel instead of one per transform.

Coordinates are in pixels, centered on the image; each transform provides the
inverse map (from where a pixel lands back to where it came from), which is
what resampling needs. Areas that come from outside the image are gray (the
``fill`` of ``pad``).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..._choices import invalid_choice

TRANSFORM_PRESETS = ("standard", "none")


class Affine:
    """A geometric transform: how much it grows the canvas, how many uniform draws
    it needs per image, and the inverse matrices (N, 3, 3) for given draws (N, draws)."""

    def __init__(self, name: str, draws: int, inverse: Callable[[torch.Tensor], torch.Tensor] | None, grow: int = 0, fill: float = 0.5) -> None:
        self.name = name
        self.draws = draws
        self._inverse = inverse
        self.grow = grow
        self.fill = fill

    def __call__(self, images: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        """Apply this transform alone to images (N, C, H, W) with draws (N, ``draws``)."""
        return Compose([self])(images, uniform)

    def inverse(self, uniform: torch.Tensor) -> torch.Tensor:
        count = uniform.shape[0]
        if self._inverse is None:
            return torch.eye(3, device=uniform.device).expand(count, 3, 3)
        return self._inverse(uniform)

    def __repr__(self) -> str:
        return self.name


def _matrices(a, b, c, d, tx, ty) -> torch.Tensor:
    """(N, 3, 3) matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (N,) tensors."""
    zeros, ones = torch.zeros_like(a), torch.ones_like(a)
    rows = [torch.stack([a, b, tx], -1), torch.stack([c, d, ty], -1), torch.stack([zeros, zeros, ones], -1)]
    return torch.stack(rows, -2)


def _choose(values: Sequence[float], uniform: torch.Tensor) -> torch.Tensor:
    table = torch.tensor([float(v) for v in values], device=uniform.device, dtype=uniform.dtype)
    index = (uniform * len(values)).long().clamp_(0, len(values) - 1)
    return table[index]


def pad(width: int, fill: float = 0.5) -> Affine:
    """Grow the canvas by ``width`` pixels on every side, filled with gray.

    >>> pad(4)(torch.zeros(1, 3, 8, 8)).shape
    torch.Size([1, 3, 16, 16])
    """
    if width < 0:
        raise ValueError(f"pad width must be >= 0, got {width}")
    return Affine(f"pad({width})", 0, None, grow=int(width), fill=fill)


def jitter(distance: float) -> Affine:
    """Shift each image by up to ``distance / 2`` pixels in x and y (uniformly, per image).

    >>> m = jitter(8).inverse(torch.tensor([[1.0, 0.0]]))
    >>> m[0, 0, 2].item(), m[0, 1, 2].item()
    (-4.0, 4.0)
    """
    half = float(distance) / 2

    def inverse(u: torch.Tensor) -> torch.Tensor:
        dx, dy = (u[:, 0] * 2 - 1) * half, (u[:, 1] * 2 - 1) * half
        ones, zeros = torch.ones_like(dx), torch.zeros_like(dx)
        return _matrices(ones, zeros, zeros, ones, -dx, -dy)

    return Affine(f"jitter({distance})", 2, inverse)


def random_scale(scales: Sequence[float]) -> Affine:
    """Zoom each image about its center by a factor chosen from ``scales``.

    >>> random_scale([2.0]).inverse(torch.tensor([[0.3]]))[0, 0, 0].item()
    0.5
    """
    scales = list(scales)
    if not scales or min(scales) <= 0:
        raise ValueError("random_scale needs a non-empty list of positive scales")

    def inverse(u: torch.Tensor) -> torch.Tensor:
        factor = 1.0 / _choose(scales, u[:, 0])
        zeros = torch.zeros_like(factor)
        return _matrices(factor, zeros, zeros, factor, zeros, zeros)

    return Affine(f"random_scale({len(scales)} scales)", 1, inverse)


def random_rotate(angles: Sequence[float]) -> Affine:
    """Rotate each image about its center by an angle (degrees) chosen from ``angles``.

    >>> round(random_rotate([90]).inverse(torch.tensor([[0.5]]))[0, 0, 1].item(), 6)
    1.0
    """
    angles = list(angles)
    if not angles:
        raise ValueError("random_rotate needs a non-empty list of angles (degrees)")

    def inverse(u: torch.Tensor) -> torch.Tensor:
        radians = _choose(angles, u[:, 0]) * (math.pi / 180.0)
        cos, sin = torch.cos(radians), torch.sin(radians)
        zeros = torch.zeros_like(cos)
        return _matrices(cos, sin, -sin, cos, zeros, zeros)

    return Affine(f"random_rotate({len(angles)} angles)", 1, inverse)


class Compose:
    """Transforms applied in order; consecutive ``Affine`` ones become one resampling.

    Call it with images (N, C, H, W) and per-image uniform draws (N, ``draws``).
    Any other callable (tensor -> tensor) in the list is applied as is, in order.
    ``output_size`` resamples the final canvas to a fixed (H, W), for networks
    whose head needs one input size.

    >>> transform = compose([pad(2), jitter(4), random_rotate([-5, 5])])
    >>> transform(torch.rand(3, 1, 8, 8), torch.rand(3, transform.draws)).shape
    torch.Size([3, 1, 12, 12])
    """

    def __init__(self, transforms: Sequence, output_size: tuple[int, int] | None = None) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t) and not isinstance(t, Affine):
                raise TypeError(f"a transform must be an Affine (pad, jitter, ...) or a callable, not {type(t).__name__}")
        self.output_size = output_size
        self.draws = sum(t.draws for t in self.transforms if isinstance(t, Affine))

    def __call__(self, images: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        if uniform is None:
            if self.draws:
                raise ValueError(f"these transforms need {self.draws} uniform draws per image")
            uniform = images.new_zeros(images.shape[0], 0)
        if uniform.shape != (images.shape[0], self.draws):
            raise ValueError(f"expected draws of shape ({images.shape[0]}, {self.draws}), got {tuple(uniform.shape)}")
        uniform = uniform.to(images.device, torch.float32)
        offset = 0
        group: list[Affine] = []
        for t in self.transforms + [None]:
            if isinstance(t, Affine):
                group.append(t)
                continue
            count = sum(a.draws for a in group)
            last = t is None
            images = self._resample(images, group, uniform[:, offset:offset + count], self.output_size if last else None)
            offset += count
            group = []
            if not last:
                images = t(images)
        return images

    def canvas(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (height, width) that images of ``size`` have after the geometric transforms' padding.

        >>> compose([pad(3), jitter(2)]).canvas((8, 10))
        (14, 16)
        """
        grow = sum(t.grow for t in self.transforms if isinstance(t, Affine))
        return size[0] + 2 * grow, size[1] + 2 * grow

    @staticmethod
    def _resample(images: torch.Tensor, group: list[Affine], uniform: torch.Tensor, output_size) -> torch.Tensor:
        """Apply a group of affine transforms with one grid_sample."""
        count, channels, height, width = images.shape
        grow = sum(t.grow for t in group)
        canvas = (height + 2 * grow, width + 2 * grow)
        out = tuple(output_size) if output_size is not None else canvas
        if not any(t.draws for t in group) and canvas == (height, width) and out == canvas:
            return images
        inverse = torch.eye(3, device=images.device).expand(count, 3, 3)
        offset = 0
        for t in group:
            inverse = inverse @ t.inverse(uniform[:, offset:offset + t.draws])
            offset += t.draws
        # Normalized output coordinates -> canvas pixels -> source pixels -> normalized source coordinates.
        to_canvas = torch.diag(torch.tensor([canvas[1] / 2, canvas[0] / 2, 1.0], device=images.device))
        to_source = torch.diag(torch.tensor([2 / width, 2 / height, 1.0], device=images.device))
        theta = (to_source @ inverse @ to_canvas)[:, :2]
        grid = _affine_grid(theta, out)
        fill = next((t.fill for t in group if t.grow), 0.5)
        return F.grid_sample(images - fill, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False) + fill

    def __repr__(self) -> str:
        return f"compose({self.transforms!r})"


def _affine_grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, *size), align_corners=False)`` by broadcasting: each
    coordinate is a*x + b*y + t over the pixel centers, without affine_grid's (N, H*W, 3) x (3, 2)
    product (16 images on a 152 px canvas: 4.2 -> 0.2 ms on one core). Equal up to float rounding.

    >>> theta = torch.tensor([[[0.9, 0.1, 0.2], [-0.1, 0.9, 0.0]]])
    >>> torch.allclose(_affine_grid(theta, (5, 7)), F.affine_grid(theta, [1, 1, 5, 7], align_corners=False), atol=1e-6)
    True
    """
    height, width = size

    def centers(count: int) -> torch.Tensor:  # the pixel centers in [-1, 1], as ATen's affine_grid computes them
        return torch.linspace(-1, 1, count, device=theta.device, dtype=theta.dtype) * (count - 1) / count

    a, b, t = (theta[:, :, column, None, None] for column in range(3))  # (N, 2, 1, 1) each
    # In the product's order of sums: the same grid to the last bit where measured (152 px canvas).
    coordinates = a * centers(width).view(1, 1, 1, width) + b * centers(height).view(1, 1, height, 1) + t  # (N, 2, H, W)
    return torch.stack((coordinates[:, 0], coordinates[:, 1]), -1)


def compose(transforms: Sequence, output_size: tuple[int, int] | None = None) -> Compose:
    """Chain transforms (see :class:`Compose`).

    >>> compose([jitter(4), jitter(2)]).draws
    4
    """
    return Compose(transforms, output_size)


# Below this shorter side the standard preset has no transforms (see standard_transforms).
SMALL_INPUT = 64


def standard_transforms(size: tuple[int, int] = (128, 128)) -> list[Affine]:
    """Lucent's standard transforms, with pixel amounts scaled to the image size.

    The rule: Lucent's amounts at its default 128 px (pad 12, jitter 8, scale
    0.9-1.1, rotate -10..10 degrees, jitter 4) times (shorter side / 128), and
    no transforms at all when the shorter side is under ``SMALL_INPUT`` (64) px.
    On such inputs a one-pixel shift is already a large part of the network's
    pooling grid (fashion-cnn: stride 8 on 28 px), and
    measured on the shipped model the transforms cost more than they give: with
    them a filter's own image often excites it less than another filter's image
    does (benchmarks/optvis_quality.py, BENCHMARKS.md).

    >>> standard_transforms((128, 128))
    [pad(12), jitter(8.0), random_scale(11 scales), random_rotate(26 angles), jitter(4.0)]
    >>> standard_transforms((64, 64))
    [pad(6), jitter(4.0), random_scale(11 scales), random_rotate(26 angles), jitter(2.0)]
    >>> standard_transforms((28, 28))
    []
    """
    if min(size) < SMALL_INPUT:
        return []
    factor = min(size) / 128
    return [
        pad(round(12 * factor)),
        jitter(8 * factor),
        random_scale([1 + (i - 5) / 50 for i in range(11)]),
        random_rotate(list(range(-10, 11)) + 5 * [0]),
        jitter(4 * factor),
    ]


def make_transforms(spec, size: tuple[int, int], output_size: tuple[int, int] | None = None) -> Compose:
    """``spec``: "standard", "none"/None, a list of transforms, or a ready :class:`Compose`."""
    if isinstance(spec, Compose):
        return Compose(spec.transforms, output_size or spec.output_size)
    if spec is None or (isinstance(spec, str) and spec == "none"):
        return Compose([], output_size)
    if isinstance(spec, str):
        if spec == "standard":
            return Compose(standard_transforms(size), output_size)
        raise invalid_choice("transforms", spec, TRANSFORM_PRESETS)
    if isinstance(spec, (Affine,)) or callable(spec):
        return Compose([spec], output_size)
    if not isinstance(spec, (list, tuple)) or not all(isinstance(t, Affine) or callable(t) for t in spec):
        raise TypeError(
            f"transforms must be {' or '.join(repr(p) for p in TRANSFORM_PRESETS)}, None, a transform or a list of "
            f"transforms (Affine: pad, jitter, ..., or callables), got {spec!r:.80}"
        )
    return Compose(list(spec), output_size)
