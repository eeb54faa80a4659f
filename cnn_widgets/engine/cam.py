"""Where the network looks: class activation maps (Grad-CAM family) and saliency.

``cam`` answers "which pixels made the network say this class?" with one map of
the input's height and width. Layer methods (Grad-CAM, Grad-CAM++, Layer-CAM,
Score-CAM) weight a conv layer's channels and upsample the result; input
methods (vanilla gradient, SmoothGrad, guided backpropagation) differentiate
the class score with respect to the pixels; guided Grad-CAM multiplies the two.

How the peers' known bugs are made impossible here:

- The activation is the conv's own output tensor, captured in a forward hook
  that hands the rest of the network a copy, and its gradient is taken with
  ``torch.autograd.grad`` on that exact tensor. An in-place ReLU after the
  layer changes only the copy, so activation and gradient belong together.
- Gradients start at the captured activation (a leaf when nothing before it
  needs gradients), so frozen models work, backward stops at the layer and no
  parameter ``.grad`` is ever written.
- Only a layer's first call in a forward pass is recorded; guided ReLUs are
  applied per call (see :mod:`.cam_guided`), so shared modules such as
  ResNet's ``relu`` are handled.
- Every division is guarded: flat maps are zeros, never NaN.
- Everything runs inside :func:`~cnn_widgets.models.preserved`: mode, flags,
  hooks and ``.grad`` come back as they were, also after an error.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._choices import invalid_choice
from ..models import Model, as_model, preserved
from ..models.layers import LayerInfo
from .cam_guided import guided_relus
from .optvis.forward import is_cancelled

CAM_METHODS = (
    "gradcam",
    "gradcam++",
    "layercam",
    "scorecam",
    "saliency",
    "smoothgrad",
    "guided_backprop",
    "guided_gradcam",
)
# Methods that look at a conv layer; the others explain the input pixels directly.
LAYER_METHODS = ("gradcam", "gradcam++", "layercam", "scorecam", "guided_gradcam")
INPUT_METHODS = ("saliency", "smoothgrad", "guided_backprop", "guided_gradcam")

Target = "int | str | Sequence[int | str] | Callable[[torch.Tensor], torch.Tensor] | None"


class Prediction(NamedTuple):
    """One of the model's top classes for an image."""

    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class CamResult:
    """Everything the heatmap view shows for one image.

    ``map`` is what :func:`cam` returns (non-negative, (H, W), not normalized:
    magnitudes compare across classes and images); ``raw`` is the same before
    the final ReLU or absolute value (signed). ``attribution`` is the per-pixel,
    per-channel (C, H, W) input attribution of the input methods (None for the
    layer methods). ``class_index``, ``class_name`` and ``probability`` describe
    the explained class (None for a callable target); ``score`` is the target's
    logit (or the callable's output) for the image as given; ``top`` holds the
    top-k predictions; ``layers`` names the layers used (empty for the pure
    input methods).
    """

    map: torch.Tensor
    raw: torch.Tensor
    method: str
    layers: tuple[str, ...]
    class_index: int | None
    class_name: str | None
    probability: float | None
    score: float
    logits: torch.Tensor
    top: list[Prediction]
    attribution: torch.Tensor | None = None


@dataclass(frozen=True)
class _CamLayer:
    name: str
    module: nn.Module


# -- public functions ----------------------------------------------------------------------------


