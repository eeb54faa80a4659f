"""Activation maximization: the input image that excites a filter most.

The seeds' method (gradient ascent on the input, from a gray image with a little
noise) with the quality techniques of the Distill article "Feature
Visualization" (Olah et al., 2017): a 1/f Fourier parameterization with
decorrelated colors (``param.py``), random pad/jitter/scale/rotate before every
step (``transform.py``), and Adam. Many filters are one optimization: image i of
the batch maximizes filter i, and the network is cut after the target layer,
so nothing beyond it is computed (``forward.py``).
"""
from __future__ import annotations

import functools

import torch

from ..._choices import check_int, check_real, invalid_choice
from ...models import Model, as_model, resolve_device
from ...models.state import Turns
from ..memory import keep_freed_memory
from .forward import LayerTap, autocast_dtype, free_memory, in_layout, is_cancelled, is_out_of_memory, memory_format
from .objectives import Objective, channel, class_logit, diversity as diversity_objective, neuron
from .param import ImageParam, image_size, make_image, start_from
from .streams import ImageStreams
from .transform import Compose, make_transforms

OBJECTIVES = ("channel", "neuron", "class")
# Images optimized together on a CPU or Apple GPU; bigger chunks do not run faster there
# and cost memory. On CUDA the whole batch goes at once, halved when memory runs out.
_CHUNK = {"cpu": 16, "mps": 64}


# More steps than anyone waits for: a typo (10**6 for 10**3) is refused instead of running for days.
MAX_STEPS = 100_000

