"""The public functions: :func:`cam`, :func:`cam_result` and :func:`predict`."""
from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass, fields
from typing import Callable, NamedTuple, Sequence

import torch

from ..._choices import check_int
from ...models import Model, as_model, preserved
from ...models.layers import LayerOutput
from .core import CamOptions, Explanation, Request, Steps
from .registry import METHODS, get_method

Target = "int | str | Sequence[int | str] | Callable[[torch.Tensor], torch.Tensor] | None"
_OPTIONS = tuple(f.name for f in fields(CamOptions))


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
    input methods): passing them back as ``layer`` gives the same map.
    ``flat`` is True when the map is zero everywhere, and ``warning`` then says why.
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

    @property
    def flat(self) -> bool:
        return not bool(self.map.max() > 0)

    @property
    def warning(self) -> str | None:
        """None, or a sentence saying the map is zero everywhere and what that means.

        >>> import cnn_widgets as cw
        >>> from cnn_widgets import engine
        >>> model = cw.load_model("fashion-cnn")
        >>> engine.cam_result(model, cw.sample_image("sneaker"), target="Sneaker").warning is None
        True
        """
        if not self.flat:
            return None
        explained = self.class_name or "the target"
        label = METHODS[self.method].label if self.method in METHODS else self.method
        if self.layers:
            return (f"the {label} map for {explained} is zero everywhere: nothing at layer {', '.join(self.layers)} "
                    "raises its score (try another layer, Layer-CAM or Grad-CAM++)")
        return f"the {label} map for {explained} is zero everywhere: the score does not depend on these pixels"


# -- public functions ----------------------------------------------------------------------------


def cam(model, image, method: str = "gradcam", layer=None, target: Target = None, *, raw: bool = False, **options) -> torch.Tensor:
    """The class activation map or saliency map of ``image``, at the input's height and width.

    Returns a CPU float32 tensor (H, W), or (N, H, W) for a batch (N, C, H, W).
    The map is not normalized, so magnitudes compare across classes and images;
    scale it for display with :func:`cnn_widgets.render.normalize`.

    - ``method``: a name of :data:`METHODS` (each with its label and paper):
      ``"gradcam"``, ``"gradcam++"``, ``"layercam"``, ``"hirescam"``,
      ``"xgradcam"`` weight a layer's channels by gradients; ``"scorecam"`` (one
      forward pass per channel, so slow on deep layers) by the class logit of the
      input masked by each channel, softmaxed over channels as in its paper;
      ``"eigencam"`` projects the layer on its first principal component (the
      same map for every class); ``"saliency"`` (the vanilla gradient),
      ``"smoothgrad"`` (a noise tunnel over saliency) and ``"guided_backprop"``
      explain pixels and show, per pixel, the largest absolute value over the
      input channels; ``"guided_gradcam"`` is guided backpropagation times the
      Grad-CAM map.
    - ``layer``: a conv layer by name, module path, index or module, meaning the
      output of the activation that follows it (``"block3_conv2"`` is what its
      ReLU passes on); ``"block3_conv2:raw"`` is the conv's own output; any other
      module of the network whose output is (N, C, H, W) also works, as the module
      or its path (a ResNet's ``"layer4"``). Default: the output of the network's
      last spatial stage (``model.last_stage``: ``layer4`` of a ResNet, the ReLU
      after VGG's last conv); :func:`cam_result` reports the name, which gives the
      same map back. A list fuses several layers: the mean of their maps, each
      scaled to [0, 1] first. Checked, but not used, by the pure input methods.
    - ``target``: ``None`` for the top-1 prediction, a class index, a class name
      from ``model.classes``, a list with one of those per image of a batch, or
      a callable that takes the logits (N, classes) and returns one score per
      image, explained instead of the logit.
    - ``raw=True`` returns the signed map: before the final ReLU for the layer
      methods, the gradient summed over input channels for the input methods.
    - options: ``samples`` (25) noisy copies of SmoothGrad, with noise of
      ``noise`` (0.15) times the image's range, drawn from ``seed`` (0) for each
      image alone; ``batch_size`` passes at a time for Score-CAM and
      SmoothGrad (default: 32 on a GPU; on the CPU 32 for small inputs, fewer
      for large ones, 4 at 224x224, so that Stop is quick); ``progress(done, total)``, called after each batch of those
      passes; ``cancel`` (a ``threading.Event`` or a callable returning True),
      checked after each batch and during the network's passes, which stops the
      computation with :class:`Cancelled`.

    Gradients are needed: inside ``torch.no_grad()`` it enables them itself (the
    same map as outside), and inside ``torch.inference_mode()``, where nothing
    can enable them, it raises a ``RuntimeError`` (Score-CAM and Eigen-CAM,
    which only run forward passes, work there too). An image's map
    does not depend on the other images of its batch. The model comes back unchanged.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> heatmap = engine.cam(model, cw.sample_image("sneaker"), target="Sneaker")
    >>> heatmap.shape, bool(heatmap.min() >= 0)
    (torch.Size([28, 28]), True)
    >>> engine.cam(model, torch.randn(2, 1, 28, 28), "saliency", target=[0, "Bag"]).shape
    torch.Size([2, 28, 28])
    """
    if not isinstance(raw, bool):
        raise TypeError(f"raw must be True (the signed map) or False (the map shown), got {raw!r}")
    outcome = _explain(model, image, method, layer, target, options)
    maps = _cpu(outcome.explanation.raw if raw else outcome.explanation.map)
    return maps[0] if outcome.single else maps


