"""anywidget classes: traits, threads and messages; the pictures come from render/ and engine/."""
from .feature_maps import FeatureMaps
from .filter_weights import FilterWeights

__all__ = ["FeatureMaps", "FilterWeights"]
