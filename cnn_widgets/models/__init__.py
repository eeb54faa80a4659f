"""What a network is: the model zoo, layer discovery and names, shipped weights,
and the guarantee that a user's model comes back unchanged."""
from .device import best_device, resolve_device
from .handle import Model, as_model, load_model
from .layers import LayerInfo, LayerOutput
from .lesson import LessonModel, lesson_model
from .state import preserved
from .zoo import MODEL_NAMES, TORCHVISION_MODELS, WeightsUnavailableError, weights_cache_file

__all__ = [
    "MODEL_NAMES",
    "TORCHVISION_MODELS",
    "LayerInfo",
    "LayerOutput",
    "LessonModel",
    "Model",
    "as_model",
    "WeightsUnavailableError",
    "best_device",
    "lesson_model",
    "load_model",
    "preserved",
    "resolve_device",
    "weights_cache_file",
]