def maximize(
    model,
    layer=None,
    filters=None,
    *,
    steps: int = 256,
    size: "int | tuple[int, int] | None" = None,
    seed: int = 0,
    param: str = "fourier",
    objective: "str | Objective | None" = None,
    position: tuple[int, int] | None = None,
    lr: float = 0.05,
    transforms="standard",
    batch_size: int | None = None,
    diversity: float = 0.0,
    progress=None,
    preview_every: int = 16,
    cancel=None,
    device=None,
    precision: str = "auto",
    truncate: bool = True,
    transparency: bool = False,
    start: torch.Tensor | None = None,
    closeness: float = 0.0,
) -> "torch.Tensor | tuple[torch.Tensor, torch.Tensor]":
    """Images that maximize filters of a layer: tensor (N, C, H, W) in [0, 1] on the CPU.

    Image i maximizes ``filters[i]`` (all filters of ``layer`` by default; repeat a
    filter to get several images of it, made different with ``diversity``).

    - ``objective``: "channel" (mean activation over positions), "neuron" (one
      position: the center, or ``position`` = (y, x) on the layer's output grid for
      an image of ``size``), "class" (the logit of class
      ``filters[i]``, by index or name; ``layer`` is not needed), or an
      :class:`~cnn_widgets.engine.optvis.objectives.Objective` of your own
      (``filters`` then only says how many images and labels their random streams).
      None (the default): :func:`default_objective`, "channel" except at a conv that
      reads the input, where it is "neuron".
    - ``param``: "fourier" (1/f spectrum, decorrelated colors; the default), "pixel",
      or "maco" (only the spectrum's phase is optimized, its magnitude fixed to 1/f).
    - ``transforms``: "standard" (pad, jitter, scale, rotate, drawn per image, in
      pixel amounts scaled to ``size``; none below 64 px, see
      :func:`~cnn_widgets.engine.optvis.transform.standard_transforms`),
      "none", or a list such as ``[pad(4), jitter(8)]``.
    - ``size``: int or (height, width); default the model's input size.
    - ``diversity``: weight of a penalty on images of the same filter looking alike
      (Gram-matrix similarity at ``layer``, as in Lucent); scale it to the layer's
      activations (for fashion-cnn about 0.1 to 1).
    - ``seed``: image i's noise and transforms depend only on (seed, filters[i]),
      not on its place in the batch. With ``batch_size=1`` a batch is bit-for-bit
      the one-by-one runs; batched convolutions round differently in the last bit,
      which Adam amplifies in places over long runs, so batched images are the same
      pictures but not identical to the last digit.
    - ``progress(step, values, images)`` is called after every step with the
      objective value per image (higher is better) and, every ``preview_every``
      steps and at the end, the current images (else None).
    - ``cancel``: a ``threading.Event`` or a callable returning True to stop;
      checked every step, it returns the images as they are.
    - ``device``: None for the model's device, "auto" for the best one here.
      On CUDA the forward pass runs in bfloat16 (``precision="float32"`` turns that
      off; CPU and MPS stay in float32), in channels-last memory layout except on
      MPS, and a batch that does not fit in
      GPU memory is split by itself. ``batch_size`` caps how many images go
      through the network at once.
    - ``truncate=False`` runs the whole network (slower; same images). Either way the
      target conv computes only the channel each image needs, unless the objective
      reads the whole layer (as ``diversity`` does).

    - ``start``: feature accentuation (Hamblin et al., 2024): start from a real image
      (1 or N, C, H, W) in [0, 1] instead of gray noise, and with ``closeness`` > 0
      subtract ``closeness`` times the mean squared pixel change from the objective,
      so the image changes only as much as needed to drive the filter; what changed
      is what in this picture the filter responds to. ``param`` "fourier" or "pixel".
    - ``transparency=True`` returns ``(images, transparency)``: MaCo's transparency
      map, the absolute gradient of the objective with respect to the pixels summed
      over all steps (and channels), scaled to [0, 1] per image, (N, 1, H, W): where
      the image mattered to the filter during the run.

    The model comes back unchanged (see :func:`cnn_widgets.models.preserved`).

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.engine.optvis import maximize
    >>> model = cw.load_model("fashion-cnn")
    >>> images = maximize(model, "block2_conv1", [0, 5], steps=8, size=32)
    >>> images.shape, 0 <= images.min().item() <= images.max().item() <= 1
    (torch.Size([2, 1, 32, 32]), True)
    >>> images, where = maximize(model, "block2_conv1", [0], steps=4, size=32, param="maco", transparency=True)
    >>> where.shape, where.max().item()
    (torch.Size([1, 1, 32, 32]), 1.0)
    """
    model = as_model(model)
    device = model.device if device is None else resolve_device(device)
    _check_settings(steps, lr, diversity, closeness, batch_size, preview_every, seed)

    # What to maximize: one label (filter or class index) per image, and the objective.
    height, width = image_size(size) if size is not None else model.input_size[1:]
    canvas = make_transforms(transforms, (height, width)).canvas((height, width))
    visible = (height / canvas[0], width / canvas[1])
    labels, goal = _objective(model, layer, filters, objective, position, visible, diversity)
    # A network with a classifier head must see its own input size.
    network_input = tuple(model.input_size[1:]) if goal.needs_output else None
    streams = ImageStreams(seed, labels)

    images = make_image(param, streams, model.input_size[0], (height, width), device)
    if not closeness >= 0:
        raise ValueError(f"closeness must be >= 0, got {closeness!r}")
    if start is not None:
        start_from(images, start)
        images.start, images.closeness = images.render(0, len(images)).detach(), float(closeness)
    elif closeness:
        raise ValueError("closeness needs a start image (start=...)")
    if transparency:
        images.transparency = torch.zeros(len(labels), 1, height, width, device=device)
    transform = make_transforms(transforms, (height, width), output_size=network_input)
    draws = streams.uniform((steps, transform.draws)).to(device)  # (N, steps, draws)
    optimizer = adam(images.parameters, lr)
    chunk = _Chunk(batch_size, len(labels), device, together=diversity > 0)
    cut = truncate and not goal.needs_output
    layers = [model.layer(name) for name in goal.layers]
    # The model changes hands between two steps when another view on it waits (Turns).
    tap = functools.partial(LayerTap, model, layers, cut=cut, dtype=autocast_dtype(device, precision), layout=memory_format(device))
    # Freed buffers stay in the process between steps (engine/memory.py: no unmapping and re-faulting).
    with keep_freed_memory(device), Turns(model.module, device, tap) as turns:
        for step in range(steps):
            turns.between_steps()
            if is_cancelled(cancel):
                break
            optimizer.zero_grad(set_to_none=True)
            values = _gradient_ascent_step(model, images, transform, draws[:, step], goal, turns.value, chunk, cancel)
            if values is None:  # cancelled between chunks: keep the images of the last full step
                break
            optimizer.step()
            if progress is not None:
                last = step + 1 == steps
                preview = _pixels(images, chunk) if last or (step + 1) % preview_every == 0 else None
                progress(step + 1, values.cpu(), preview)
    if transparency:
        totals = images.transparency.flatten(1)
        scaled = totals / totals.max(1, keepdim=True).values.clamp(min=1e-12)
        return _pixels(images, chunk), scaled.view_as(images.transparency).cpu()
    return _pixels(images, chunk)


