"""DeepDream: let the network exaggerate what it sees in a photo.

Gradient ascent on a layer's activation (or one filter's), starting from the
photo, over several octaves: the photo is shrunk a few times, dreamed on from
the smallest size up, and at every size the detail the dream added at the
smaller size is put back on top of the sharper photo. Each step rolls the image
by a random shift (so no pixel grid is favored), smooths the gradient with
Gaussians and normalizes it, so ``step_size`` is how much the pixels move per
step. With ``frames > 1`` the result is zoomed in a little and dreamed on
again: the seeds' "let the network dream" movie.
"""
from __future__ import annotations

import functools

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..._choices import check_int, check_real
from ...models import Model, as_model, resolve_device
from ...models.state import Turns
from ..memory import keep_freed_memory
from .forward import LayerTap, autocast_dtype, in_layout, is_cancelled, memory_format

# Octaves smaller than this are skipped: deep layers of a network have no output left.
MIN_OCTAVE_SIDE = 16


# Bounds that catch typos (10**6 steps for 10) before they run for days or allocate terabytes.
MAX_STEPS = 100_000
MAX_OCTAVES = 16
MAX_OCTAVE_SCALE = 4.0
MAX_FRAMES = 1_000
MAX_JITTER = 1_024
MAX_ZOOM = 4.0

def dream(
    model,
    image,
    layer=None,
    *,
    filter: int | None = None,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    jitter: int = 32,
    smoothing: float = 1.0,
    frames: int = 1,
    zoom: float = 1.05,
    seed: int = 0,
    progress=None,
    cancel=None,
    device=None,
    precision: str = "auto",
) -> list[Image.Image]:
    """DeepDream frames (PIL images at the photo's size) of ``image`` for ``layer``.

    ``image`` is anything :func:`cnn_widgets.load_image` takes; it is dreamed on at
    its own size (grayscale for 1-channel models). The objective is the mean
    squared (ReLU'd) activation of the whole layer, or the mean activation of
    ``filter``. ``octaves`` sizes, each ``octave_scale`` times smaller, get
    ``steps`` gradient steps of ``step_size`` (pixels are in [0, 1]) with random
    shifts of up to ``jitter`` pixels and Gaussian smoothing of the gradient
    (``smoothing`` = sigma in pixels, 0 for none). ``frames > 1`` feeds each
    result back zoomed in by ``zoom`` and returns every frame.

    ``progress(step, total, frame)`` is called after every gradient step with the
    number of steps done and to do, and ``frame`` (the PIL image) when a frame is
    finished, else None. ``cancel`` (a ``threading.Event`` or a callable) stops
    within one step; the frames so far are returned, the last one as it was.
    The same ``seed`` gives the same frames.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.engine.optvis import dream
    >>> model = cw.load_model("fashion-cnn")
    >>> frames = dream(model, cw.sample_image("sneaker"), "block2_conv1", steps=2, frames=2)
    >>> len(frames), frames[0].size
    (2, (28, 28))
    """
    model = as_model(model)
    device = model.device if device is None else resolve_device(device)
    _check_settings(octaves, octave_scale, steps, step_size, jitter, smoothing, frames, zoom, seed)
    target = model.layer(layer)
    chosen = None if filter is None else model.filters(target, [filter])[0]

    photo = model.pixels(image).to(device)  # the model's channel count, whatever the picture's
    sizes = octave_sizes(photo.shape[-2:], octaves, octave_scale)
    total = frames * len(sizes) * steps
    dreamer = _Dreamer(model, target, chosen, step_size, jitter, smoothing, seed)

    results: list[Image.Image] = []
    done = 0
    tap = functools.partial(LayerTap, model, [target], dtype=autocast_dtype(device, precision), layout=memory_format(device))
    # Turns hands the model over between steps when a view waits; freed buffers stay in the process (engine/memory.py).
    with keep_freed_memory(device), Turns(model.module, device, tap) as turns:
        pixels = photo
        for frame in range(frames):
            if frame > 0:
                pixels = zoom_in(pixels, zoom)
            base_pyramid = [resize(pixels, size) for size in sizes]
            detail = torch.zeros_like(base_pyramid[0])
            cancelled = False
            for base in base_pyramid:
                # Re-inject the detail dreamed at the smaller size into the sharper photo.
                dreamed = (base + resize(detail, base.shape[-2:])).clamp(0, 1)
                for _ in range(steps):
                    turns.between_steps()
                    if is_cancelled(cancel):
                        cancelled = True
                        break
                    dreamer.tap = turns.value
                    dreamed = dreamer.step(dreamed)
                    done += 1
                    if progress is not None:
                        progress(done, total, None)
                detail = dreamed - base
                if cancelled:
                    break
            pixels = (pixels + resize(detail, pixels.shape[-2:])).clamp(0, 1)
            results.append(to_picture(pixels))
            if progress is not None and not cancelled:
                progress(done, total, results[-1])
            if cancelled:
                break
    return results


