"""The pieces every heatmap method is made of: what a method is asked (:class:`Request`)
and answers (:class:`Explanation`), recording a layer's output, the explained class and
its score, upsampling and fusing maps, progress and Stop.

How the peers' known bugs are made impossible here:

- The activation is the layer's own output tensor, captured in a forward hook
  that hands the rest of the network a copy, and its gradient is taken with
  ``torch.autograd.grad`` on that exact tensor. An in-place ReLU after the
  layer changes only the copy, so activation and gradient belong together.
- Gradients start at the captured activation (a leaf when nothing before it
  needs gradients), so frozen models work, backward stops at the layer and no
  parameter ``.grad`` is ever written.
- A layer is one call of one module (ResNet blocks call one ReLU several times;
  a reused conv is explained at its first call); guided ReLUs are applied per
  call (see :mod:`.guided_relu`).
- Every division is guarded: flat maps are zeros, never NaN.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ...models import Model
from ...models.layers import LayerOutput
from ..optvis.forward import is_cancelled


@dataclass(frozen=True)
class CamOptions:
    """The options of the methods that run many passes (see :func:`cnn_widgets.engine.cam`)."""

    samples: int = 25
    noise: float = 0.15
    seed: int = 0
    batch_size: int | None = None  # None: batch_for(inputs)
    progress: Callable[[int, int], None] | None = None
    cancel: object = None

    def __post_init__(self) -> None:
        for name in ("samples", "batch_size"):
            value = getattr(self, name)
            if name == "batch_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be a whole number, got {self.seed!r}")
        if not isinstance(self.noise, (int, float)) or isinstance(self.noise, bool) or not 0 <= self.noise < float("inf"):
            raise ValueError(f"noise must be zero or a positive number (a fraction of the image's range), got {self.noise!r}")


# On the CPU one batch of masked or noisy passes holds about this many input pixels
# (4 images of 224x224): a batch of large inputs takes seconds there and gains little
# from batching, and Stop waits for at most one of its operations.
CPU_BATCH_PIXELS = 4 * 224 * 224


def batch_for(inputs: torch.Tensor, batch_size: int | None) -> int:
    """Passes per batch: ``batch_size`` when given; otherwise 32 on an accelerator and on the
    CPU as many as keep a batch near :data:`CPU_BATCH_PIXELS` (4 at 224x224, 32 at 28x28).

    >>> batch_for(torch.zeros(1, 3, 224, 224), None), batch_for(torch.zeros(1, 1, 28, 28), None)
    (4, 32)
    """
    if batch_size is not None:
        return batch_size
    if inputs.device.type != "cpu":
        return 32
    return max(1, min(32, CPU_BATCH_PIXELS // (inputs.shape[-2] * inputs.shape[-1])))


@dataclass
class Request:
    """What a method is asked to explain: preprocessed ``inputs`` (N, C, H, W), the resolved
    ``layers`` (empty for the pure input methods), the ``target`` as the user gave it."""

    model: Model
    inputs: torch.Tensor
    layers: list[LayerOutput]
    target: object
    options: CamOptions
    steps: "Steps"


@dataclass
class Explanation:
    """What a method answers: signed ``raw`` and non-negative ``map`` (N, H, W), the logits,
    the explained class per image (None for a callable target), its score, and for the input
    methods the per-channel ``attribution`` (N, C, H, W)."""

    raw: torch.Tensor
    map: torch.Tensor
    logits: torch.Tensor
    indices: list[int | None]
    scores: torch.Tensor
    attribution: torch.Tensor | None = None


class Cancelled(Exception):
    """A heatmap computation stopped because its ``cancel`` flag was set."""


class Steps:
    """Progress reports and cancel checks for the methods that run many passes. The flag is
    checked after every batch, and, inside :meth:`watching`, at the network's operations
    (at most every ``interval`` seconds), so Stop does not wait for a whole batch."""

    interval = 0.05

    def __init__(self, progress, cancel) -> None:
        self.progress, self.cancel, self.done, self.total = progress, cancel, 0, 0

    def check(self) -> None:
        if is_cancelled(self.cancel):
            raise Cancelled("the heatmap computation was cancelled")

    def advance(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)
        self.check()

    def watching(self):
        """A block within which the network's own operations check the cancel flag."""
        return _CancelChecks(self) if self.cancel is not None else contextlib.nullcontext()


