"""anywidget classes: traits, threads and messages; the pictures come from render/ and engine/."""
from .convolution import ConvolutionExplainer
from .deepdream import DeepDream
from .examples import DatasetExamples
from .unit import UnitView
from .explorer import Explorer
from .feature_maps import FeatureMaps
from .filter_weights import FilterWeights
from .gradcam import GradCAM
from .maximization import ActivationMaximization
from .monitor import TrainingMonitor

__all__ = ["ActivationMaximization", "ConvolutionExplainer", "DatasetExamples", "DeepDream", "Explorer", "FeatureMaps", "FilterWeights", "GradCAM", "TrainingMonitor", "UnitView"]