class _Dreamer:
    """One gradient-ascent step of DeepDream, with its own random shifts."""

    def __init__(self, model: Model, target, chosen, step_size, jitter, smoothing, seed) -> None:
        self.model = model
        self.target = target
        self.chosen = chosen
        self.step_size = step_size
        self.jitter = int(jitter)
        self.smoothing = smoothing
        # A private generator: the user's random state is never touched.
        self.generator = torch.Generator().manual_seed(int(seed))
        self.tap: LayerTap | None = None

    def step(self, pixels: torch.Tensor) -> torch.Tensor:
        shift_y, shift_x = torch.randint(-self.jitter, self.jitter + 1, (2,), generator=self.generator).tolist()
        with torch.enable_grad():  # gradients are the method, even inside the caller's torch.no_grad()
            pixels = pixels.detach().requires_grad_(True)
            shifted = torch.roll(pixels, (shift_y, shift_x), dims=(2, 3))
            inputs = in_layout(self.model.normalize(shifted), memory_format(pixels.device))
            recording = self.tap.run(inputs)
            if self.chosen is None:
                score = F.relu(recording.activation(self.target)).pow(2).mean()
            else:
                score = recording.channels(self.target, torch.tensor([self.chosen])).mean()
            (gradient,) = torch.autograd.grad(score, pixels)
        gradient = smooth(gradient, self.smoothing)
        gradient = gradient / (gradient.abs().mean() + 1e-8)
        return (pixels + self.step_size * gradient).clamp(0, 1).detach()


def octave_sizes(size: Sequence[int], octaves: int, scale: float) -> list[tuple[int, int]]:
    """(height, width) of each octave, smallest first; too-small octaves are left out.

    >>> octave_sizes((100, 200), 3, 2.0)
    [(25, 50), (50, 100), (100, 200)]
    """
    height, width = int(size[0]), int(size[1])
    sizes = [(height, width)]
    for k in range(1, octaves):
        smaller = (round(height / scale**k), round(width / scale**k))
        if min(smaller) < MIN_OCTAVE_SIDE:
            break
        sizes.append(smaller)
    return sizes[::-1]


def resize(pixels: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to ``size``, antialiased when shrinking."""
    size = (int(size[0]), int(size[1]))
    if tuple(pixels.shape[-2:]) == size:
        return pixels
    shrinking = size[0] < pixels.shape[-2] or size[1] < pixels.shape[-1]
    return F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def zoom_in(pixels: torch.Tensor, zoom: float) -> torch.Tensor:
    """Crop the center 1/``zoom`` of the image and scale it back up to the same size.

    >>> zoom_in(torch.rand(1, 3, 20, 30), 1.25).shape
    torch.Size([1, 3, 20, 30])
    """
    height, width = pixels.shape[-2:]
    crop_h, crop_w = max(1, round(height / zoom)), max(1, round(width / zoom))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return resize(pixels[..., top:top + crop_h, left:left + crop_w], (height, width))


def smooth(gradient: torch.Tensor, sigma: float) -> torch.Tensor:
    """The average of Gaussian blurs with sigma/2, sigma and 2*sigma (pixels): removes
    the high-frequency noise of raw input gradients while keeping their shape.

    >>> smooth(torch.ones(1, 3, 8, 8), 1.0).allclose(torch.ones(1, 3, 8, 8))
    True
    """
    if sigma <= 0:
        return gradient
    channels = gradient.shape[1]
    blurred = torch.zeros_like(gradient)
    for s in (sigma / 2, sigma, sigma * 2):
        radius = max(1, math.ceil(3 * s))
        offsets = torch.arange(-radius, radius + 1, device=gradient.device, dtype=gradient.dtype)
        kernel = torch.exp(-(offsets**2) / (2 * s * s))
        kernel = kernel / kernel.sum()
        padded = F.pad(gradient, (radius, radius, radius, radius), mode="replicate")
        rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
        blurred = blurred + F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
    return blurred / 3


def to_picture(pixels: torch.Tensor) -> Image.Image:
    """A (1, C, H, W) tensor in [0, 1] as a PIL image (grayscale for one or two channels,
    the first three as RGB for three or more)."""
    channels = pixels.shape[1]
    pixels = pixels[:, :1] if channels < 3 else pixels[:, :3]
    array = (pixels[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _check_settings(octaves, octave_scale, steps, step_size, jitter, smoothing, frames, zoom, seed) -> None:
    check_int("octaves", octaves, low=1, high=MAX_OCTAVES)
    check_real("octave_scale", octave_scale, low=1, high=MAX_OCTAVE_SCALE, low_open=True)
    check_int("steps", steps, low=0, high=MAX_STEPS)
    check_real("step_size", step_size, low=0, low_open=True)
    check_int("jitter (pixels)", jitter, low=0, high=MAX_JITTER)
    check_real("smoothing", smoothing, low=0)
    check_int("frames", frames, low=1, high=MAX_FRAMES)
    check_real("zoom", zoom, low=1, high=MAX_ZOOM)
    check_int("seed", seed, low=0)
