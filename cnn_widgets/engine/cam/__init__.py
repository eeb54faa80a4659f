"""Where the network looks: class activation maps (Grad-CAM family) and saliency.

:func:`cam` answers "which pixels made the network say this class?" with one map
of the input's height and width. Layer methods weight a layer's channels and
upsample the result; input methods differentiate the class score with respect
to the pixels; compositions combine the two (guided Grad-CAM).

Each method is one registered unit (:mod:`.registry`) in one file of
:mod:`.methods`, built from the shared pieces of :mod:`.core` (recording a
layer, the explained class, upsampling, progress and Stop) and, for most, one
of the two families of :mod:`.bases`. Everything runs inside
:func:`~cnn_widgets.models.preserved`: mode, flags, hooks and ``.grad`` come
back as they were, also after an error.

>>> from cnn_widgets.engine.cam import CAM_METHODS
>>> CAM_METHODS[:3]
('gradcam', 'gradcam++', 'layercam')
"""
from . import methods  # noqa: F401  (registers every method)
from .api import CamResult, Prediction, cam, cam_result, predict, resolve_layers
from .core import Cancelled, CamOptions, class_index
from .registry import METHODS, CamMethod, Passes, get_method, register
from .trust import Faithfulness, SanityCheck, faithfulness, randomizable_modules, sanity_check

CAM_METHODS = tuple(METHODS)  # the registered names, in menu order

__all__ = [
    "CAM_METHODS",
    "METHODS",
    "CamMethod",
    "CamOptions",
    "CamResult",
    "Faithfulness",
    "Cancelled",
    "Passes",
    "SanityCheck",
    "Prediction",
    "cam",
    "cam_result",
    "class_index",
    "get_method",
    "predict",
    "randomizable_modules",
    "register",
    "sanity_check",
    "faithfulness",
    "resolve_layers",
]
