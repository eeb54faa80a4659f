"""One convolution with its numbers: what a conv filter computes at one position.

A conv layer slides each of its kernels over its input. At every position it
multiplies the input patch under the kernel with the kernel, element by element,
adds up the products of each input channel, adds the channel sums and the bias,
and writes the result into one pixel of the output feature map. ReLU then sets
the negative pixels to zero, and max-pooling keeps the largest pixel of each
small window. :func:`convolution_at` returns all of those numbers for one
position, taken from the model itself (its weights, bias, stride, padding and
dilation, and the input the layer really receives), so a teaching view can show
them and they are the numbers the network computes.
"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models import as_model, preserved
from ..models.layers import LayerInfo, check_filters
from .activations import input_fingerprint, weights_version
from .weights import filter_weights

MAX_KERNEL_SIZE = 7  # a custom kernel has at most this many rows and columns
CUSTOM_KERNEL_RULE = (
    "a custom kernel is applied to every input channel alike (the same numbers on each channel, whose "
    "sums add up), with bias 0, stride 1, dilation 1 and zero padding that keeps the input's size "
    "(for an even size the extra row or column of zeros goes at the bottom or right)"
)
_EXAMPLE_KERNEL = "[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]"


@dataclass(frozen=True)
class ConvolutionStep:
    """Everything one filter computes at one position of its output map (CPU float32 tensors).

    ``inputs`` (C, H, W) is what the layer receives; for the first conv layer this is
    the image after the model's normalization, ``(pixel - mean) / std``. ``patch``,
    ``kernel`` and ``products`` are (C, kh, kw); ``padding_mask`` (kh, kw) is True
    where the kernel lies over the padding around the input (the patch holds the
    padding value there: 0 for zero padding). ``channel_sums`` (C,) are the sums of
    ``products`` per input channel; ``output`` = sum of ``channel_sums`` + ``bias``,
    the value of ``output_map`` at ``position``. ``relu_map`` is ``max(output_map, 0)``
    and ``pooled_map`` its ``pool`` x ``pool`` max-pooling (stride ``pool``).
    ``window`` is the input row and column of the kernel's top-left tap (negative
    inside the padding); taps are ``dilation`` apart.
    """

    layer: str
    filter: int | None  # None for a custom kernel
    position: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # zeros added (top, bottom, left, right)
    padding_mode: str
    dilation: tuple[int, int]
    channels: tuple[int, ...]  # the input channels this filter reads (all of them unless grouped)
    inputs: torch.Tensor
    patch: torch.Tensor
    padding_mask: torch.Tensor
    kernel: torch.Tensor
    products: torch.Tensor
    channel_sums: torch.Tensor
    bias: float
    output: float
    output_map: torch.Tensor
    relu_map: torch.Tensor
    pool: int
    pooled_map: torch.Tensor
    window: tuple[int, int]

    @property
    def relu_output(self) -> float:
        """The output after ReLU: ``max(output, 0)``."""
        return max(self.output, 0.0)

    @property
    def pool_position(self) -> tuple[int, int] | None:
        """The pooled pixel whose window holds ``position``; None when the pooling
        leaves that row or column out (an odd map's last row or column)."""
        row, col = self.position[0] // self.pool, self.position[1] // self.pool
        if row < self.pooled_map.shape[0] and col < self.pooled_map.shape[1]:
            return row, col
        return None


def convolution_at(model, image, layer=None, filter: int = 0, position=(0, 0), kernel=None, pool: int = 2) -> ConvolutionStep:
    """The numbers one conv filter computes at ``position`` (row, column) of its output map.

    ``layer``: a conv layer (default: the first one, which sees the image itself);
    ``filter``: which of its filters; ``kernel``: instead of a filter, a small 2-D
    list of numbers of your own (see :data:`CUSTOM_KERNEL_RULE` for how it is applied);
    ``pool``: the max-pooling window shown after ReLU. ``image`` is anything
    :func:`cnn_widgets.load_image` takes, or a preprocessed (1, C, H, W) tensor.
    The output equals ``torch.nn.functional.conv2d`` with the layer's weights at
    that position; the model comes back unchanged.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> step = engine.convolution_at(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"), filter=3, position=(14, 9))
    >>> step.patch.shape, step.output_map.shape, step.pooled_map.shape
    (torch.Size([1, 3, 3]), torch.Size([28, 28]), torch.Size([14, 14]))
    >>> abs(step.output - (step.channel_sums.sum().item() + step.bias)) < 1e-5
    True
    >>> engine.convolution_at(cw.load_model("fashion-cnn"), cw.sample_image("bag"), kernel=[[1, 0, -1]] * 3, position=(0, 0)).padding_mask.tolist()
    [[True, True, True], [True, False, False], [True, False, False]]
    """
    model = as_model(model)
    info = model.layers[0] if layer is None else model.layer(layer)
    pool = _check_pool(pool)
    conv = info.module
    if kernel is None:
        filter = _check_filter(info, filter)
        weights = filter_weights(model, info)[filter]  # a parametrized weight is computed inside preserved()
        bias = 0.0 if conv.bias is None else float(conv.bias.detach()[filter])
        per_group = conv.out_channels // conv.groups
        first = (filter // per_group) * weights.shape[0]
        channels = tuple(range(first, first + weights.shape[0]))
        stride, dilation = tuple(conv.stride), tuple(conv.dilation)
        padding = _padding(conv.padding, conv.kernel_size, conv.dilation)
        padding_mode = conv.padding_mode
    else:
        values = check_kernel(kernel)
        weights, bias, channels, filter = values, 0.0, None, None
        stride, dilation, padding_mode = (1, 1), (1, 1), "zeros"
        padding = _padding("same", tuple(values.shape), dilation)
    image_tensor = model.preprocess(image)
    # Moving to another position reuses the maps: only the patch and its products are new.
    key = (weights_version(model), input_fingerprint(image_tensor), info.path, filter,
           None if kernel is None else tuple(map(tuple, weights.tolist())), pool)
    maps = _maps_cache.get(key)
    if maps is None:
        inputs = layer_input(model, image_tensor, info)[0]  # (C, H, W)
        if kernel is not None:
            weights = weights.expand(inputs.shape[0], *weights.shape).clone()
            channels = tuple(range(inputs.shape[0]))
        maps = _maps(inputs, weights, bias, channels, stride, padding, padding_mode, dilation, pool)
        _maps_cache[key] = maps
        while len(_maps_cache) > _CACHE_SIZE:
            _maps_cache.popitem(last=False)
    else:
        _maps_cache.move_to_end(key)
    inputs, padded, weights, channels, output_map, relu_map, pooled_map = maps
    top, bottom, left, right = padding
    row, col = check_position(position, tuple(output_map.shape))
    kh, kw = weights.shape[1:]
    rows = row * stride[0] + dilation[0] * torch.arange(kh)
    cols = col * stride[1] + dilation[1] * torch.arange(kw)
    patch = padded[:, rows][:, :, cols]
    inside_rows = (rows >= top) & (rows < top + inputs.shape[1])
    inside_cols = (cols >= left) & (cols < left + inputs.shape[2])
    padding_mask = ~(inside_rows[:, None] & inside_cols[None, :])
    products = patch * weights
    return ConvolutionStep(
        layer=info.name if kernel is None else f"custom kernel on the input of {info.name}",
        filter=filter,
        position=(row, col),
        stride=stride,
        padding=padding,
        padding_mode=padding_mode,
        dilation=dilation,
        channels=channels,
        inputs=inputs.clone(),  # copies: the cached maps stay as computed whatever a caller does
        patch=patch,
        padding_mask=padding_mask,
        kernel=weights.clone(),
        products=products,
        channel_sums=products.sum(dim=(1, 2)),
        bias=bias,
        output=float(output_map[row, col]),
        output_map=output_map.clone(),
        relu_map=relu_map.clone(),
        pool=pool,
        pooled_map=pooled_map.clone(),
        window=(row * stride[0] - top, col * stride[1] - left),
    )


_CACHE_SIZE = 16
_maps_cache: "OrderedDict[tuple, tuple]" = OrderedDict()


def _maps(inputs, weights, bias, channels, stride, padding, padding_mode, dilation, pool):
    """The padded input and the whole output, ReLU and pooled maps of one kernel (cached per image)."""
    read = inputs[list(channels)]
    top, bottom, left, right = padding
    mode = "constant" if padding_mode == "zeros" else padding_mode
    padded = F.pad(read.unsqueeze(0), (left, right, top, bottom), mode=mode)[0]
    with torch.no_grad():
        output_map = F.conv2d(padded.unsqueeze(0), weights.unsqueeze(0), torch.tensor([bias]), stride=stride, dilation=dilation)[0, 0]
    relu_map = output_map.clamp(min=0)
    if relu_map.shape[0] >= pool and relu_map.shape[1] >= pool:
        pooled_map = F.max_pool2d(relu_map[None, None], pool, pool)[0, 0]
    else:
        pooled_map = relu_map.new_zeros((relu_map.shape[0] // pool, relu_map.shape[1] // pool))
    return inputs, padded, weights, channels, output_map, relu_map, pooled_map


class _Reached(Exception):
    """Raised from the pre-hook: the layer's input is recorded, the rest of the network is not needed."""


def layer_input(model, image, layer=None) -> torch.Tensor:
    """What conv ``layer`` (default: the first) receives for ``image``: a CPU (1, C, H, W) copy.

    The network runs only up to that layer. For the first layer of a model that
    normalizes outside its ``forward`` this is the normalized image.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> engine.layer_input(cw.load_model("fashion-cnn"), cw.sample_image("sneaker")).shape
    torch.Size([1, 1, 28, 28])
    """
    model = as_model(model)
    info = layer if isinstance(layer, LayerInfo) else (model.layers[0] if layer is None else model.layer(layer))
    inputs = model.preprocess(image)
    if inputs.shape[0] != 1:
        raise ValueError(f"image must be one image; got a batch of {inputs.shape[0]}")
    seen: list[torch.Tensor] = []

    def record(_module, args):
        seen.append(args[0].detach().to("cpu", torch.float32, copy=True))
        raise _Reached

    with preserved(model.module, model.device), torch.no_grad():
        handle = info.module.register_forward_pre_hook(record)
        try:
            model.run(inputs)
        except _Reached:
            pass
        finally:
            handle.remove()
    if not seen:
        raise RuntimeError(f"layer {info.name} was not used in the forward pass of {model.name}")
    return seen[0]


def _padding(padding, kernel_size, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zeros for a conv's ``padding`` (ints, 'valid' or 'same')."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":  # as PyTorch pads: the odd extra one at the bottom and right
        total = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        return (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
    rows, cols = padding
    return (rows, rows, cols, cols)


def _check_filter(info: LayerInfo, filter) -> int:
    if isinstance(filter, bool) or not isinstance(filter, numbers.Integral):
        raise TypeError(f"filter must be an int, one of layer {info.name}'s filters (valid: 0-{info.out_channels - 1}), not {filter!r}")
    return check_filters(info, int(filter))[0]


def check_position(position, shape: tuple[int, int]) -> tuple[int, int]:
    """``position`` as (row, column) inside an output map of ``shape``, or an error naming the valid range.

    >>> check_position([2, 3], (4, 4))
    (2, 3)
    """
    height, width = shape
    valid = f"the output map is {height}x{width} (rows 0-{height - 1}, columns 0-{width - 1})"
    try:
        row, col = position
    except (TypeError, ValueError):
        raise TypeError(f"position must be (row, column); {valid}; got {position!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (row, col)):
        raise TypeError(f"position must be two whole numbers (row, column); {valid}; got {position!r}")
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"position ({row}, {col}) is outside the output map: {valid}")
    return int(row), int(col)


def _check_pool(pool) -> int:
    if isinstance(pool, bool) or not isinstance(pool, numbers.Integral) or not 1 <= pool <= 64:
        raise ValueError(f"pool must be a whole number of pixels, 1 or more and at most 64 (2 for the usual 2x2 max-pooling), got {pool!r}")
    return int(pool)


def check_kernel(kernel) -> torch.Tensor:
    """A custom kernel as a (kh, kw) float tensor, or a ValueError that shows what is accepted.

    >>> check_kernel([[1, 0, -1]]).shape
    torch.Size([1, 3])
    """
    what = (
        f"kernel must be a small 2-D list of numbers, rows of equal length, 1 to {MAX_KERNEL_SIZE} rows and "
        f"columns, such as {_EXAMPLE_KERNEL}"
    )
    if isinstance(kernel, torch.Tensor):
        values = kernel.detach().to("cpu", torch.float32)
    else:
        rows = kernel.tolist() if hasattr(kernel, "tolist") else kernel
        if isinstance(rows, (str, bytes)) or not isinstance(rows, (list, tuple)) or not rows:
            raise ValueError(f"{what}; got {kernel!r}")
        if not all(isinstance(r, (list, tuple)) for r in rows):
            raise ValueError(f"{what}; got {kernel!r} (each row must itself be a list)")
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"{what}; got rows of lengths {[len(r) for r in rows]}")
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for r in rows for v in r):
            raise ValueError(f"{what}; got {kernel!r}")
        values = torch.tensor([[float(v) for v in r] for r in rows], dtype=torch.float32)
    if values.dim() != 2 or not (1 <= values.shape[0] <= MAX_KERNEL_SIZE and 1 <= values.shape[1] <= MAX_KERNEL_SIZE):
        raise ValueError(f"{what}; got a kernel of shape {tuple(values.shape)}")
    if not all(math.isfinite(v) for v in values.flatten().tolist()):
        raise ValueError(f"{what}; got a value that is not a finite number")
    return values