class _CancelChecks(TorchFunctionMode):
    def __init__(self, steps: Steps) -> None:
        super().__init__()
        self.steps, self.next_check = steps, 0.0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        now = time.monotonic()
        if now >= self.next_check:
            self.next_check = now + self.steps.interval
            self.steps.check()
        return func(*args, **(kwargs or {}))


# -- recording a layer -----------------------------------------------------------------------------


@contextlib.contextmanager
def captured(layers: Sequence[LayerOutput]):
    """Record each layer's output (its module's ``call``-th call in the forward pass);
    yields a list filled, in the order of ``layers``, when the block's forward pass is done.

    The network continues with a copy, so whatever comes next (an in-place ReLU)
    cannot change the recorded tensor, and ``torch.autograd.grad`` with respect
    to it is the gradient of that very version. When nothing before the layer
    needs gradients (frozen parameters, an input without ``requires_grad``), the
    recorded tensor becomes a leaf that does, and backward stops there.
    """
    recorded: dict[int, torch.Tensor] = {}
    wanted: dict[nn.Module, dict[int, list[int]]] = {}
    for i, item in enumerate(layers):
        wanted.setdefault(item.module, {}).setdefault(item.call, []).append(i)
    calls: dict[nn.Module, int] = {}

    def hook(module, _inputs, output):
        call = calls.get(module, 0)
        calls[module] = call + 1
        positions = wanted[module].get(call)
        if not positions:
            return None  # another call of a reused module
        name = layers[positions[0]].name
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"layer {name} outputs {shape}; a CAM layer must output (N, C, H, W) feature maps")
        tensor = output if (output.requires_grad or not torch.is_grad_enabled()) else output.detach().requires_grad_(True)
        for position in positions:
            recorded[position] = tensor
        return tensor.clone()

    handles = [module.register_forward_hook(hook) for module in wanted]
    tensors: list[torch.Tensor] = []
    try:
        yield tensors
        missing = [item for i, item in enumerate(layers) if i not in recorded]
        if missing:
            item = missing[0]
            times = f" {item.call + 1} times" if item.call else ""
            raise ValueError(f"layer {item.name} did not run{times} in the forward pass, so it has no map")
        tensors.extend(recorded[i] for i in range(len(layers)))
    finally:
        for handle in handles:
            handle.remove()


# -- the explained class ---------------------------------------------------------------------------


def is_callable_target(target) -> bool:
    return callable(target) and not isinstance(target, (str, int))


def target_scores(model: Model, logits: torch.Tensor, target) -> tuple[list[int | None], torch.Tensor]:
    """The class explained for each image and its score (N,), from the logits (N, K)."""
    count = logits.shape[0]
    if is_callable_target(target):
        return [None] * count, callable_scores(target, logits)
    indices = _target_indices(model, logits, target)
    rows = torch.arange(count, device=logits.device)
    return indices, logits[rows, torch.tensor(indices, device=logits.device)]


def scorer(target, indices):
    """score_of(logits of copies of image i, i) -> one score per copy: the logit of image i's
    class, or the callable target's score."""
    if is_callable_target(target):
        return lambda logits, _i: callable_scores(target, logits)
    return lambda logits, i: logits[:, indices[i]]


def _target_indices(model: Model, logits: torch.Tensor, target) -> list[int]:
    count, classes = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1).tolist()
    if hasattr(target, "tolist") and not isinstance(target, (str, int)):  # tensors, NumPy arrays and scalars
        target = target.tolist()
    if isinstance(target, (list, tuple)):
        if len(target) != count:
            raise ValueError(f"got {len(target)} targets for {count} images; give one target per image (or one for all)")
        return [class_index(model, item, classes) for item in target]
    return [class_index(model, target, classes)] * count


