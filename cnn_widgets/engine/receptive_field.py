"""Receptive fields: which input pixels one position of a conv layer's output can see.

Found by a gradient probe, so it works for any module graph (branches, skips,
functional ops): the gradient of one output position with respect to the input
is non-zero exactly on the pixels that position depends on. The probe runs on a
copy of the network whose convolutions average (all weights equal and positive,
no bias), whose batch norms pass values through, and whose max pools average,
so no ReLU or max-pool switch hides part of the field; the user's model is not
touched. Inputs larger than the model's are tried until the field fits inside
the picture; a field that never fits (global pooling inside the network) covers
the whole input.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .._choices import check_int
from ..models import as_model, preserved
from ..models.layers import layer_list
from ..models.state import _HOOK_DICTS


@dataclass(frozen=True)
class ReceptiveField:
    """Per axis (rows, columns): ``size`` in input pixels (None: the whole input),
    ``stride`` between neighbouring output positions, and ``start``, the input
    row/column where the field of output position 0 begins (negative in the padding).
    """

    size: tuple[int, int] | None
    stride: tuple[int, int]
    start: tuple[int, int]

    def crop_box(self, row: int, column: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the window to cut from a ``height`` x ``width``
        input around output position (``row``, ``column``): the field, moved inside
        the picture where it sticks out, and no larger than the picture.

        >>> ReceptiveField((5, 5), (2, 2), (-2, -2)).crop_box(3, 0, 28, 28)
        (4, 0, 5, 5)
        """
        size = self.size or (height, width)
        box_height, box_width = min(size[0], height), min(size[1], width)
        top = min(max(self.start[0] + row * self.stride[0], 0), height - box_height)
        left = min(max(self.start[1] + column * self.stride[1], 0), width - box_width)
        return top, left, box_height, box_width

    def as_dict(self) -> dict:
        return {"size": list(self.size) if self.size else None, "stride": list(self.stride), "start": list(self.start)}


_IMAGES = 4  # random probe images per output position


class _Stop(Exception):
    pass


