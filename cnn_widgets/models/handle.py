"""The model handle every feature takes: a module plus what it takes to feed it
(input size, normalization, class names), its conv layers and its device."""
from __future__ import annotations

import contextlib
import copy
import itertools
import os
import weakref
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import hf_models, timm_models, torchvision_weights, zoo
from .device import resolve_device
from .fashion_cnn import fashion_cnn
from .fashion_cnn import CLASSES as FASHION_CLASSES, INPUT_SIZE as FASHION_INPUT, MEAN as FASHION_MEAN, STD as FASHION_STD
from .layers import LayerInfo, LayerOutput, check_filters, discover_layers, dry_run, resolve_layer, resolve_output
from .outputs import AmbiguousOutputError, OutputSelector, check_selector, class_scores
from .state import model_device, preserved
from .._choices import check_int, check_real

# The largest input a model handle takes: beyond these a typo (100000 for 1000) would
# allocate tens of gigabytes in the dry run.
MAX_SIDE = 8192
MAX_CHANNELS = 1024


class ClassCountError(ValueError):
    """``classes`` names more or fewer classes than the model has outputs."""


def _is_sequence(value) -> bool:
    """A list, tuple, array or tensor of numbers (not a text)."""
    return not isinstance(value, (str, bytes)) and hasattr(value, "__len__") and hasattr(value, "__getitem__")


