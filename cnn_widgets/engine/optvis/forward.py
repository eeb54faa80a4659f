"""Running the network for an optimization: only as far as the objective reads,
on the right device, in the right precision, and stoppable.

``LayerTap`` hooks the layers an objective reads for the whole optimization
and, unless the objective needs the network's output, ends the forward pass
with an internal exception (the idea of ``engine.activations.record_activations``):
the network is cut at the deepest target layer, so nothing beyond it is
computed. That layer's input is kept and its conv is computed by the
:class:`Recording`, only for what the objective asks: when image i needs only
filter i (the usual case) that is one output channel per image instead of all
of them, which saves the cost of the target conv in the forward and the backward
pass. When that input is the output of an in-place ``nn.ReLU`` (VGG's conv, ReLU,
conv) on the CPU, the cut comes one module earlier, before the ReLU (once the first
run has seen that ReLU feed the conv), and the ReLU runs inside the target conv
(``narrow.py``), whose backward then masks its own gradient in place instead of
autograd's ReLU backward writing a new tensor (on VGG16's block1_conv2 at 128 px that
backward took 22-68 ms a step, the in-place mask 8 ms). Outputs of other hooked layers
are copied, so an in-place ReLU that follows cannot change what the objective sees.
Results are the same with and without the cut.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...models import Model
from ...models.layers import LayerInfo
from ...models.state import channels_last
from . import narrow

PRECISIONS = ("auto", "float32", "bfloat16", "float16")


class _Cut(Exception):
    """Raised from a hook to end the forward pass once every wanted layer has been reached."""


class Recording:
    """What one forward pass recorded for a chunk of the batch, for objectives to read.

    ``activation(layer)``: the conv output (n, C, h, w) in float32 (before any ReLU);
    ``channels(layer, index)``: only channel ``index[i]`` for image i, (n, h, w);
    ``output``: the network's class scores (logits), if the objective asked for it;
    ``indices``: the batch positions of the images in this chunk.

    >>> acts = torch.arange(8.0).view(2, 2, 1, 2)
    >>> recording = Recording({"conv": acts})
    >>> recording.channels("conv", torch.tensor([1, 0])).tolist()
    [[[2.0, 3.0]], [[4.0, 5.0]]]
    """

    def __init__(
        self,
        activations: dict | None = None,
        *,
        conv_inputs: dict | None = None,
        output=None,
        scores: Callable | None = None,
        indices: range | None = None,
        resolve: Callable | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self._activations = dict(activations or {})
        # path -> (LayerInfo, the conv's input, relu): with relu=True the input is taken before
        # an in-place ReLU that the network did not run (LayerTap's fused cut); the conv applies it.
        self._conv_inputs = conv_inputs or {}
        self._output = output
        self._scores = scores or (lambda output: output)  # the class scores in a raw network output
        if indices is None:
            first = next(iter(self._activations.values()), None)
            indices = range(0 if first is None else first.shape[0])
        self.indices = indices
        self._resolve = resolve or (lambda layer: layer)
        self._dtype = dtype

    def _path(self, layer) -> str:
        resolved = self._resolve(layer)
        return resolved.path if isinstance(resolved, LayerInfo) else resolved

    def activation(self, layer) -> torch.Tensor:
        path = self._path(layer)
        if path not in self._activations:
            info, inputs, relu = self._conv_inputs[path]
            conv = info.module
            if relu:  # in place, as the network's own nn.ReLU(inplace=True) would have
                inputs = F.relu(inputs, inplace=True)
            with autocast(inputs.device, self._dtype):
                self._activations[path] = conv._conv_forward(inputs, conv.weight, conv.bias)
        return self._activations[path].float()

    def channels(self, layer, index: torch.Tensor) -> torch.Tensor:
        path = self._path(layer)
        if path in self._activations or path not in self._conv_inputs:
            acts = self.activation(layer)
            return acts[torch.arange(acts.shape[0], device=acts.device), index.to(acts.device)]
        info, inputs, relu = self._conv_inputs[path]
        with autocast(inputs.device, self._dtype):
            return selected_channels(info.module, inputs, index.to(inputs.device), relu=relu).float()

    @property
    def output(self) -> torch.Tensor:
        if self._output is None:
            raise RuntimeError("this objective did not declare needs_output=True, so the network output was not computed")
        return self._scores(self._output).float()


def selected_channels(conv: nn.Conv2d, inputs: torch.Tensor, index: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """Output channel ``index[i]`` of ``conv`` for input i: (n, h, w), at 1/out_channels of the cost.
    ``relu=True``: of ``relu(inputs)``, the ReLU applied in place to ``inputs`` (as an in-place
    ``nn.ReLU`` would; differentiable) and, on the CPU's narrow path, fused into the backward.

    On the CPU each image on its own, so its result does not depend on the others in the
    batch: as one matrix product and shifted sums (``narrow.py``: oneDNN would pad the one
    output channel to 16), or for small inputs one direct conv per image; on GPUs one grouped
    conv (one kernel launch).

    >>> conv = nn.Conv2d(4, 6, 3, padding=1)
    >>> x = torch.randn(2, 4, 5, 5)
    >>> torch.allclose(selected_channels(conv, x, torch.tensor([5, 1])), conv(x)[[0, 1], [5, 1]], atol=1e-5)
    True
    """
    count = inputs.shape[0]
    narrow_path = inputs.device.type == "cpu" and inputs.numel() >= narrow.SELECTED_MIN_ELEMENTS
    if relu and not (narrow_path and conv.groups == 1 and conv.padding_mode == "zeros"):
        inputs, relu = F.relu(inputs, inplace=True), False
    per_group_in, per_group_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    if conv.groups > 1:  # the input channels that feed filter index[i]
        group = index // per_group_out
        inputs = inputs.view(count, conv.groups, per_group_in, *inputs.shape[-2:])[torch.arange(count, device=inputs.device), group]
    weight = conv.weight[index]
    bias = conv.bias[index] if conv.bias is not None else None
    padding, zero_padding = conv.padding, narrow.zero_padding(conv)
    if conv.padding_mode != "zeros":
        inputs = F.pad(inputs, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        padding, zero_padding = 0, (0, 0, 0, 0)
    if narrow_path:
        return narrow.selected_channels(inputs, weight, bias, zero_padding, conv.stride, conv.dilation, relu=relu)
    if inputs.device.type == "cpu":  # small work: a few direct convs cost less than the shifted sums
        # split, not indexing: its backward is one concatenation, not a full-size zero tensor per image.
        biases = bias.split(1) if bias is not None else [None] * count
        outputs = [F.conv2d(x, w, b, conv.stride, padding, conv.dilation) for x, w, b in zip(inputs.split(1), weight.split(1), biases)]
        return torch.cat(outputs)[:, 0]
    stacked = inputs.reshape(1, count * per_group_in, *inputs.shape[-2:])
    return F.conv2d(stacked, weight, bias, conv.stride, padding, conv.dilation, groups=count)[0]


class LayerTap:
    """Hooks on ``layers`` for the duration of a ``with`` block.

    ``run(inputs, indices)`` returns a :class:`Recording`. The deepest layer keeps its
    input (its conv is computed by the Recording, as needed); other layers keep a copy
    of their output. With ``cut=True`` the forward pass stops at the deepest layer.
    ``layout=torch.channels_last`` also switches the conv weights to that layout for the
    block (see :func:`memory_format`): with a 1-channel input the input's layout is
    ambiguous, and only the weights' layout makes oneDNN run the network in NHWC.
    The caller owns the :func:`cnn_widgets.models.preserved` block.
    """

    def __init__(self, model: Model, layers: Iterable[LayerInfo], cut: bool = True, dtype: torch.dtype | None = None,
                 layout: torch.memory_format | None = None) -> None:
        self.model = model
        self.layers = {info.path: info for info in layers}
        self.deepest = max(self.layers.values(), key=lambda info: info.index) if self.layers else None
        self.cut = cut and self.deepest is not None
        self.dtype = dtype
        self._layout = contextlib.ExitStack()
        self._channels_last = layout == torch.channels_last
        self._outputs: dict[str, torch.Tensor] = {}
        self._inputs: dict = {}
        self._handles: list = []
        # The in-place ReLU that may feed the deepest conv (see _fusable_relu). The first run
        # checks that it does (None: not yet known); later runs then cut before it.
        self._relu = _fusable_relu(model, self.deepest) if self.cut else None
        self._relu_feeds_deepest: bool | None = None
        self._relu_seen: list = []

    def __enter__(self) -> "LayerTap":
        if self._channels_last:
            # Cut after the deepest layer, the convs beyond it never run: their weights stay as they are.
            ran = [info.module for info in self.model.layers if info.index <= self.deepest.index] if self.cut else None
            self._layout.enter_context(channels_last(self.model.module, convs=ran))
        for path, info in self.layers.items():
            if info is self.deepest:
                self._handles.append(info.module.register_forward_pre_hook(self._keep_input(info)))
                if self._relu is not None:
                    self._handles.append(self._relu.register_forward_pre_hook(self._before_relu(info)))
                    self._handles.append(self._relu.register_forward_hook(self._after_relu))
            else:
                self._handles.append(info.module.register_forward_hook(self._keep_output(path)))
        if self.model.device.type == "cpu":
            # The network's first conv: its gradient back to a 1- or 3-channel image (narrow.py).
            for info in self.model.layers:
                if narrow.is_narrow_input(info.module) and (self.deepest is None or info.index <= self.deepest.index):
                    self._handles.append(info.module.register_forward_hook(_narrow_input_gradient))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._outputs, self._inputs = {}, {}
        self._layout.close()

    def _keep_output(self, path: str):
        def hook(_module, _inputs, output):
            if path not in self._outputs:
                self._outputs[path] = output.clone()

        return hook

    def _keep_input(self, info: LayerInfo):
        def hook(_module, inputs):
            if info.path not in self._inputs:
                # Without the cut the network goes on and could change the tensor in place.
                self._inputs[info.path] = (info, inputs[0] if self.cut else inputs[0].clone(), False)
                if self._relu_feeds_deepest is None and self._relu is not None:
                    # The first run: the ReLU ran once, after every other hooked layer, and its output is this input.
                    seen = self._relu_seen
                    self._relu_feeds_deepest = len(seen) == 1 and seen[0][0] is inputs[0] and seen[0][1]
            if self.cut:
                raise _Cut

        return hook

    def _before_relu(self, info: LayerInfo):
        def hook(_module, inputs):
            if self._relu_feeds_deepest:  # the ReLU is left to the deepest conv, which applies it in place
                self._inputs[info.path] = (info, inputs[0], True)
                raise _Cut

        return hook

    def _after_relu(self, _module, _inputs, output):
        if self._relu_feeds_deepest is None:
            self._relu_seen.append((output, all(path in self._outputs for path in self.layers if path != self.deepest.path)))

    def run(self, inputs: torch.Tensor, indices: range | None = None) -> Recording:
        self._outputs, self._inputs = {}, {}
        output = None
        with autocast(inputs.device, self.dtype):
            try:
                output = self.model.run(inputs)
            except _Cut:
                pass
        outputs, conv_inputs = self._outputs, self._inputs
        self._outputs, self._inputs, self._relu_seen = {}, {}, []
        if self._relu_feeds_deepest is None:
            self._relu_feeds_deepest = False  # the deepest conv was not reached after the ReLU
        missing = [info.name for path, info in self.layers.items() if path not in outputs and path not in conv_inputs]
        if missing:
            raise RuntimeError(f"layers {', '.join(missing)} were not used in the forward pass of {self.model.name}")
        return Recording(
            outputs,
            conv_inputs=conv_inputs,
            output=output,
            scores=self.model.class_scores,
            indices=indices if indices is not None else range(inputs.shape[0]),
            resolve=self.model.layer,
            dtype=self.dtype,
        )


def _fusable_relu(model: Model, deepest: LayerInfo | None) -> nn.ReLU | None:
    """The in-place ``nn.ReLU`` that follows the conv before ``deepest``, on a CPU model, when
    ``deepest``'s narrow path could fuse it (a plain conv); whether its output really is
    ``deepest``'s input is for the first run to see."""
    if deepest is None or model.device.type != "cpu" or deepest.groups != 1 or deepest.module.padding_mode != "zeros":
        return None
    before = [info for info in model.layers if info.index == deepest.index - 1]
    activation = before[0].activation if before else None
    if activation is None or activation.call != 0 or type(activation.module) is not nn.ReLU or not activation.module.inplace:
        return None
    return activation.module


