"""cnn-widgets: Jupyter widgets that show what a convolutional neural network has learned.

>>> import cnn_widgets as cw
>>> model = cw.load_model("fashion-cnn")
>>> model.layers[0].name
'block1_conv1'
"""
from .export import export_notebook_html, save_html
from .images import SAMPLE_NAMES, load_image, sample_image
from .models import MODEL_NAMES, LayerInfo, Model, WeightsUnavailableError, best_device, lesson_model, load_model

__version__ = "0.1.0"

# The widgets (and with them anywidget, ipywidgets and IPython) load on first use (PEP 562),
# so `import cnn_widgets.engine` and the command line never import a browser's toolkit.
_WIDGETS = (
    "ActivationMaximization",
    "ConvolutionExplainer",
    "DatasetExamples",
    "DeepDream",
    "Explorer",
    "FeatureMaps",
    "FilterWeights",
    "GradCAM",
    "TrainingMonitor",
)


def __getattr__(name: str):
    if name in _WIDGETS:
        from . import widgets

        value = getattr(widgets, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnn_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WIDGETS))


__all__ = [
    *_WIDGETS,
    "MODEL_NAMES",
    "SAMPLE_NAMES",
    "LayerInfo",
    "Model",
    "WeightsUnavailableError",
    "best_device",
    "export_notebook_html",
    "lesson_model",
    "load_image",
    "load_model",
    "sample_image",
    "save_html",
]