def _item(value):
    """A NumPy or torch scalar as a Python number (checked as one)."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value

_WEIGHT_CHOICES = "'imagenet', 'none' (random initialization), a path to a state_dict file or a torchvision weights enum"


class Model:
    """A CNN ready to be looked inside. Make one with :func:`load_model`.

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> [layer.name for layer in model.layers][:2]
    ['block1_conv1', 'block1_conv2']
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str,
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        classes: Sequence[str] | None,
        device: torch.device,
        weights: str,
        output: OutputSelector = None,
    ) -> None:
        if not _is_sequence(input_size) or len(input_size) != 3:
            raise ValueError(f"input_size must be (channels, height, width), got {input_size!r}")
        input_size = tuple(check_int(f"input_size {part}", _item(value), low=1, high=high)
                           for part, value, high in zip(("channels", "height", "width"), input_size, (MAX_CHANNELS, MAX_SIDE, MAX_SIDE)))
        channels = input_size[0]
        for what, values in (("mean", mean), ("std", std)):
            if not _is_sequence(values):
                raise TypeError(f"{what} must be one number per input channel ({channels}) or one for all, got {values!r}")
        if len(mean) == 1 and channels > 1:
            mean = tuple(mean) * channels
        if len(std) == 1 and channels > 1:
            std = tuple(std) * channels
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need one value per input channel ({channels}), got {len(mean)} and {len(std)}")
        if classes is not None and (not _is_sequence(classes) or not all(isinstance(c, str) for c in classes)):
            raise TypeError(f"classes must be a list of class names (str), one per output, got {classes!r:.80}")
        self.module = module
        self.name = name
        self.input_size = input_size
        self.mean = tuple(check_real("mean", _item(m)) for m in mean)
        self.std = tuple(check_real("std", _item(s), low=0, low_open=True) for s in std)
        self._classes = list(classes) if classes is not None else None
        self.device = device
        self.weights = weights
        self.output = check_selector(output)
        self._layers: list[LayerInfo] | None = None
        self._num_outputs: int | None = None
        self._output_error: AmbiguousOutputError | None = None
        self._last_stage: tuple[str, int] | None = None
        self._output_shapes: dict[str, tuple[int, ...]] = {}

    # -- layers -----------------------------------------------------------------
    @property
    def layers(self) -> list[LayerInfo]:
        """Every Conv2d of the network, with names, channels, kernel and output shape."""
        if self._layers is None:
            self._layers = self._discover()
        return self._layers

    def _discover(self) -> list[LayerInfo]:
        convs = [path for path, m in self.module.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError(f"model {self.name} has no Conv2d layers, so there is nothing to visualize; pass a model with at least one nn.Conv2d")
        with preserved(self.module, self.device):
            try:
                # In the model's dtype, as run() gives it (float16/bfloat16 models).
                run = dry_run(self.module, torch.zeros(1, *self.input_size, device=self.device, dtype=self.dtype))
            except Exception as error:
                raise ValueError(
                    f"a dry run of {self.name} on an input of size {self.input_size} failed ({error}); "
                    "pass the right input_size=(channels, height, width) to load_model"
                ) from error
        self._learn_outputs(run.output)
        self._last_stage = run.last_stage
        # Convs that did not run (GoogLeNet's auxiliary heads in eval mode) are not part of inference.
        return discover_layers(self.module, run.shapes, run.activations, run.reads_input)

    def _learn_outputs(self, output) -> None:
        """The number of classes, from the dry run's output; an ambiguous output is reported
        when class scores are first needed (layers and feature maps work without them)."""
        try:
            self._num_outputs = class_scores(output, self.output, self.name).shape[1]
            if self._classes is not None and len(self._classes) != self._num_outputs:
                raise ClassCountError(
                    f"classes has {len(self._classes)} names but {self.name} outputs {self._num_outputs} class scores; "
                    f"pass one name per output (or output= to pick the scores)"
                )
        except AmbiguousOutputError as error:
            self._output_error = error
        except ClassCountError:
            raise
        except ValueError:
            if self.output is not None:
                raise  # a selector that does not fit the output: say so now
            # A model without class scores (a feature extractor): CAM explains nothing here.

    # -- running ----------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """The dtype the network computes in: that of its first floating-point parameter
        (float16 and bfloat16 models get their inputs in that dtype)."""
        for tensor in self.module.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32

    def run(self, inputs: torch.Tensor):
        """The network's raw output for normalized ``inputs`` (N, C, H, W), given in its dtype.

        >>> import cnn_widgets as cw
        >>> model = cw.load_model("fashion-cnn")
        >>> model.run(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
        """
        dtype = self.dtype
        return self.module(inputs if inputs.dtype == dtype else inputs.to(dtype))

    def class_scores(self, output) -> torch.Tensor:
        """The (N, classes) class scores in float32 from a raw output of :meth:`run`
        (chosen by ``output=`` of :func:`load_model`, or taken when unambiguous)."""
        return class_scores(output, self.output, self.name).float()

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The class scores (N, classes), float32, for normalized ``inputs``.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn").logits(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        """
        return self.class_scores(self.run(inputs))

    def layer(self, layer: str | int | LayerInfo | nn.Module | None = None) -> LayerInfo:
        """Resolve a Keras-style name, module path, index or module to a :class:`LayerInfo`."""
        return resolve_layer(self.layers, layer)

    def layer_output(self, layer) -> LayerOutput:
        """The tensor a layer name means (one rule for every feature): a conv layer's name
        means its output after the activation that follows it, ``name + ":raw"`` the conv's
        own output, and any other module path (``"layer4"``) that module's output.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn").layer_output("features.0").name
        'block1_conv1'
        """
        return resolve_output(self.module, self.layers, layer)

    def output_shape(self, path: str) -> tuple[int, ...]:
        """The shape of the output of the module at ``path`` for one input (batch dimension
        left out; ``()`` when it returns no tensor), from one forward pass on zeros, remembered.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn").output_shape("features.13")
        (128, 7, 7)
        """
        if path not in self._output_shapes:
            try:
                module = self.module.get_submodule(path) if isinstance(path, str) and path else None
            except AttributeError:
                module = None
            if module is None:
                raise ValueError(f"path must name a module of {self.name}, got {path!r}")
            shapes = []
            with preserved(self.module, self.device), torch.no_grad():
                handle = module.register_forward_hook(lambda _m, _i, output: shapes.append(tuple(getattr(output, "shape", ()))))
                try:
                    self.run(torch.zeros(1, *self.input_size, device=self.device))
                finally:
                    handle.remove()
            self._output_shapes[path] = shapes[0][1:] if shapes else ()
        return self._output_shapes[path]

    @property
    def last_stage(self) -> LayerOutput:
        """The output of the network's last spatial stage (where class heatmaps look by
        default), named so that passing its name back gives the same tensor: a ResNet's
        ``layer4``, the ReLU after VGG's last conv (named by that conv, ``block5_conv3``).

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn").last_stage.name, cw.load_model("resnet18", weights=None).last_stage.name
        ('block3_conv2', 'layer4')
        """
        layers = self.layers
        if self._last_stage is None:
            return layers[-1].output()
        path, call = self._last_stage
        for info in layers:
            if info.activation is not None and (info.activation.path, info.activation.call) == (path, call):
                return info.output()
            if info.path == path:
                return info.output(raw=True)
        return LayerOutput(path, path, call, self.module.get_submodule(path))

    def filters(self, layer, filters=None) -> list[int]:
        """Validated filter indices of ``layer`` (all of them for ``None``)."""
        return check_filters(self.layer(layer), filters)

    @property
    def layer_names(self) -> list[str]:
        return [info.name for info in self.layers]

    # -- classes ----------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Class names; ``class 0``, ``class 1``, ... when the model did not come with any."""
        if self._classes is None:
            if self._num_outputs is None:
                self.layers  # the dry run learns the number of outputs
            if self._output_error is not None:
                raise AmbiguousOutputError(*self._output_error.args)
            self._classes = [f"class {i}" for i in range(self._num_outputs or 0)]
        return self._classes

    # -- images -----------------------------------------------------------------
    def preprocess(self, image, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Image (anything :func:`cnn_widgets.load_image` takes) to a normalized (1, C, H, W) input.

        A tensor is taken as an already preprocessed input and only moved to the device.
        """
        if isinstance(image, torch.Tensor):
            tensor = image if image.dim() == 4 else image.unsqueeze(0)
            if tensor.dim() != 4 or tensor.shape[1] != self.input_size[0]:
                raise ValueError(
                    f"an image tensor (an input already preprocessed) must be (N, {self.input_size[0]}, H, W) or ({self.input_size[0]}, H, W), got {tuple(image.shape)}"
                )
            return tensor.to(self.device, torch.float32)
        return self.normalize(self.pixels(image, size or self.input_size[1:]))

    def pixels(self, image, size: tuple[int, int] | None = None) -> torch.Tensor:
        """A picture as (1, C, H, W) pixels in [0, 1] with this model's C channels (not normalized).

        One channel: its gray level; three: RGB. Other counts (multispectral,
        RGB plus depth, ...) get the picture's RGB in the first three channels and
        its gray level in the rest (two channels: gray twice). ``size``: (H, W),
        the picture's own size when None.

        >>> import cnn_widgets as cw
        >>> model = cw.load_model(torch.nn.Conv2d(4, 8, 3), input_size=(4, 16, 16))
        >>> model.pixels(cw.sample_image("cat"), (16, 16)).shape
        torch.Size([1, 4, 16, 16])
        """
        from ..images import load_image, to_tensor

        channels = self.input_size[0]
        if size is not None:
            if not _is_sequence(size) or len(size) != 2:
                raise ValueError(f"size must be (height, width), got {size!r}")
            size = tuple(check_int("size (height, width)", _item(side), low=1, high=MAX_SIDE) for side in size)
        picture = load_image(image, mode="L" if channels == 1 else "RGB")
        pixels = to_tensor(picture, None if size is None else tuple(size)).to(self.device).unsqueeze(0)
        return picture_channels(pixels, channels)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] (N, C, H, W) to the model's normalized input."""
        mean = torch.tensor(self.mean, device=pixels.device, dtype=pixels.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=pixels.device, dtype=pixels.dtype).view(1, -1, 1, 1)
        return (pixels - mean) / std

    def deprocess(self, tensor: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`normalize`, clamped to [0, 1]."""
        mean = torch.tensor(self.mean, device=tensor.device, dtype=tensor.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=tensor.device, dtype=tensor.dtype).view(1, -1, 1, 1)
        return (tensor * std + mean).clamp(0, 1)

    @property
    def trained(self) -> bool:
        """False for a model with randomly initialized weights (``weights=None``): its
        pictures and predictions mean nothing yet. A user's own module counts as trained.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn").trained, cw.load_model("fashion-cnn", weights=None).trained
        (True, False)
        """
        return self.weights != "none"

    @property
    def weights_note(self) -> str:
        """What every view says about the weights: "untrained (random weights)" for an
        untrained model, "" otherwise.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn", weights=None).weights_note
        'untrained (random weights)'
        """
        return "" if self.trained else "untrained (random weights)"

    @property
    def label(self) -> str:
        """The model's name for view titles, with the :attr:`weights_note` when there is one.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn", weights=None).label
        'fashion-cnn · untrained (random weights)'
        """
        return f"{self.name} · {self.weights_note}" if self.weights_note else self.name

    @property
    def expects(self) -> str:
        """What this model takes as input, in words: the picture's size and channels,
        what its training pictures looked like where the library knows (the shipped
        Fashion-MNIST model, ImageNet weights), and the normalization applied to it.

        >>> import cnn_widgets as cw
        >>> cw.load_model("fashion-cnn").expects
        'a 28x28 gray picture: a light garment centred on black, as in Fashion-MNIST · pixels 0-1, normalized as (x - 0.286) / 0.353'
        """
        channels, height, width = self.input_size
        kind = {1: "gray picture", 3: "RGB picture"}.get(channels, f"{channels}-channel picture")
        looks = {"fashion-cnn": "a light garment centred on black, as in Fashion-MNIST"}.get(self.name, "")
        if self.weights == "imagenet":
            looks = "a photo of one object or animal, as in ImageNet"
        picture = f"a {height}x{width} {kind}" + (f": {looks}" if looks else "")

        def numbers(values):
            text = ", ".join(f"{value:.3g}" for value in values)
            return text if len(values) == 1 else f"({text})"

        if all(m == 0 for m in self.mean) and all(s == 1 for s in self.std):
            return f"{picture} · pixels 0-1, not normalized"
        per_channel = "" if channels == 1 else " per channel"
        return f"{picture} · pixels 0-1, normalized{per_channel} as (x - {numbers(self.mean)}) / {numbers(self.std)}"

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, weights={self.weights!r}, input_size={self.input_size}, "
            f"device={self.device.type!r}, conv layers={len(self.layers)})"
        )

    def summary(self) -> str:
        """One line per conv layer: name, path, channels, kernel, output size."""
        return "\n".join(layer.describe() for layer in self.layers)


def picture_channels(pixels: torch.Tensor, channels: int) -> torch.Tensor:
    """RGB (or gray) pixels (N, 3 or 1, H, W) as ``channels`` channels: gray for one,
    gray twice for two, RGB for three, RGB then the gray level for more.

    >>> picture_channels(torch.ones(1, 3, 2, 2), 5).shape
    torch.Size([1, 5, 2, 2])
    """
    have = pixels.shape[1]
    if have == channels:
        return pixels
    if have == 1:
        gray = pixels
    elif have == 3:
        gray = (pixels * torch.tensor([0.299, 0.587, 0.114], device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    else:
        raise ValueError(f"pictures have 1 or 3 channels, these have {have}; the model takes {channels}")
    if channels < 3 or have == 1:
        return gray.expand(-1, channels, -1, -1).contiguous()
    return torch.cat([pixels, gray.expand(-1, channels - 3, -1, -1)], dim=1)


def load_model(
    source: "str | os.PathLike | nn.Module | Model" = "fashion-cnn",
    *,
    weights: "str | os.PathLike | None" = "default",
    device: "str | torch.device | None" = None,
    input_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    classes: Sequence[str] | None = None,
    output: OutputSelector = None,
    seed: int = 0,
) -> Model:
    """Load a model by name (see ``cnn_widgets.MODEL_NAMES``) or wrap your own ``nn.Module``.

    ``weights``: for zoo names ``"imagenet"`` (the default: torchvision's cache, or a
    download), ``None``/``"none"`` for random initialization, a path to a
    state_dict file, or a torchvision weights enum (``ResNet50_Weights.IMAGENET1K_V2``:
    its class names and preprocessing come along). ``device``: ``"auto"``/``None``
    picks CUDA, then MPS, then CPU (for your own module: where its parameters already are).
    ``seed``: the random initialization of a model built here (``weights=None``), so two
    calls give the same weights; the global random state is left as it was.

    ``"timm/<name>"`` builds a timm model (the ``timm`` extra), pretrained unless
    ``weights=None``; a timm or Hugging Face ``transformers`` classifier passed as a
    module brings its input size, normalization and class names. ``output``: which
    part of a forward pass that returns several things holds the class scores (an
    index, a key, or a callable taking the output); a tensor, ``.logits`` or the only
    (N, classes) tensor is taken without it.

    >>> import cnn_widgets as cw
    >>> cw.load_model("fashion-cnn").classes[:2]
    ['T-shirt/top', 'Trouser']
    >>> cw.load_model("resnet18", weights=None).layers[0].name
    'conv1'
    """
    if isinstance(source, Model):
        return source
    if not (weights is None or isinstance(weights, (str, os.PathLike)) or torchvision_weights.is_weights_enum(weights)):
        raise TypeError(f"weights must be 'default', {_WEIGHT_CHOICES}; got {type(weights).__name__}")
    overrides = dict(input_size=input_size, mean=mean, std=std, classes=classes)
    check_selector(output)
    if isinstance(source, nn.Module):
        return _wrap_module(source, weights, device, input_size, mean, std, classes, output=output)
    if timm_models.is_timm_name(source):
        with _seeded(seed):
            module, weights_label = timm_models.build(source, weights)
        return _zoo_model(module, source.strip(), device, weights_label, timm_models.model_info(module), overrides, output)
    if torchvision_weights.is_weights_enum(weights) or torchvision_weights.is_weights_enum(source):
        enum = weights if torchvision_weights.is_weights_enum(weights) else source
        name, module, info = torchvision_weights.build(source, enum)
        return _zoo_model(module, name, device, f"{type(enum).__name__}.{enum.name}", info, overrides, output)
    if isinstance(source, os.PathLike) or (isinstance(source, str) and (os.sep in source or source.endswith((".pt", ".pth", ".ts")))):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}; valid model names: {', '.join(zoo.MODEL_NAMES)}")
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:
            raise ValueError(
                f"{path} is not a TorchScript model. Save your model with torch.jit.script(model).save(path), "
                "or pass the nn.Module itself to load_model (with weights='file.pth' for a state_dict)"
            ) from error
        return _wrap_module(module, weights, device, input_size, mean, std, classes, name=path.name, output=output)
    if not isinstance(source, str):
        raise TypeError(f"load_model takes a model name, a path or an nn.Module, not {type(source).__name__}")
    name = zoo.canonical_name(source)
    resolved = resolve_device(device)
    if name == "fashion-cnn":
        with _seeded(seed):
            module, weights_label = _fashion(weights)
        info = dict(input_size=FASHION_INPUT, mean=FASHION_MEAN, std=FASHION_STD, classes=list(FASHION_CLASSES))
    else:
        with _seeded(seed):
            module = zoo.build_torchvision(name)
        weights_label = _zoo_weights(module, name, weights)
        info = dict(input_size=(3, 224, 224), mean=zoo.IMAGENET_MEAN, std=zoo.IMAGENET_STD, classes=zoo.imagenet_classes(name))
    return _zoo_model(module, name, resolved, weights_label, info, overrides, output)


@contextlib.contextmanager
def _seeded(seed: int):
    """Random initialization from ``seed``, without touching the caller's random state."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {type(seed).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _zoo_model(module: nn.Module, name: str, device, weights_label: str, info: dict, overrides: dict, output) -> Model:
    """A model the library built: in eval mode, frozen, on ``device``; given values override ``info``."""
    resolved = resolve_device(device)
    module.eval().to(resolved)
    for param in module.parameters():
        param.requires_grad_(False)
    info = {**info, **{key: value for key, value in overrides.items() if value is not None}}
    return Model(module, name=name, device=resolved, weights=weights_label, output=output, **info)


def _is_none(weights) -> bool:
    return weights is None or (isinstance(weights, str) and weights.lower() in ("none", "random"))


def _fashion(weights) -> tuple[nn.Module, str]:
    if isinstance(weights, str) and weights.lower() in ("default", "shipped", "fashion-mnist"):
        return fashion_cnn(pretrained=True), "shipped"
    if _is_none(weights):
        return fashion_cnn(pretrained=False), "none"
    if isinstance(weights, str) and weights.lower() == "imagenet":
        raise ValueError("fashion-cnn has no ImageNet weights; valid weights: 'shipped' (default), 'none' or a path to a state_dict file")
    module = fashion_cnn(pretrained=False)
    zoo.apply_state_dict(module, zoo.load_state_dict_file(weights), str(weights))
    return module, str(weights)


def _zoo_weights(module: nn.Module, name: str, weights) -> str:
    if isinstance(weights, str) and weights.lower() in ("default", "imagenet"):
        zoo.apply_state_dict(module, zoo.imagenet_state_dict(name), "ImageNet")
        return "imagenet"
    if _is_none(weights):
        return "none"
    if isinstance(weights, (str, os.PathLike)):
        zoo.apply_state_dict(module, zoo.load_state_dict_file(weights), str(weights))
        return str(weights)
    raise ValueError(f"unknown weights {weights!r}; valid choices: {_WEIGHT_CHOICES}")


def uncompiled(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper runs (itself for any other module): the views
    read layer outputs with hooks, which compiled graphs would have to be recompiled for,
    and the wrapper shares every parameter and buffer with it.

    >>> net = torch.nn.Conv2d(1, 1, 3)
    >>> uncompiled(torch.compile(net)) is net, uncompiled(net) is net
    (True, True)
    """
    original = getattr(module, "_orig_mod", None)
    return original if isinstance(original, nn.Module) and type(module).__name__ == "OptimizedModule" else module


def _wrap_module(module, weights, device, input_size, mean, std, classes, name=None, output=None) -> Model:
    module = uncompiled(module)
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError(
            f"{name or 'this model'} is a TorchScript model (torch.jit.script, torch.jit.trace or a file from torch.jit.save), "
            "which cnn-widgets cannot look inside: its layers are compiled, so their outputs cannot be read. Pass the "
            "original nn.Module instead (with weights='file.pth' for a state_dict saved with torch.save(model.state_dict(), ...))"
        )
    if weights not in (None, "default") and not _is_none(weights):
        zoo.apply_state_dict(module, zoo.load_state_dict_file(weights), str(weights))
    resolved = model_device(module) if device is None or device == "auto" else resolve_device(device)
    known = _module_info(module)
    input_size = input_size if input_size is not None else known.get("input_size")
    mean = mean if mean is not None else known.get("mean")
    std = std if std is not None else known.get("std")
    classes = classes if classes is not None else known.get("classes")
    if input_size is None:
        first = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ValueError(f"model {name or type(module).__name__} has no Conv2d layers, so there is nothing to visualize; pass a model with at least one nn.Conv2d")
        input_size = (first.in_channels, 224, 224)
    model = Model(
        module,
        name=name or type(module).__name__,
        input_size=input_size,
        mean=mean if mean is not None else (0.0,),  # one value: every channel
        std=std if std is not None else (1.0,),
        classes=classes,
        device=resolved,
        weights="user" if weights in (None, "default") else str(weights),
        output=output,
    )
    if classes is not None:
        model.layers  # the dry run: one name per class score is checked here, where classes were given
    return model


def _module_info(module: nn.Module) -> dict:
    """What a timm or Hugging Face module says about its inputs and classes ({} for others)."""
    if timm_models.is_timm_module(module):
        return timm_models.model_info(module)
    if hf_models.is_hf_module(module):
        return hf_models.model_info(module)
    return {}


# A bare module's Model, without the module: a value that held its key would keep
# the module alive for ever (WeakKeyDictionary values are strong references).
_wrapped: "weakref.WeakKeyDictionary[nn.Module, Model]" = weakref.WeakKeyDictionary()
_tokens: "weakref.WeakKeyDictionary[nn.Module, int]" = weakref.WeakKeyDictionary()
_next_token = itertools.count(1)


def module_token(module: nn.Module) -> int:
    """A number that names ``module`` for as long as it lives and is never given to
    another (unlike ``id``, which a new module may reuse): for cache keys.

    >>> from torch import nn
    >>> conv = nn.Conv2d(1, 1, 1)
    >>> module_token(conv) == module_token(conv) != module_token(nn.Conv2d(1, 1, 1))
    True
    """
    token = _tokens.get(module)
    if token is None:
        token = _tokens[module] = next(_next_token)
    return token


def as_model(model: "Model | nn.Module | str") -> Model:
    """The :class:`Model` for what a user passed: a Model, a zoo name or a bare nn.Module.

    Bare modules are wrapped once and remembered while they live (their layers are
    found once); a module the caller drops is freed.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    >>> as_model(net).layers is as_model(net).layers
    True
    """
    if isinstance(model, Model):
        return model
    if isinstance(model, nn.Module):
        model = uncompiled(model)
        remembered = _wrapped.get(model)
        if remembered is None:
            wrapped = load_model(model)
            wrapped.layers  # found once, shared by every later call
            remembered = _wrapped[model] = copy.copy(wrapped)
            remembered.module = None
            return wrapped
        wrapped = copy.copy(remembered)
        wrapped.module = model
        return wrapped
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise TypeError(f"expected a cnn_widgets Model, an nn.Module or a model name, not {type(model).__name__}")
