"""Optimization-based visualization: activation maximization and DeepDream.

One idea per module, as in Lucent: ``param`` (how the image is parameterized),
``transform`` (random transforms for robustness), ``objectives`` (what is
maximized), ``streams`` (per-image randomness), ``forward`` (running the network
only as far as needed), ``render`` (the activation-maximization loop) and ``deepdream``.

>>> from cnn_widgets.engine.optvis import objectives, transform
>>> goal = objectives.channel("block1_conv1", [0, 1]) - 10 * objectives.diversity("block1_conv1")
>>> transform.compose(transform.standard_transforms((64, 64))).draws
6
"""
from . import objectives, param, transform
from .deepdream import dream
from .render import MAX_STEPS, OBJECTIVES, default_objective, maximize, middle_unit_window
from .objectives import Objective, channel, class_logit, diversity, neuron
from .param import IMAGE_PARAMS, MAX_SIDE
from .presets import QUALITY_PRESETS

__all__ = [
    "IMAGE_PARAMS",
    "MAX_SIDE",
    "MAX_STEPS",
    "OBJECTIVES",
    "QUALITY_PRESETS",
    "Objective",
    "channel",
    "class_logit",
    "default_objective",
    "diversity",
    "dream",
    "maximize",
    "middle_unit_window",
    "neuron",
    "objectives",
    "param",
    "transform",
]
