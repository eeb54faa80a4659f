"""Hugging Face ``transformers`` image classifiers (an optional extra:
``pip install cnn-widgets[transformers]``).

Pass the module itself to ``load_model`` (``ResNetForImageClassification``,
``ConvNextForImageClassification``, ``EfficientNetForImageClassification``,
``RegNetForImageClassification``, ``MobileNetV2ForImageClassification``, ...):
its ``ModelOutput``'s ``logits`` are the class scores, class names come from
``config.id2label``, and the input size, mean and std from its image
processor's configuration: the one saved with the model when it is in the
local cache, else the defaults of that model type's image processor (nothing
is downloaded).
"""
from __future__ import annotations

import sys
from typing import Any

from torch import nn


def require_transformers():
    """The transformers package, or an ImportError that says how to install it."""
    try:
        import transformers
    except ImportError as error:
        raise ImportError(
            "Hugging Face models need the transformers package: pip install 'cnn-widgets[transformers]' "
            "(or pip install transformers)"
        ) from error
    return transformers


def is_hf_module(module: nn.Module) -> bool:
    """Whether ``module`` is a ``transformers`` model (a ``PreTrainedModel`` with a ``config``)."""
    transformers = sys.modules.get("transformers")  # never imported here: a module of it exists only if it is
    return transformers is not None and isinstance(module, transformers.PreTrainedModel) and hasattr(module.config, "id2label")


def model_info(module: nn.Module) -> dict:
    """Input size, mean, std and class names of a ``transformers`` image classifier.

    >>> from transformers import ResNetConfig, ResNetForImageClassification
    >>> config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], id2label={0: "cat", 1: "dog"})
    >>> info = model_info(ResNetForImageClassification(config))
    >>> info["classes"], info["input_size"]
    (['cat', 'dog'], (3, 384, 384))
    """
    config = module.config
    processor = image_processor(config)
    channels = int(getattr(config, "num_channels", 3))
    mean = _per_channel(getattr(processor, "image_mean", None) or (0.5,), channels)
    std = _per_channel(getattr(processor, "image_std", None) or (0.5,), channels)
    labels = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    classes = [labels.get(i, f"class {i}") for i in range(len(labels))] if labels else None
    return {"input_size": (channels, *_input_hw(processor)), "mean": mean, "std": std, "classes": classes}


def image_processor(config) -> Any:
    """The image processor of a model's config: the saved one if it is in the local
    cache (``config._name_or_path``), otherwise the defaults of its model type."""
    transformers = require_transformers()
    source = getattr(config, "_name_or_path", "") or ""
    if source:
        try:
            return transformers.AutoImageProcessor.from_pretrained(source, local_files_only=True)
        except Exception:  # not saved with the model, or not cached: the model type's defaults
            pass
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

    names = IMAGE_PROCESSOR_MAPPING_NAMES.get(config.model_type)
    if isinstance(names, dict):
        names = names.get("pil") or next(iter(names.values()), None)
    elif isinstance(names, (tuple, list)):
        names = next((n for n in names if n), None)
    processor_class = getattr(transformers, names, None) if names else None
    if processor_class is None:
        return None
    try:
        return processor_class()
    except Exception:  # a processor that cannot be built without files: ImageNet-style defaults
        return None


def _input_hw(processor) -> tuple[int, int]:
    """(height, width) the model sees: the crop when the processor crops, else the resize target."""
    if processor is None:
        return (224, 224)
    for attribute in ("crop_size", "size"):
        if attribute == "crop_size" and not getattr(processor, "do_center_crop", False):
            continue
        size = _as_dict(getattr(processor, attribute, None))
        if size.get("height") and size.get("width"):
            return int(size["height"]), int(size["width"])
        if size.get("shortest_edge"):
            return int(size["shortest_edge"]), int(size["shortest_edge"])
    return (224, 224)


def _as_dict(size) -> dict:
    if size is None:
        return {}
    if isinstance(size, int):
        return {"height": size, "width": size}
    if isinstance(size, dict):
        return size
    return {key: getattr(size, key, None) for key in ("height", "width", "shortest_edge")}


def _per_channel(values, channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in (values if isinstance(values, (list, tuple)) else [values]))
    if len(values) == channels:
        return values
    return (sum(values) / len(values),) * channels
