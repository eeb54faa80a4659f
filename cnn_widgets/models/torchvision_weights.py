"""torchvision weight enums: ``load_model("resnet50", weights=ResNet50_Weights.IMAGENET1K_V2)``.

The enum says everything: which architecture, where its file is (loaded by the
zoo's one weights loader, as data), the class names (``meta["categories"]``)
and the preprocessing (``transforms()``: crop size, mean and std).
"""
from __future__ import annotations

import sys
from typing import Any

from torch import nn

from . import zoo


def is_weights_enum(value: Any) -> bool:
    """Whether ``value`` is a torchvision weights enum member (``ResNet50_Weights.IMAGENET1K_V2``).

    Without importing torchvision (seconds of start-up, torch's compiler included): a member
    exists only once torchvision's models are imported, so until then nothing is one.

    >>> is_weights_enum("imagenet")
    False
    """
    models = sys.modules.get("torchvision.models")
    enum = getattr(models, "WeightsEnum", None)
    return enum is not None and isinstance(value, enum)


def architecture(weights) -> str:
    """The torchvision classification architecture those weights belong to.

    >>> from torchvision.models import ResNet50_Weights
    >>> architecture(ResNet50_Weights.IMAGENET1K_V2)
    'resnet50'
    """
    import torchvision.models as classification
    from torchvision.models import get_model_weights, list_models

    for name in list_models(module=classification):
        if get_model_weights(name) is type(weights):
            return name
    raise ValueError(
        f"{type(weights).__name__}.{weights.name} are not weights of a torchvision image classifier "
        "(detection and segmentation models are not supported)"
    )


def build(source: Any, weights) -> tuple[str, nn.Module, dict]:
    """(name, module with the enum's weights, input info) for ``load_model(source, weights=enum)``.

    ``source`` is the architecture's name (it must match the enum) or the enum itself.
    """
    name = architecture(weights)
    if not is_weights_enum(source) and source is not None and str(source).strip().lower().replace("-", "_") != name:
        raise ValueError(f"weights={type(weights).__name__}.{weights.name} belong to {name}, not to {source!r}; "
                         f"use load_model({name!r}, weights=...) or load_model({type(weights).__name__}.{weights.name})")
    module = zoo.build_torchvision(name)
    zoo.apply_state_dict(module, zoo.imagenet_state_dict(name, weights=weights), f"{type(weights).__name__}.{weights.name}")
    return name, module, info(weights)


def info(weights) -> dict:
    """Input size, mean, std and class names from a weights enum's transforms and meta.

    >>> from torchvision.models import ResNet50_Weights
    >>> details = info(ResNet50_Weights.IMAGENET1K_V2)
    >>> details["input_size"], details["classes"][0]
    ((3, 224, 224), 'tench')
    """
    transforms = weights.transforms()
    crop = list(getattr(transforms, "crop_size", None) or [224])
    height, width = (crop[0], crop[0]) if len(crop) == 1 else (crop[0], crop[1])
    mean = tuple(getattr(transforms, "mean", None) or zoo.IMAGENET_MEAN)
    std = tuple(getattr(transforms, "std", None) or zoo.IMAGENET_STD)
    categories = weights.meta.get("categories")
    return {"input_size": (len(mean), int(height), int(width)), "mean": mean, "std": std,
            "classes": list(categories) if categories else None}