def cam_result(model, image, method: str = "gradcam", layer=None, target: Target = None, *, k: int = 5, **options) -> "CamResult | list[CamResult]":
    """Like :func:`cam` (same arguments and options), with what a heatmap view shows next to
    the map: a :class:`CamResult` (signed map, explained class, its probability, logits,
    top-``k`` predictions, the layers' names, whether the map is flat).

    A batch input gives a list with one result per image.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> result = engine.cam_result(model, cw.sample_image("bag"), target="Bag", k=3)
    >>> result.class_index, result.class_name, result.map.shape, len(result.top), result.layers
    (8, 'Bag', torch.Size([28, 28]), 3, ('block3_conv2',))
    """
    model = as_model(model)
    check_int("k", k, low=1)
    outcome = _explain(model, image, method, layer, target, options)
    found = outcome.explanation
    maps, raws, logits, scores = _cpu(found.map), _cpu(found.raw), _cpu(found.logits), _cpu(found.scores)
    attribution = None if found.attribution is None else _cpu(found.attribution)
    probabilities = logits.softmax(dim=1)
    classes = model.classes
    results = []
    for i in range(maps.shape[0]):
        index = found.indices[i]
        results.append(
            CamResult(
                map=maps[i],
                raw=raws[i],
                method=outcome.method,
                layers=outcome.layer_names,
                class_index=index,
                class_name=None if index is None else _class_name(classes, index),
                probability=None if index is None else float(probabilities[i, index]),
                score=float(scores[i]),
                logits=logits[i],
                top=_top(probabilities[i], classes, k),
                attribution=None if attribution is None else attribution[i],
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
    explanation: Explanation
    method: str
    layer_names: tuple[str, ...]
    single: bool


def _explain(model, image, method, layer, target, options: dict) -> _Outcome:
    model = as_model(model)
    chosen = get_method(method)
    settings = _options(options)
    if chosen.needs_gradients:
        _require_gradients(method)
    # A layer is checked even where the method ignores it, so a typo never passes silently.
    layers = resolve_layers(model, layer) if chosen.uses_layer or layer is not None else []
    single = not (isinstance(image, torch.Tensor) and image.dim() == 4)
    inputs = _inputs(model, image)
    steps = Steps(settings.progress, settings.cancel)
    steps.check()
    request = Request(model, inputs, layers if chosen.uses_layer else [], target, settings, steps)
    # Gradients are the method: enabled here even inside the caller's torch.no_grad().
    with preserved(model.module, model.device), _explained_errors(), torch.enable_grad():
        explanation = chosen.explain(request)
    names = tuple(item.name for item in layers) if chosen.uses_layer else ()
    return _Outcome(explanation, chosen.name, names, single)


def _options(options: dict) -> CamOptions:
    unknown = [name for name in options if name not in _OPTIONS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], _OPTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise TypeError(f"unknown option {unknown[0]!r}{hint} valid options: {', '.join(_OPTIONS)}")
    return CamOptions(**options)


def resolve_layers(model: Model, layer) -> list[LayerOutput]:
    """The layer outputs ``layer`` means (see :func:`cam`), without repeats."""
    if layer is None:
        return [model.last_stage]
    items = list(layer) if isinstance(layer, (list, tuple)) else [layer]
    if not items:
        raise ValueError("layer is an empty list; give one layer or several to fuse")
    chosen: list[LayerOutput] = []
    for item in items:
        found = model.layer_output(item)
        if all((found.module, found.call) != (c.module, c.call) for c in chosen):
            chosen.append(found)
    return chosen


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
    check_int("k", k, low=1)
    values, indices = probabilities.topk(min(k, probabilities.shape[0]))
    return [Prediction(int(i), _class_name(classes, int(i)), float(v)) for v, i in zip(values, indices)]


def _class_name(classes: list[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else f"class {index}"


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", torch.float32)
