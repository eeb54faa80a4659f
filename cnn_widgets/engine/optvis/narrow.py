"""Convolutions with a narrow side, as one matrix product and k*k shifted sums (CPU).

Activation maximization runs two convolutions that oneDNN, PyTorch's CPU
convolution library, computes at a fraction of the CPU's speed, because it pads
channel counts to its vector width (16 floats) and one side here has 1 to 3:

- the target filter of each image (:func:`selected_channels`): C channels in,
  one out, with a different filter per image;
- the input gradient of the network's first conv (:func:`input_gradient`): its
  C_out-channel gradient goes back to a 1- or 3-channel image.

Both are a k x k convolution with a narrow side, and both are computed here as
one product over the wide side (a 1x1 convolution or a batched matrix product:
every position's C values times the k*k taps, at full speed) followed by k*k
shifted sums on the narrow side, which cost little. A step of VGG16's block1_conv2
at 128 px (16 filters) takes about 1.3x less CPU time with them (BENCHMARKS.md).
Below a size where oneDNN's waste is smaller than the shifted sums' fixed cost, the
callers keep oneDNN. Results equal the convolution's up to float rounding (the
sums run in another order).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Below this many input channels oneDNN's convolution backward to the input pads them to 16 lanes.
NARROW_INPUT = 4
# Below these sizes the k*k shifted sums' fixed cost (a few dozen small operations) is more than
# oneDNN's waste (measured on one core: a 1-image 28 px step was 25 % slower with them; a
# 16-image one 2x faster): elements of the image-sized gradient, and of the selected conv's input.
INPUT_GRADIENT_MIN_ELEMENTS = 300_000
SELECTED_MIN_ELEMENTS = 50_000


def zero_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): the zeros ``conv`` adds around its input, also for padding="same".

    >>> zero_padding(nn.Conv2d(1, 1, 3, padding=(1, 2))), zero_padding(nn.Conv2d(1, 1, 4, padding="same"))
    ((1, 1, 2, 2), (1, 2, 1, 2))
    """
    left, right, top, bottom = conv._reversed_padding_repeated_twice
    return top, bottom, left, right


def _tap_window(tap: int, kernel: tuple[int, int], out: tuple[int, int], stride, dilation) -> tuple[slice, slice]:
    """Where tap ``tap`` (row-major in the kernel) reads the padded input for every output position."""
    row, column = divmod(tap, kernel[1])
    top, left = row * dilation[0], column * dilation[1]
    return (slice(top, top + stride[0] * (out[0] - 1) + 1, stride[0]),
            slice(left, left + stride[1] * (out[1] - 1) + 1, stride[1]))