def class_index(model: Model, target, classes: int | None = None) -> int:
    """The class index ``target`` means: a class index, or a class name of the model's
    (checked against its ``classes`` scores, all of ``model.classes`` by default).

    >>> import cnn_widgets as cw
    >>> class_index(cw.load_model("fashion-cnn"), "Bag"), class_index(cw.load_model("fashion-cnn"), 3)
    (8, 3)
    """
    from ..._choices import invalid_choice

    if classes is None:
        classes = len(model.classes)

    if isinstance(target, str):
        names = model.classes
        if target in names:
            return names.index(target)
        raise invalid_choice("target class", target, names, limit=20)
    if isinstance(target, bool) or not isinstance(target, int):
        if hasattr(target, "__index__") and not isinstance(target, bool):
            target = int(target)
        else:
            raise TypeError(
                f"target must be None, a class index, a class name, a list of those (one per image) "
                f"or a callable on the logits, not {type(target).__name__}"
            )
    if not 0 <= target < classes:
        raise ValueError(f"target class index {target} is out of range; the model has {classes} classes (0-{classes - 1})")
    return int(target)


def callable_scores(target, logits: torch.Tensor) -> torch.Tensor:
    scores = target(logits)
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"a target callable must return a tensor with one score per image, got {type(scores).__name__}")
    count = logits.shape[0]
    if scores.dim() == 0 and count == 1:
        return scores.reshape(1)
    if scores.dim() == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != (count,):
        raise ValueError(f"a target callable must return one score per image, shape ({count},); got {tuple(scores.shape)}")
    return scores


def gradient_or_zeros(scores: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """d sum(scores) / d tensor; zeros when the scores do not depend on it."""
    if not scores.requires_grad:
        return torch.zeros_like(tensor)
    (grad,) = torch.autograd.grad(scores.sum(), tensor, allow_unused=True)
    return torch.zeros_like(tensor) if grad is None else grad


# -- maps ------------------------------------------------------------------------------------------


def layer_explanation(raws: list[torch.Tensor], size, logits, indices, scores) -> Explanation:
    """Low-resolution signed maps (N, h, w), one per layer -> the explanation at the input's size.

    The map is the upsampled ReLU of the raw map (ReLU before interpolation, as
    captum and pytorch-grad-cam do). Several layers are fused by the mean of
    their maps each scaled to [0, 1] (raw maps: each divided by its largest
    absolute value), per image.
    """
    ups_raw = [resize(raw, size) for raw in raws]
    ups_map = [resize(raw.clamp(min=0), size) for raw in raws]
    if len(raws) == 1:
        raw, heat = ups_raw[0], ups_map[0]
    else:
        heat = torch.stack([scale_unit(m) for m in ups_map]).mean(dim=0)
        raw = torch.stack([_scale_signed(r) for r in ups_raw]).mean(dim=0)
    return Explanation(raw=raw, map=heat, logits=logits, indices=indices, scores=scores)


def input_explanation(attribution: torch.Tensor, logits, indices, scores) -> Explanation:
    """Per-pixel, per-channel attribution (N, C, H, W) -> raw: summed over channels; map: the
    largest absolute value over channels."""
    return Explanation(raw=attribution.sum(dim=1), map=attribution.abs().amax(dim=1), logits=logits,
                       indices=indices, scores=scores, attribution=attribution)


def resize(maps: torch.Tensor, size) -> torch.Tensor:
    """(N, h, w) -> (N, H, W) by bilinear interpolation (pixel centers aligned, as torch and OpenCV do)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False).squeeze(1)


def scale_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map of (..., H, W) scaled to [0, 1]; a flat map becomes zeros."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(maps))


def _scale_signed(maps: torch.Tensor) -> torch.Tensor:
    top = maps.abs().amax(dim=(1, 2), keepdim=True)
    return torch.where(top > 0, maps / torch.where(top > 0, top, torch.ones_like(top)), torch.zeros_like(maps))