class _OneChannelConv(nn.Module):
    """A conv's footprint on one channel: sum the input channels, then average over the kernel."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.register_buffer("weight", torch.full((1, 1, *conv.kernel_size), 1.0 / (conv.kernel_size[0] * conv.kernel_size[1])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = self.padding if isinstance(self.padding, str) else tuple(self.padding)
        return torch.nn.functional.conv2d(x.sum(1, keepdim=True), self.weight, None, self.stride, padding, self.dilation)


def _averaging_copy(module: nn.Module, one_channel: bool) -> nn.Module:
    """The probe network. ``one_channel``: every conv becomes :class:`_OneChannelConv`
    and batch norms are dropped, so the probe costs almost nothing; it fails on
    networks that need their channel counts (squeeze-and-excitation), which then
    get the full-width copy."""
    probe = copy.deepcopy(module).cpu().float().eval()
    with torch.no_grad():
        for parent in list(probe.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.MaxPool2d) and child.dilation in (1, (1, 1)) and not child.return_indices:
                    setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
                elif one_channel and isinstance(child, nn.Conv2d):
                    setattr(parent, name, _OneChannelConv(child))
                elif one_channel and isinstance(child, nn.modules.batchnorm._BatchNorm):
                    setattr(parent, name, nn.Identity())
        for sub in probe.modules():
            if isinstance(sub, nn.Conv2d):
                sub.weight.fill_(1.0 / sub.weight[0].numel())
                if sub.bias is not None:
                    sub.bias.zero_()
            elif isinstance(sub, nn.modules.batchnorm._BatchNorm):
                if sub.running_mean is not None:
                    sub.running_mean.zero_()
                    sub.running_var.fill_(1.0)
                if sub.affine:
                    sub.weight.fill_(1.0)
                    sub.bias.zero_()
    for param in probe.parameters():
        param.requires_grad_(False)
    for sub in probe.modules():  # the user's hooks were copied too: they must not see the probe
        for name in _HOOK_DICTS:
            hooks = getattr(sub, name, None)
            if hooks:
                hooks.clear()
    return probe


def _extent(mask: torch.Tensor) -> tuple[int, int]:
    found = mask.nonzero()
    return int(found.min()), int(found.max())


def receptive_fields(model, layers=None, *, max_scale: int = 4) -> dict[str, ReceptiveField]:
    """{layer name: :class:`ReceptiveField`} for the chosen conv layers (None: all).

    >>> import cnn_widgets as cw
    >>> fields = receptive_fields(cw.load_model("fashion-cnn"), ["block1_conv1", "block2_conv1"])
    >>> fields["block1_conv1"]
    ReceptiveField(size=(3, 3), stride=(1, 1), start=(-1, -1))
    >>> fields["block2_conv1"]
    ReceptiveField(size=(10, 10), stride=(2, 2), start=(-4, -4))
    """
    check_int("max_scale", max_scale, low=1, high=64)
    model = as_model(model)
    chosen = list(model.layers) if layers is None else [model.layer(layer) for layer in layer_list(layers)]
    for one_channel in (True, False, None):
        try:
            probe = None if one_channel is None else _averaging_copy(model.module, one_channel)
            fields, scale = {}, 1
            for info in chosen:  # deeper layers see more: start where the last one fitted
                fields[info.name], scale = _field(model, probe, info.path, scale, max_scale)
            return fields
        except Exception:
            if one_channel is None:  # the model itself fails: that error is the user's to see
                raise
    raise AssertionError("unreachable")


def _field(model, probe: nn.Module | None, path: str, scale: int, max_scale: int) -> tuple[ReceptiveField, int]:
    channels, height, width = model.input_size
    while True:
        field = _probe(model, probe, path, (channels, height * scale, width * scale))
        if field is not None:
            return field, scale
        if scale >= max_scale:  # never fits: the layer sees the whole input
            return _probe(model, probe, path, (channels, height, width), whole=True), 1
        scale *= 2


def _probe(model, probe: nn.Module | None, path: str, shape: tuple[int, int, int], whole: bool = False) -> ReceptiveField | None:
    """One gradient probe at input ``shape``: the field of two diagonal neighbours near
    the centre of the layer's output; None when it touches the picture's border."""
    module = probe if probe is not None else model.module
    target = dict(module.named_modules())[path]
    captured = {}

    def hook(_module, _inputs, output):
        captured["output"] = output
        raise _Stop

    inputs = (torch.rand(2 * _IMAGES, *shape, generator=torch.Generator().manual_seed(0)) + 0.5)
    context = preserved(model.module, torch.device("cpu")) if probe is None else _nothing()
    with context, torch.enable_grad():
        if probe is None:
            inputs = model.normalize(inputs - 0.5)
        inputs.requires_grad_(True)
        handle = target.register_forward_hook(hook)
        try:
            module(inputs)
        except _Stop:
            pass
        finally:
            handle.remove()
        output = captured["output"]
        rows, columns = output.shape[2:]
        row, column = max(0, (rows - 1) // 2), max(0, (columns - 1) // 2)
        after_row, after_column = min(row + 1, rows - 1), min(column + 1, columns - 1)
        # Several images per position: a functional max pool the copy could not replace
        # routes the gradient differently for each, and the union covers its window.
        score = output[:_IMAGES, :, row, column].sum() + output[_IMAGES:, :, after_row, after_column].sum()
        (gradient,) = torch.autograd.grad(score, inputs)
    first = gradient[:_IMAGES].abs().sum(dim=(0, 1)) > 0
    second = gradient[_IMAGES:].abs().sum(dim=(0, 1)) > 0
    (top, bottom), (left, right) = _extent(first.any(1)), _extent(first.any(0))
    (top2, _), (left2, _) = _extent(second.any(1)), _extent(second.any(0))
    stride = (max(1, top2 - top) if after_row > row else 1, max(1, left2 - left) if after_column > column else 1)
    if whole:
        return ReceptiveField(None, stride, (top - row * stride[0], left - column * stride[1]))
    if top == 0 or left == 0 or bottom == shape[1] - 1 or right == shape[2] - 1:
        return None
    return ReceptiveField((bottom - top + 1, right - left + 1), stride, (top - row * stride[0], left - column * stride[1]))


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