def cam(
    model,
    image,
    method: str = "gradcam",
    layer=None,
    target: Target = None,
    *,
    raw: bool = False,
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> torch.Tensor:
    """The class activation map or saliency map of ``image``, at the input's height and width.

    Returns a CPU float32 tensor (H, W), or (N, H, W) for a batch (N, C, H, W).
    The map is not normalized, so magnitudes compare across classes and images;
    scale it for display with :func:`cnn_widgets.render.normalize`.

    - ``method``: one of :data:`CAM_METHODS`. ``"gradcam"`` (Selvaraju et al.),
      ``"gradcam++"`` (Chattopadhay et al.), ``"layercam"`` (Jiang et al.) and
      ``"scorecam"`` (Wang et al.; one forward pass per channel, so slow on deep
      layers) weight a layer's channels; ``"saliency"`` (the vanilla gradient),
      ``"smoothgrad"`` (the gradient averaged over ``samples`` noisy copies with
      noise of ``noise`` times the input's range, drawn from ``seed``) and
      ``"guided_backprop"`` explain pixels and show, per pixel, the largest
      absolute value over the input channels; ``"guided_gradcam"`` is guided
      backpropagation times the Grad-CAM map.
    - ``layer``: a conv layer (name, module path, index or module; any module of
      the network whose output is (N, C, H, W) also works, as the module or its
      path, such as a ResNet's ``"layer4"``). Default: the last
      conv layer whose output is still spatial. A list fuses several layers: the
      mean of their maps, each scaled to [0, 1] first. Checked, but not used, by
      the pure input methods.
    - ``target``: ``None`` for the top-1 prediction, a class index, a class name
      from ``model.classes``, a list with one of those per image of a batch, or
      a callable that takes the logits (N, classes) and returns one score per
      image. Layer and gradient methods explain the logit; Score-CAM, as in its
      paper, the softmax probability (or the callable's score), each channel
      weighted by how much it raises that over a fully masked (zero) input.
    - ``raw=True`` returns the signed map: before the final ReLU for the layer
      methods, the gradient summed over input channels for the input methods.
    - ``progress(done, total)`` is called after each batch of Score-CAM's masked
      passes (channels) and of SmoothGrad's noisy copies; ``cancel`` (a
      ``threading.Event`` or a callable returning True) is checked as often and
      stops the computation with :class:`Cancelled`.

    Gradients are needed, so calling it inside ``torch.no_grad()`` or
    ``torch.inference_mode()`` raises a ``RuntimeError`` (Score-CAM, which only
    runs forward passes, works there too). The model comes back unchanged.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> heatmap = engine.cam(model, cw.sample_image("sneaker"), target="Sneaker")
    >>> heatmap.shape, bool(heatmap.min() >= 0)
    (torch.Size([28, 28]), True)
    >>> engine.cam(model, torch.randn(2, 1, 28, 28), "saliency", target=[0, "Bag"]).shape
    torch.Size([2, 28, 28])
    """
    outcome = _compute(model, image, method, layer, target, samples=samples, noise=noise, seed=seed, batch_size=batch_size, progress=progress, cancel=cancel)
    maps = outcome.raw if raw else outcome.map
    return maps[0] if outcome.single else maps


def cam_result(
    model,
    image,
    method: str = "gradcam",
    layer=None,
    target: Target = None,
    *,
    k: int = 5,
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> "CamResult | list[CamResult]":
    """Like :func:`cam`, with what a heatmap view shows next to the map: a :class:`CamResult`
    (signed map, explained class, its probability, logits, top-``k`` predictions).

    A batch input gives a list with one result per image.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> result = engine.cam_result(model, cw.sample_image("bag"), target="Bag", k=3)
    >>> result.class_index, result.class_name, result.map.shape, len(result.top)
    (8, 'Bag', torch.Size([28, 28]), 3)
    """
    model = as_model(model)
    outcome = _compute(model, image, method, layer, target, samples=samples, noise=noise, seed=seed, batch_size=batch_size, progress=progress, cancel=cancel)
    probabilities = outcome.logits.softmax(dim=1)
    classes = model.classes
    results = []
    for i in range(outcome.map.shape[0]):
        index = outcome.indices[i]
        results.append(
            CamResult(
                map=outcome.map[i],
                raw=outcome.raw[i],
                method=outcome.method,
                layers=outcome.layer_names,
                class_index=index,
                class_name=None if index is None else _class_name(classes, index),
                probability=None if index is None else float(probabilities[i, index]),
                score=float(outcome.scores[i]),
                logits=outcome.logits[i],
                top=_top(probabilities[i], classes, k),
                attribution=None if outcome.attribution is None else outcome.attribution[i],
            )
        )
    return results[0] if outcome.single else results


def predict(model, image, k: int = 5) -> list[Prediction]:
    """The model's ``k`` most probable classes for one image: [(index, name, probability), ...].

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> top = engine.predict(cw.load_model("fashion-cnn", weights=None), cw.sample_image("coat"), k=3)
    >>> len(top), sorted(top, key=lambda p: -p.probability) == top
    (3, True)
    """
    model = as_model(model)
    inputs = _inputs(model, image)
    if inputs.shape[0] != 1:
        raise ValueError(f"predict takes one image; got a batch of {inputs.shape[0]} (call it once per image)")
    with preserved(model.module, model.device), torch.no_grad():
        logits = model.logits(inputs)
    return _top(logits[0].float().softmax(dim=0).cpu(), model.classes, k)


# -- the computation -----------------------------------------------------------------------------


@dataclass
class _Outcome:
    map: torch.Tensor  # (N, H, W)
    raw: torch.Tensor  # (N, H, W)
    method: str
    layer_names: tuple[str, ...]
    indices: list[int | None]
    scores: torch.Tensor  # (N,)
    logits: torch.Tensor  # (N, K)
    attribution: torch.Tensor | None  # (N, C, H, W)
    single: bool


def _compute(model, image, method, layer, target, *, samples, noise, seed, batch_size, progress=None, cancel=None) -> _Outcome:
    model = as_model(model)
    if method not in CAM_METHODS:
        raise invalid_choice("method", method, CAM_METHODS)
    if method != "scorecam":
        _require_gradients(method)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    # A layer is checked even where the method ignores it, so a typo never passes silently.
    layers = _resolve_layers(model, layer) if method in LAYER_METHODS or layer is not None else []
    single = not (isinstance(image, torch.Tensor) and image.dim() == 4)
    inputs = _inputs(model, image)
    attribution = None
    steps = _Steps(progress, cancel)
    steps.check()
    with preserved(model.module, model.device), _explained_errors():
        if method == "scorecam":
            raw, maps, logits, indices, scores = _score_cam(model, inputs, layers, target, batch_size, steps)
        elif method in ("gradcam", "gradcam++", "layercam"):
            raw, maps, logits, indices, scores = _gradient_cam(model, inputs, layers, target, method)
        else:
            if method == "smoothgrad":
                attribution, logits, indices, scores = _smooth_gradients(model, inputs, target, samples, noise, seed, batch_size, steps)
            else:
                attribution, logits, indices, scores = _input_gradients(model, inputs, target, guided=method != "saliency")
            if method == "guided_gradcam":
                _, weighting, *_ = _gradient_cam(model, inputs, layers, indices if indices[0] is not None else target, "gradcam")
                attribution = attribution * weighting.unsqueeze(1)
            raw, maps = attribution.sum(dim=1), attribution.abs().amax(dim=1)
    return _Outcome(
        map=_cpu(maps),
        raw=_cpu(raw),
        method=method,
        layer_names=tuple(item.name for item in layers) if method in LAYER_METHODS else (),
        indices=indices,
        scores=_cpu(scores.detach()),
        logits=_cpu(logits.detach()),
        attribution=None if attribution is None else _cpu(attribution.detach()),
        single=single,
    )


def _gradient_cam(model: Model, inputs, layers, target, method):
    """Grad-CAM, Grad-CAM++ or Layer-CAM: one forward and one backward pass, stopping at the layer."""
    with _captured(layers) as activations:
        logits = model.logits(inputs)
    indices, scores = _target_scores(model, logits, target)
    tensors = [activations[item.module] for item in layers]
    if scores.requires_grad:
        grads = torch.autograd.grad(scores.sum(), tensors, allow_unused=True)
    else:  # the output does not depend on the layer at all
        grads = [None] * len(tensors)
    raws = []
    for activation, grad in zip(tensors, grads):
        activation = activation.detach().float()  # maps in float32 for float16/bfloat16 models too
        grad = torch.zeros_like(activation) if grad is None else grad.float()
        raws.append(_combine(activation, grad, method))
    raw, maps = _upsample_and_fuse(raws, inputs.shape[-2:])
    return raw, maps, logits, indices, scores


def _combine(activation: torch.Tensor, grad: torch.Tensor, method: str) -> torch.Tensor:
    """(N, C, h, w) activation and gradient -> the signed low-resolution map (N, h, w)."""
    if method == "gradcam":
        weights = grad.mean(dim=(2, 3), keepdim=True)
        return (weights * activation).sum(dim=1)
    if method == "gradcam++":
        # Closed-form alphas of Grad-CAM++ (eq. 19 of the paper, exponential of the score).
        grad2 = grad.pow(2)
        denominator = 2 * grad2 + activation.sum(dim=(2, 3), keepdim=True) * grad2 * grad
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alphas = torch.where(denominator != 0, grad2 / safe, torch.zeros_like(grad2))
        weights = (alphas * grad.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
        return (weights * activation).sum(dim=1)
    if method == "layercam":
        return (grad.clamp(min=0) * activation).sum(dim=1)
    raise AssertionError(method)  # pragma: no cover


def _score_cam(model: Model, inputs, layers, target, batch_size, steps: "_Steps"):
    """Score-CAM: each channel, upsampled and scaled to [0, 1], masks the input; the channel's
    weight is how much the class probability of the masked input exceeds that of the fully
    masked input (the paper's baseline, zeros), so a model that ignores its input gives zeros.
    Forward passes only."""
    with torch.no_grad():
        with _captured(layers) as activations:
            logits = model.logits(inputs)
        indices, scores = _target_scores(model, logits, target)
        score_of = _scorer(model, target, indices, probability=True)
        size = tuple(inputs.shape[-2:])
        raws = []
        steps.total = inputs.shape[0] * sum(activations[item.module].shape[1] for item in layers)
        for item in layers:
            activation = activations[item.module].detach().float()
            count, channels = activation.shape[:2]
            weights = torch.zeros(count, channels, device=activation.device, dtype=activation.dtype)
            for i in range(count):
                baseline = score_of(model.logits(torch.zeros_like(inputs[i : i + 1])), i)
                for start in range(0, channels, batch_size):
                    chunk = activation[i, start : start + batch_size].unsqueeze(1)
                    masks = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False)
                    low = masks.amin(dim=(2, 3), keepdim=True)
                    span = masks.amax(dim=(2, 3), keepdim=True) - low
                    flat = (span == 0).flatten()
                    masks = torch.where(span > 0, (masks - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(masks))
                    masked = inputs[i : i + 1] * masks
                    channel_scores = score_of(model.logits(masked), i) - baseline
                    weights[i, start : start + chunk.shape[0]] = torch.where(flat, torch.zeros_like(channel_scores), channel_scores)
                    steps.advance(chunk.shape[0])
            raws.append((weights[:, :, None, None] * activation).sum(dim=1))
        raw, maps = _upsample_and_fuse(raws, size)
    return raw, maps, logits, indices, scores


def _input_gradients(model: Model, inputs, target, guided: bool):
    """d score / d pixels, with plain or guided ReLUs."""
    pixels = inputs.detach().clone().requires_grad_(True)
    with guided_relus() if guided else contextlib.nullcontext():
        logits = model.logits(pixels)
        indices, scores = _target_scores(model, logits, target)
        grads = _gradient_or_zeros(scores, pixels)
    return grads, logits, indices, scores


def _smooth_gradients(model: Model, inputs, target, samples, noise, seed, batch_size, steps: "_Steps"):
    """SmoothGrad: the mean gradient over noisy copies of each image, noise drawn on the CPU
    from ``seed`` so the result does not depend on the device."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if noise < 0:
        raise ValueError(f"noise must be zero or positive, got {noise}")
    with torch.no_grad():
        logits = model.logits(inputs)
    indices, scores = _target_scores(model, logits, target)
    score_of = _scorer(model, target, indices, probability=False)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(inputs)
    steps.total = inputs.shape[0] * samples
    for i in range(inputs.shape[0]):
        image = inputs[i : i + 1].detach()
        sigma = noise * float(image.max() - image.min())
        for start in range(0, samples, batch_size):
            count = min(batch_size, samples - start)
            draws = torch.randn((count, *image.shape[1:]), generator=generator).to(image.device, image.dtype)
            noisy = (image + sigma * draws).requires_grad_(True)
            chunk_scores = score_of(model.logits(noisy), i)
            total[i] += _gradient_or_zeros(chunk_scores, noisy).sum(dim=0)
            steps.advance(count)
    return total / samples, logits, indices, scores


# -- pieces --------------------------------------------------------------------------------------


class Cancelled(Exception):
    """A heatmap computation stopped because its ``cancel`` flag was set."""


class _Steps:
    """Progress reports and cancel checks for the methods that run many passes."""

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


@contextlib.contextmanager
def _captured(layers: Sequence[_CamLayer]):
    """Record each layer's output on its first call in the forward pass.

    The network continues with a copy, so whatever comes next (an in-place ReLU)
    cannot change the recorded tensor, and ``torch.autograd.grad`` with respect
    to it is the gradient of that very version. When nothing before the layer
    needs gradients (frozen parameters, an input without ``requires_grad``), the
    recorded tensor becomes a leaf that does, and backward stops there.
    """
    activations: dict[nn.Module, torch.Tensor] = {}
    names = {item.module: item.name for item in layers}

    def hook(module, _inputs, output):
        if module in activations:
            return None  # a later call of a reused module: the first call is the one explained
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"layer {names[module]} outputs {shape}; a CAM layer must output (N, C, H, W) feature maps")
        recorded = output if (output.requires_grad or not torch.is_grad_enabled()) else output.detach().requires_grad_(True)
        activations[module] = recorded
        return recorded.clone()

    handles = [item.module.register_forward_hook(hook) for item in layers]
    try:
        yield activations
        missing = [item.name for item in layers if item.module not in activations]
        if missing:
            raise ValueError(f"layer {', '.join(missing)} did not run in the forward pass, so it has no map")
    finally:
        for handle in handles:
            handle.remove()


def _upsample_and_fuse(raws: list[torch.Tensor], size) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-resolution signed maps (one per layer) -> (raw, map) at the input's size.

    The map is the upsampled ReLU of the raw map (ReLU before interpolation, as
    captum and pytorch-grad-cam do). Several layers are fused by the mean of
    their maps each scaled to [0, 1] (raw maps: each divided by its largest
    absolute value), per image.
    """
    ups_raw = [_resize(raw, size) for raw in raws]
    ups_map = [_resize(raw.clamp(min=0), size) for raw in raws]
    if len(raws) == 1:
        return ups_raw[0], ups_map[0]
    fused_map = torch.stack([_scale_unit(m) for m in ups_map]).mean(dim=0)
    fused_raw = torch.stack([_scale_signed(r) for r in ups_raw]).mean(dim=0)
    return fused_raw, fused_map


def _resize(maps: torch.Tensor, size) -> torch.Tensor:
    """(N, h, w) -> (N, H, W) by bilinear interpolation (pixel centers aligned, as torch and OpenCV do)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False).squeeze(1)


def _scale_unit(maps: torch.Tensor) -> torch.Tensor:
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(maps))


def _scale_signed(maps: torch.Tensor) -> torch.Tensor:
    top = maps.abs().amax(dim=(1, 2), keepdim=True)
    return torch.where(top > 0, maps / torch.where(top > 0, top, torch.ones_like(top)), torch.zeros_like(maps))


def _gradient_or_zeros(scores: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    if not scores.requires_grad:
        return torch.zeros_like(tensor)
    (grad,) = torch.autograd.grad(scores.sum(), tensor, allow_unused=True)
    return torch.zeros_like(tensor) if grad is None else grad


def _target_scores(model: Model, logits: torch.Tensor, target) -> tuple[list[int | None], torch.Tensor]:
    """The class explained for each image and its score (N,), from the logits (N, K)."""
    count = logits.shape[0]
    if callable(target) and not isinstance(target, (str, int)):
        return [None] * count, _callable_scores(target, logits)
    indices = _target_indices(model, logits, target)
    rows = torch.arange(count, device=logits.device)
    return indices, logits[rows, torch.tensor(indices, device=logits.device)]


def _target_indices(model: Model, logits: torch.Tensor, target) -> list[int]:
    count, classes = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1).tolist()
    if hasattr(target, "tolist") and not isinstance(target, (str, int)):  # tensors, NumPy arrays and scalars
        target = target.tolist()
    if isinstance(target, (list, tuple)):
        if len(target) != count:
            raise ValueError(f"got {len(target)} targets for {count} images; give one target per image (or one for all)")
        return [_class_index(model, item, classes) for item in target]
    return [_class_index(model, target, classes)] * count


def _class_index(model: Model, target, classes: int) -> int:
    if isinstance(target, str):
        names = model.classes
        if target in names:
            return names.index(target)
        raise invalid_choice("class", target, names, limit=20)
    if isinstance(target, bool) or not isinstance(target, int):
        if hasattr(target, "__index__") and not isinstance(target, bool):
            target = int(target)
        else:
            raise TypeError(
                f"target must be None, a class index, a class name, a list of those (one per image) "
                f"or a callable on the logits, not {type(target).__name__}"
            )
    if not 0 <= target < classes:
        raise ValueError(f"class index {target} is out of range; the model has {classes} classes (0-{classes - 1})")
    return int(target)


def _callable_scores(target, logits: torch.Tensor) -> torch.Tensor:
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


def _scorer(model: Model, target, indices, probability: bool):
    """score_of(logits of copies of image i, i) -> one score per copy, for the class of image i."""
    if callable(target) and not isinstance(target, (str, int)):
        return lambda logits, _i: _callable_scores(target, logits)

    def score_of(logits: torch.Tensor, i: int) -> torch.Tensor:
        values = logits.softmax(dim=1) if probability else logits
        return values[:, indices[i]]

    return score_of


def _resolve_layers(model: Model, layer) -> list[_CamLayer]:
    if layer is None:
        return [_default_layer(model)]
    items = list(layer) if isinstance(layer, (list, tuple)) else [layer]
    if not items:
        raise ValueError("layer is an empty list; give one layer or several to fuse")
    chosen: list[_CamLayer] = []
    for item in items:
        if isinstance(item, nn.Module) and not isinstance(item, nn.Conv2d):
            path = next((p for p, m in model.module.named_modules() if m is item), None)
            if path is None:
                raise ValueError(f"that {type(item).__name__} is not part of model {model.name}")
            found = _CamLayer(path or type(item).__name__, item)
        else:
            try:
                info = model.layer(item)
                found = _CamLayer(info.name, info.module)
            except ValueError as error:
                # Not a conv: any module path whose output is a feature map works too
                # (a ResNet stage such as "layer4", a ReLU "features.29").
                module = _submodule(model, item)
                if module is None:
                    raise ValueError(f"{error}; for heatmaps any module path of the network (such as a ResNet's 'layer4') also works") from None
                found = _CamLayer(item, module)
        if all(found.module is not c.module for c in chosen):
            chosen.append(found)
    return chosen


def _submodule(model: Model, path) -> nn.Module | None:
    if not isinstance(path, str) or not path:
        return None
    try:
        return model.module.get_submodule(path)
    except AttributeError:
        return None


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish)


def _default_layer(model: Model) -> _CamLayer:
    """The last conv layer whose output still has a spatial extent (H and W above 1),
    taken after its activation when one follows it in the same Sequential.

    Grad-CAM was defined on rectified feature maps (Caffe's in-place ReLU); the raw
    conv output of a well-trained network can be negative wherever the class has
    no evidence, which would leave a flat map after the final ReLU.
    """
    layers = model.layers
    spatial = [info for info in layers if info.output_shape is None or min(info.output_shape[1:]) > 1]
    info: LayerInfo = (spatial or layers)[-1]
    parent_path, _, child = info.path.rpartition(".")
    parent = model.module.get_submodule(parent_path) if parent_path else model.module
    if isinstance(parent, nn.Sequential):
        names = [name for name, _ in parent.named_children()]
        at = names.index(child)
        if at + 1 < len(names) and isinstance(parent[at + 1], _ACTIVATIONS):
            return _CamLayer(info.name, parent[at + 1])
    return _CamLayer(info.name, info.module)


def _inputs(model: Model, image) -> torch.Tensor:
    inputs = model.preprocess(image).detach()
    if inputs.is_inference():  # made inside inference_mode: a normal copy can be differentiated
        inputs = inputs.clone()
    return inputs


def _require_gradients(method: str) -> None:
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"cam(method={method!r}) differentiates the class score, but it was called inside torch.inference_mode(); "
            "call it outside that block (the model is left unchanged either way)"
        )
    if not torch.is_grad_enabled():
        raise RuntimeError(
            f"cam(method={method!r}) differentiates the class score, but it was called inside torch.no_grad() "
            "(or with gradients disabled); call it outside that block (the model is left unchanged either way)"
        )


@contextlib.contextmanager
def _explained_errors():
    try:
        yield
    except RuntimeError as error:
        if "Inference tensors cannot be saved for backward" in str(error):
            raise RuntimeError(
                "the model's parameters are inference tensors (it was created or loaded inside "
                "torch.inference_mode()), so no gradient can flow through it; load it outside that block"
            ) from error
        raise


def _top(probabilities: torch.Tensor, classes: list[str], k: int) -> list[Prediction]:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    values, indices = probabilities.topk(min(k, probabilities.shape[0]))
    return [Prediction(int(i), _class_name(classes, int(i)), float(v)) for v, i in zip(values, indices)]


def _class_name(classes: list[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else f"class {index}"


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", torch.float32)
