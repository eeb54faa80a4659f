"""Named quality settings for activation maximization, shared by the widget and the command line.

>>> from cnn_widgets.engine.optvis import QUALITY_PRESETS
>>> QUALITY_PRESETS["basic"]
{'param': 'pixel', 'transforms': 'none'}
"""

QUALITY_PRESETS = {
    "high": {"param": "fourier", "transforms": "standard"},  # Olah et al. 2017: 1/f Fourier, robust transforms
    "basic": {"param": "pixel", "transforms": "none"},  # the seeds' method: plain pixels, gradient ascent
}
