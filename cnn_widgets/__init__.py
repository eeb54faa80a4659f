"""cnn-widgets: Jupyter widgets that show what a convolutional neural network has learned.

>>> import cnn_widgets as cw
>>> model = cw.load_model("fashion-cnn")
>>> model.layers[0].name
'block1_conv1'
"""
from .export import export_notebook_html, save_html
from .images import SAMPLE_NAMES, load_image, sample_image
from .models import MODEL_NAMES, LayerInfo, Model, WeightsUnavailableError, best_device, load_model
from .widgets import ActivationMaximization, ConvolutionExplainer, DatasetExamples, DeepDream, Explorer, FeatureMaps, FilterWeights, GradCAM, TrainingMonitor

__version__ = "0.1.0"

__all__ = [
    "ActivationMaximization",
    "ConvolutionExplainer",
    "DatasetExamples",
    "DeepDream",
    "Explorer",
    "FeatureMaps",
    "FilterWeights",
    "GradCAM",
    "MODEL_NAMES",
    "SAMPLE_NAMES",
    "TrainingMonitor",
    "LayerInfo",
    "Model",
    "WeightsUnavailableError",
    "best_device",
    "export_notebook_html",
    "load_image",
    "load_model",
    "sample_image",
    "save_html",
]
