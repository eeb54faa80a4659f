"""The model handle every feature takes: a module plus what it takes to feed it
(input size, normalization, class names), its conv layers and its device."""
from __future__ import annotations

import copy
import itertools
import os
import weakref
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import zoo
from .device import resolve_device
from .fashion_cnn import fashion_cnn
from .fashion_cnn import CLASSES as FASHION_CLASSES, INPUT_SIZE as FASHION_INPUT, MEAN as FASHION_MEAN, STD as FASHION_STD
from .layers import LayerInfo, check_filters, discover_layers, resolve_layer
from .state import model_device, preserved

_WEIGHT_CHOICES = "'imagenet', 'none' (random initialization) or a path to a state_dict file"


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
    ) -> None:
        if len(input_size) != 3:
            raise ValueError(f"input_size must be (channels, height, width), got {tuple(input_size)}")
        channels = int(input_size[0])
        if len(mean) == 1 and channels > 1:
            mean = tuple(mean) * channels
        if len(std) == 1 and channels > 1:
            std = tuple(std) * channels
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need one value per input channel ({channels}), got {len(mean)} and {len(std)}")
        self.module = module
        self.name = name
        self.input_size = tuple(int(s) for s in input_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._classes = list(classes) if classes is not None else None
        self.device = device
        self.weights = weights
        self._layers: list[LayerInfo] | None = None
        self._num_outputs: int | None = None

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
            raise ValueError(f"model {self.name} has no Conv2d layers, so there is nothing to visualize")
        shapes: dict[str, tuple[int, int, int]] = {}
        handles = []
        with preserved(self.module, self.device):
            for path, sub in self.module.named_modules():
                if isinstance(sub, nn.Conv2d):
                    def record(_mod, _inp, out, path=path):
                        shapes.setdefault(path, tuple(out.shape[1:]))
                    handles.append(sub.register_forward_hook(record))
            try:
                with torch.no_grad():
                    output = self.module(torch.zeros(1, *self.input_size, device=self.device))
                if isinstance(output, torch.Tensor) and output.dim() == 2:
                    self._num_outputs = output.shape[1]
            except Exception as error:
                raise ValueError(
                    f"a dry run of {self.name} on an input of size {self.input_size} failed ({error}); "
                    "pass the right input_size=(channels, height, width) to load_model"
                ) from error
            finally:
                for handle in handles:
                    handle.remove()
        # Convs that did not run (GoogLeNet's auxiliary heads in eval mode) are not part of inference.
        return discover_layers(self.module, shapes)

    def layer(self, layer: str | int | LayerInfo | nn.Module | None = None) -> LayerInfo:
        """Resolve a Keras-style name, module path, index or module to a :class:`LayerInfo`."""
        return resolve_layer(self.layers, layer)

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
                    f"an input tensor must be (N, {self.input_size[0]}, H, W) or ({self.input_size[0]}, H, W), got {tuple(image.shape)}"
                )
            return tensor.to(self.device, torch.float32)
        from ..images import load_image, to_tensor

        picture = load_image(image, mode="L" if self.input_size[0] == 1 else "RGB")
        height, width = size or self.input_size[1:]
        pixels = to_tensor(picture, (height, width)).to(self.device)
        return self.normalize(pixels.unsqueeze(0))

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

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, weights={self.weights!r}, input_size={self.input_size}, "
            f"device={self.device.type!r}, conv layers={len(self.layers)})"
        )

    def summary(self) -> str:
        """One line per conv layer: name, path, channels, kernel, output size."""
        return "\n".join(layer.describe() for layer in self.layers)


def load_model(
    source: "str | os.PathLike | nn.Module | Model" = "fashion-cnn",
    *,
    weights: "str | os.PathLike | None" = "default",
    device: "str | torch.device | None" = None,
    input_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    classes: Sequence[str] | None = None,
) -> Model:
    """Load a model by name (see ``cnn_widgets.MODEL_NAMES``) or wrap your own ``nn.Module``.

    ``weights``: for zoo names ``"imagenet"`` (the default: torchvision's cache, or a
    download), ``None``/``"none"`` for random initialization, or a path to a
    state_dict file. ``device``: ``"auto"``/``None`` picks CUDA, then MPS, then CPU
    (for your own module: where its parameters already are).

    >>> import cnn_widgets as cw
    >>> cw.load_model("fashion-cnn").classes[:2]
    ['T-shirt/top', 'Trouser']
    >>> cw.load_model("resnet18", weights=None).layers[0].name
    'conv1'
    """
    if isinstance(source, Model):
        return source
    if isinstance(source, nn.Module):
        return _wrap_module(source, weights, device, input_size, mean, std, classes)
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
        return _wrap_module(module, weights, device, input_size, mean, std, classes, name=path.name)
    if not isinstance(source, str):
        raise TypeError(f"load_model takes a model name, a path or an nn.Module, not {type(source).__name__}")
    name = zoo.canonical_name(source)
    resolved = resolve_device(device)
    if name == "fashion-cnn":
        module, weights_label = _fashion(weights)
        info = dict(input_size=FASHION_INPUT, mean=FASHION_MEAN, std=FASHION_STD, classes=list(FASHION_CLASSES))
    else:
        module = zoo.build_torchvision(name)
        weights_label = _zoo_weights(module, name, weights)
        info = dict(input_size=(3, 224, 224), mean=zoo.IMAGENET_MEAN, std=zoo.IMAGENET_STD, classes=zoo.imagenet_classes(name))
    module.eval().to(resolved)
    for param in module.parameters():
        param.requires_grad_(False)
    if input_size is not None:
        info["input_size"] = input_size
    if mean is not None:
        info["mean"] = mean
    if std is not None:
        info["std"] = std
    if classes is not None:
        info["classes"] = classes
    return Model(module, name=name, device=resolved, weights=weights_label, **info)


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


def _wrap_module(module, weights, device, input_size, mean, std, classes, name=None) -> Model:
    if weights not in (None, "default") and not _is_none(weights):
        zoo.apply_state_dict(module, zoo.load_state_dict_file(weights), str(weights))
    resolved = model_device(module) if device is None or device == "auto" else resolve_device(device)
    if input_size is None:
        first = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ValueError(f"model {name or type(module).__name__} has no Conv2d layers, so there is nothing to visualize")
        input_size = (first.in_channels, 224, 224)
    channels = int(input_size[0])
    return Model(
        module,
        name=name or type(module).__name__,
        input_size=input_size,
        mean=mean if mean is not None else (0.0,) * channels,
        std=std if std is not None else (1.0,) * channels,
        classes=classes,
        device=resolved,
        weights="user" if weights in (None, "default") else str(weights),
    )


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
