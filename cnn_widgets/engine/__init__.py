"""The headless engine: plain functions on tensors that compute everything the
widgets show. Nothing here knows that a browser exists.

>>> import cnn_widgets as cw
>>> from cnn_widgets import engine
>>> engine.filter_weights(cw.load_model("fashion-cnn"), "block1_conv1").shape
torch.Size([32, 1, 3, 3])
"""
from .activations import channel_stats, clear_cache, feature_maps, sort_channels
from .cam import (
    CAM_METHODS,
    METHODS,
    CamResult,
    Cancelled,
    Faithfulness,
    Prediction,
    SanityCheck,
    cam,
    cam_result,
    faithfulness,
    predict,
    randomizable_modules,
    sanity_check,
)
from .convolution import CUSTOM_KERNEL_RULE, ConvolutionStep, convolution_at, layer_input
from .examples import DatasetExamples, dataset_examples
from .optvis import dream, maximize, objectives
from .receptive_field import ReceptiveField, receptive_fields
from .training import ModelCopy, TrainingSnapshot, copy_weights
from .weights import filter_weights

__all__ = [
    "CAM_METHODS",
    "METHODS",
    "Cancelled",
    "CUSTOM_KERNEL_RULE",
    "CamResult",
    "ConvolutionStep",
    "ModelCopy",
    "ReceptiveField",
    "TrainingSnapshot",
    "DatasetExamples",
    "Faithfulness",
    "Prediction",
    "SanityCheck",
    "cam",
    "cam_result",
    "channel_stats",
    "clear_cache",
    "convolution_at",
    "copy_weights",
    "dataset_examples",
    "dream",
    "faithfulness",
    "feature_maps",
    "filter_weights",
    "layer_input",
    "maximize",
    "objectives",
    "predict",
    "randomizable_modules",
    "receptive_fields",
    "sanity_check",
    "sort_channels",
]