def default_objective(model, layer=None) -> str:
    """The objective ``maximize`` uses when none is given: "channel" (a filter's mean
    output over its whole map), except at a conv that reads the network's input with no
    nonlinearity before it (the first conv), where it is "neuron" (the middle unit).

    Why: such a conv's output is linear in the pixels, so its mean over the map depends
    on the image's mean brightness only (times the kernel's sum); its best image is flat,
    bright or dark, whatever edge the kernel detects, and filters whose kernels sum the
    same sign get the same image. One unit of it sees only the kernel's window, and the
    image that excites that unit most (pixels in [0, 1]) is the kernel's own pattern:
    bright where its weights are positive, dark where they are negative.

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> default_objective(model, "block1_conv1"), default_objective(model, "block2_conv1")
    ('neuron', 'channel')
    """
    model = as_model(model)
    return "neuron" if model.layer(layer).reads_input else "channel"


def middle_unit_window(model, layer, size) -> "tuple[int, int, int, int] | None":
    """The pixels the middle unit of a conv that reads the input sees, in an image of
    ``size`` (int or (height, width)): (top, left, height, width), clipped to the image;
    None for a conv that does not read the input (its units see more than their kernel).

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> middle_unit_window(model, "block1_conv1", 28), middle_unit_window(model, "block2_conv1", 28)
    ((13, 13, 3, 3), None)
    """
    model = as_model(model)
    info = model.layer(layer)
    if not info.reads_input:
        return None
    conv = info.module
    window = []
    for axis, length in enumerate(image_size(size)):
        kernel, stride, dilation = info.kernel_size[axis], info.stride[axis], conv.dilation[axis]
        span = dilation * (kernel - 1) + 1
        padding = conv.padding
        if padding == "valid":
            pad = 0
        elif padding == "same":
            pad = (span - 1) // 2
        else:
            pad = padding[axis]
        outputs = (length + 2 * pad - span) // stride + 1
        first = (outputs // 2) * stride - pad
        start, stop = max(0, first), min(length, first + span)
        window.append((start, stop - start))
    (top, height), (left, width) = window
    return top, left, height, width


def _gradient_ascent_step(model: Model, images: ImageParam, transform: Compose, draws: torch.Tensor, goal: Objective,
                          tap: LayerTap, chunk: "_Chunk", cancel) -> torch.Tensor | None:
    """Forward and backward for every chunk of the batch; the gradients add up in the
    images' parameters. Returns the objective value per image (before the update)."""
    count = len(images)
    values = torch.empty(count, device=draws.device)
    start = 0
    while start < count:
        if start > 0 and is_cancelled(cancel):
            return None
        stop = min(start + chunk.size, count)
        try:
            with torch.enable_grad():  # gradients are the method, even inside the caller's torch.no_grad()
                scores = _forward_backward(model, images, transform, draws, goal, tap, start, stop)
        except Exception as error:
            if not is_out_of_memory(error) or chunk.size == 1:
                raise
            # Outside the except block the failed attempt's tensors (its graph, held by the
            # traceback's frames) are gone, so the smaller retry gets all of the memory back.
            scores = None
        if scores is None:
            for tensor in images.parameters[start:stop]:
                tensor.grad = None
            chunk.size = max(1, chunk.size // 2)
            free_memory(draws.device)
            continue
        values[start:stop] = scores
        start = stop
    return values


def _forward_backward(model: Model, images: ImageParam, transform: Compose, draws: torch.Tensor, goal: Objective,
                      tap: LayerTap, start: int, stop: int) -> torch.Tensor:
    """Images start..stop through the network and back; their objective values (detached).
    Every intermediate tensor is local here, so all of it is freed when this returns or raises."""
    pixels = images.render(start, stop)
    if images.transparency is not None:
        pixels.retain_grad()
    transformed = transform(pixels, draws[start:stop])
    inputs = in_layout(model.normalize(transformed), memory_format(draws.device))
    scores = goal(tap.run(inputs, range(start, stop)))
    if images.closeness:
        scores = scores - images.closeness * (pixels - images.start[start:stop]).pow(2).flatten(1).mean(1)
    (-scores.sum()).backward()
    if images.transparency is not None:
        images.transparency[start:stop] += pixels.grad.detach().abs().sum(1, keepdim=True).float()
    return scores.detach()


def adam(parameters: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per image where this PyTorch has that for the device (CPU
    since torch 2.4, CUDA): a step of the plain implementation is about ten small operations
    per image, which on the shipped 28 px model cost more than the update's arithmetic.

    >>> type(adam([torch.zeros(2, requires_grad=True)], 0.05)).__name__
    'Adam'
    """
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch, or a device without the fused kernel
        return torch.optim.Adam(parameters, lr=lr)


class _Chunk:
    """How many images go through the network at once; shrinks on out-of-memory."""

    def __init__(self, batch_size: int | None, count: int, device: torch.device, together: bool) -> None:
        if batch_size is not None:
            self.size = batch_size
        elif together or device.type == "cuda":
            self.size = count
        else:
            self.size = _CHUNK.get(device.type, count)
        self.size = max(1, min(self.size, count))


def _pixels(images: ImageParam, chunk: "_Chunk") -> torch.Tensor:
    """The current images on the CPU, rendered chunk by chunk as in the optimization."""
    with torch.no_grad():
        count = len(images)
        return torch.cat([images.render(start, min(start + chunk.size, count)) for start in range(0, count, chunk.size)]).float().cpu()


def _objective(model: Model, layer, filters, objective, position, visible, diversity: float) -> tuple[list[int], Objective]:
    """The label (filter or class index) of each image, and the objective to maximize."""
    if objective is None:
        objective = default_objective(model, layer)
    if isinstance(objective, Objective):
        info = model.layer(layer)
        labels = model.filters(info, filters)
        goal = objective
        diversity_layer = info
    elif objective in ("channel", "neuron"):
        info = model.layer(layer)
        labels = model.filters(info, filters)
        if objective == "channel":
            goal = channel(info, labels)
        else:
            goal = neuron(info, labels, position, visible)
        diversity_layer = info
    elif objective == "class":
        labels = _class_indices(model, filters)
        goal = class_logit(labels)
        diversity_layer = model.layer(layer)  # the last conv layer unless one is given
    else:
        raise invalid_choice("objective", objective, OBJECTIVES)
    if position is not None and objective != "neuron":
        raise ValueError("position is only used by objective='neuron'")
    if diversity > 0:
        goal = goal - diversity * diversity_objective(diversity_layer, labels)
    return labels, goal


def _class_indices(model: Model, classes) -> list[int]:
    names = model.classes
    if not names:
        raise ValueError(f"objective='class' needs a model with a classifier; {model.name} returns no class scores")
    if classes is None:
        return list(range(len(names)))
    if isinstance(classes, (int, str)):
        classes = [classes]
    indices = []
    for value in classes:
        if isinstance(value, str):
            if value not in names:
                raise invalid_choice("class", value, names, limit=20)
            indices.append(names.index(value))
        elif isinstance(value, bool) or not 0 <= int(value) < len(names):
            raise ValueError(f"class index {value} is out of range; {model.name} has {len(names)} classes (valid: 0-{len(names) - 1})")
        else:
            indices.append(int(value))
    if not indices:
        raise ValueError(f"no classes chosen; {model.name} has classes 0-{len(names) - 1}")
    return indices


def _check_settings(steps, lr, diversity, closeness, batch_size, preview_every, seed) -> None:
    check_int("steps", steps, low=0, high=MAX_STEPS)
    check_real("lr", lr, low=0, low_open=True)
    check_real("diversity", diversity, low=0)
    check_real("closeness", closeness, low=0)
    if batch_size is not None:
        check_int("batch_size (or None)", batch_size, low=1)
    check_int("preview_every", preview_every, low=1)
    check_int("seed", seed, low=0)
