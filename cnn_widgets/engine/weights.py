"""Filter weights: the kernels of a conv layer, as they are."""
from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from ..models import as_model, preserved


def filter_weights(model, layer=None) -> torch.Tensor:
    """The kernels of ``layer`` as a CPU tensor (out_channels, in_channels/groups, kh, kw).

    A copy: changing it never changes the model.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> engine.filter_weights(cw.load_model("fashion-cnn"), "block1_conv1").shape
    torch.Size([32, 1, 3, 3])
    """
    model = as_model(model)
    info = model.layer(layer)
    if not parametrize.is_parametrized(info.module, "weight"):  # a plain tensor: read it, no lock needed
        return info.module.weight.detach().to("cpu", torch.float32, copy=True)
    # A parametrized weight is computed, and computing it can write state (spectral_norm's
    # power iteration updates _u and _v in train mode): compute it as every engine call runs.
    with preserved(model.module, model.device), torch.no_grad():
        return info.module.weight.detach().to("cpu", torch.float32, copy=True)
