"""Filter weights: the kernels of a conv layer, as they are."""
from __future__ import annotations

import torch

from ..models import as_model


def filter_weights(model, layer=None) -> torch.Tensor:
    """The kernels of ``layer`` as a CPU tensor (out_channels, in_channels/groups, kh, kw).

    A copy: changing it never changes the model.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> engine.filter_weights(cw.load_model("fashion-cnn"), "block1_conv1").shape
    torch.Size([32, 1, 3, 3])
    """
    info = as_model(model).layer(layer)
    return info.module.weight.detach().to("cpu", torch.float32, copy=True)