def _out_size(size: tuple[int, int], pads, kernel, stride, dilation) -> tuple[int, int]:
    top, bottom, left, right = pads
    return ((size[0] + top + bottom - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1,
            (size[1] + left + right - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1)


class _SelectedChannel(torch.autograd.Function):
    """Image i (C, H, W) convolved with filter i (C, kh, kw): (N, OH, OW)."""

    @staticmethod
    def forward(ctx, inputs, weight, bias, pads, stride, dilation, relu):
        ctx.relu = relu
        if relu:  # the in-place ReLU before the conv; its gradient mask is applied in backward
            inputs.relu_()
            ctx.mark_dirty(inputs)
            ctx.set_materialize_grads(False)
        count, channels, height, width = inputs.shape
        kernel = tuple(weight.shape[-2:])
        taps = weight.to(inputs.dtype).reshape(count, channels, -1).transpose(1, 2)  # (N, k*k, C)
        rows = inputs.permute(0, 2, 3, 1).reshape(count, height * width, channels)  # a view in channels_last
        # Every position's channels times every tap at once: (N, k*k, H, W).
        planes = torch.bmm(taps, rows.transpose(1, 2)).view(count, -1, height, width)
        top, bottom, left, right = pads
        planes = F.pad(planes, (left, right, top, bottom))
        out = _out_size((height, width), pads, kernel, stride, dilation)
        result = planes.new_zeros(count, *out) if bias is None else bias.to(planes.dtype).view(count, 1, 1).expand(count, *out).clone()
        for tap in range(planes.shape[1]):
            result += planes[(slice(None), tap, *_tap_window(tap, kernel, out, stride, dilation))]
        ctx.save_for_backward(taps, inputs if relu else None)
        ctx.shape, ctx.geometry = (height, width, kernel), (pads, stride, dilation)
        ctx.layout = torch.channels_last if inputs.dim() == 4 and inputs.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        # With the ReLU, its output (``inputs``, changed in place) is an output of this function too.
        return (result, inputs) if relu else result

    @staticmethod
    def backward(ctx, grad, grad_rectified=None):
        taps, rectified = ctx.saved_tensors
        if grad is None:  # only the rectified input was used further on
            return torch.ops.aten.threshold_backward(grad_rectified, rectified, 0), None, None, None, None, None, None
        height, width, kernel = ctx.shape
        pads, stride, dilation = ctx.geometry
        top, bottom, left, right = pads
        count, out = grad.shape[0], tuple(grad.shape[1:])
        # Each tap's plane gets the output gradient where that tap read; then one product back to C channels.
        planes = grad.new_zeros(count, taps.shape[1], height + top + bottom, width + left + right)
        for tap in range(taps.shape[1]):
            planes[(slice(None), tap, *_tap_window(tap, kernel, out, stride, dilation))] = grad
        inside = planes[:, :, top:top + height, left:left + width].reshape(count, taps.shape[1], height * width)
        rows = torch.bmm(inside.transpose(1, 2), taps.to(grad.dtype))  # (N, H*W, C)
        gradient = rows.view(count, height, width, -1).permute(0, 3, 1, 2)  # channels_last
        if ctx.relu:
            if grad_rectified is not None:
                gradient += grad_rectified
            # The ReLU's backward, written in place: no new image-sized tensor.
            torch.ops.aten.threshold_backward.grad_input(gradient, rectified, 0, grad_input=gradient)
        return gradient.contiguous(memory_format=ctx.layout), None, None, None, None, None, None


def selected_channels(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      padding: tuple[int, int, int, int], stride=(1, 1), dilation=(1, 1), relu: bool = False) -> torch.Tensor:
    """Input i (C, H, W) convolved with ``weight[i]`` (C, kh, kw) plus ``bias[i]``: (N, OH, OW).
    ``padding``: (top, bottom, left, right) zeros (see :func:`zero_padding`). Differentiable with
    respect to ``inputs`` (not the weights). ``relu=True``: of ``relu(inputs)``, applied to
    ``inputs`` in place like an in-place ``nn.ReLU``; the backward masks its own gradient in
    place (one image-sized tensor less than autograd's ReLU backward).

    >>> conv = nn.Conv2d(4, 6, 3, padding=1)
    >>> x, index = torch.randn(2, 4, 5, 5), torch.tensor([5, 1])
    >>> mine = selected_channels(x, conv.weight[index], conv.bias[index], zero_padding(conv))
    >>> torch.allclose(mine, conv(x)[[0, 1], [5, 1]], atol=1e-5)
    True
    """
    bias = None if bias is None else bias.detach()
    result = _SelectedChannel.apply(inputs, weight.detach(), bias, tuple(padding), tuple(stride), tuple(dilation), relu)
    return result[0] if relu else result


class _InputGradient(torch.autograd.Function):
    """The conv's output as computed, with its input gradient by a 1x1 product and shifted sums."""

    @staticmethod
    def forward(ctx, inputs, output, conv):
        ctx.mark_dirty(output)  # it becomes this function's output (no copy); the conv's own graph is dropped
        ctx.conv, ctx.size, ctx.dtype = conv, tuple(inputs.shape[-2:]), inputs.dtype
        return output

    @staticmethod
    def backward(ctx, grad):
        conv = ctx.conv
        top, bottom, left, right = zero_padding(conv)
        weight = conv.weight.detach().to(grad.dtype)
        count, out_channels, out = grad.shape[0], grad.shape[1], tuple(grad.shape[-2:])
        in_channels, kernel = weight.shape[1], tuple(weight.shape[-2:])
        # One product over the C_out channels: (N, k*k * C_in, OH*OW), tap-major planes.
        taps = weight.permute(2, 3, 1, 0).reshape(-1, out_channels)
        rows = grad.permute(0, 2, 3, 1).reshape(count, -1, out_channels)  # a view in channels_last
        planes = torch.matmul(taps, rows.transpose(1, 2)).view(count, -1, in_channels, *out)
        # Each tap's planes go back where that tap read (stride and dilation as in the forward pass).
        height, width = ctx.size
        padded = planes.new_zeros(count, in_channels, height + top + bottom, width + left + right)
        for tap in range(kernel[0] * kernel[1]):
            padded[(slice(None), slice(None), *_tap_window(tap, kernel, out, conv.stride, conv.dilation))] += planes[:, tap]
        return padded[:, :, top:top + height, left:left + width].to(ctx.dtype).contiguous(), None, None


def is_narrow_input(conv: nn.Module) -> bool:
    """Whether ``conv`` is a convolution whose input gradient :func:`input_gradient` computes
    faster than oneDNN: a plain 2-d conv (zero padding, no groups) with a few input channels.

    >>> is_narrow_input(nn.Conv2d(3, 64, 3)), is_narrow_input(nn.Conv2d(64, 64, 3))
    (True, False)
    """
    return isinstance(conv, nn.Conv2d) and conv.groups == 1 and conv.padding_mode == "zeros" and conv.in_channels <= NARROW_INPUT


def input_gradient(conv: nn.Conv2d, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``output`` (= ``conv(inputs)``, values unchanged), whose backward pass computes the gradient
    with respect to ``inputs`` as a 1x1 convolution and k*k shifted sums instead of oneDNN's
    backward convolution. Meant as a forward hook's return value on a CPU; with no gradient to
    compute, or below ``INPUT_GRADIENT_MIN_ELEMENTS``, it returns ``output`` as it is. The
    weights get no gradient.

    >>> conv = nn.Conv2d(3, 16, 3, padding=1).requires_grad_(False)
    >>> x = torch.randn(2, 3, 160, 160, requires_grad=True)
    >>> mine, = torch.autograd.grad(input_gradient(conv, x, conv(x)).square().sum(), x)
    >>> theirs, = torch.autograd.grad(conv(x).square().sum(), x)
    >>> torch.allclose(mine, theirs, atol=1e-4)
    True
    """
    if not (torch.is_grad_enabled() and inputs.requires_grad and output.requires_grad):
        return output
    if output.numel() < INPUT_GRADIENT_MIN_ELEMENTS:  # small work: oneDNN's own backward is faster
        return output
    return _InputGradient.apply(inputs, output.detach(), conv)