def _narrow_input_gradient(conv, inputs, output):
    """Forward hook: ``output`` as it is, with the input gradient computed by ``narrow.input_gradient``."""
    if inputs and isinstance(output, torch.Tensor) and output.device.type == "cpu":
        return narrow.input_gradient(conv, inputs[0], output)
    return None


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The mixed-precision dtype for the forward pass, or None for plain float32.

    "auto": bfloat16 on CUDA GPUs that support it (float16 would overflow on the large
    activations maximization produces), float32 elsewhere (CPU, MPS, older GPUs).

    >>> autocast_dtype(torch.device("cpu")) is None
    True
    """
    if precision not in PRECISIONS:
        from ..._choices import invalid_choice

        raise invalid_choice("precision", precision, PRECISIONS)
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "float16":
        return torch.float16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A context that runs the forward pass in ``dtype`` (nothing for float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last (NHWC) on CUDA, where tensor cores want it, and on the CPU, where
    oneDNN's convolutions run about 1.25x faster in it; the default layout on MPS.

    >>> memory_format(torch.device("cpu"))
    torch.channels_last
    """
    return torch.contiguous_format if device.type == "mps" else torch.channels_last


def in_layout(tensor: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
    """``tensor`` (N, C, H, W) in memory layout ``layout``, also when C is 1: there
    ``.contiguous(memory_format=torch.channels_last)`` keeps the default strides (both
    layouts are "contiguous"), and convolutions then run the whole network in the default
    layout. Differentiable.

    >>> in_layout(torch.zeros(2, 1, 3, 4), torch.channels_last).stride()
    (12, 1, 4, 1)
    """
    if layout == torch.channels_last and tensor.dim() == 4 and tensor.shape[1] == 1 and tensor.stride(1) != 1:
        return torch.empty_like(tensor, memory_format=torch.channels_last).copy_(tensor)
    return tensor.contiguous(memory_format=layout)


def is_cancelled(cancel) -> bool:
    """True when ``cancel`` (None, a ``threading.Event`` or a callable returning bool) says stop.

    >>> import threading
    >>> event = threading.Event(); event.set()
    >>> is_cancelled(None), is_cancelled(event), is_cancelled(lambda: False)
    (False, True, False)
    """
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    if callable(is_set):
        return bool(is_set())
    if callable(cancel):
        return bool(cancel())
    raise TypeError(f"cancel must be a threading.Event or a callable returning bool, not {type(cancel).__name__}")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the GPU ran out of memory (so a smaller batch may fit)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(error, oom):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower() and "mps" in str(error).lower()


def free_memory(device: torch.device) -> None:
    """Give cached GPU memory back after an out-of-memory error."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()

