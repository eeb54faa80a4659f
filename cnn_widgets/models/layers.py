"""Finding a network's conv layers, naming them, and resolving a name to a layer.

Every ``nn.Conv2d`` anywhere in the module tree is a layer. Networks built as
one ``nn.Sequential`` of convs and pools (VGG, AlexNet, the shipped
fashion-cnn) also get Keras-style names, ``block<b>_conv<c>``, derived by
counting pools, so ``block3_conv1`` means the first conv after the second pool.

What a layer name means is decided here, once: a conv's name means what the
conv passes on, the output of the activation that follows it (through
BatchNorm-like layers, in-place or not), and ``name + ":raw"`` the conv's own
output. Which activation follows which conv, and where the network's last
spatial stage ends, are found by :func:`dry_run`, one forward pass with hooks.
"""
from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .._choices import invalid_choice

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)
# Modules that count as "the activation that follows a conv".
ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus,
)
# The same as functions, for activations applied in a hand-written forward (GoogLeNet's F.relu).
_FUNCTIONAL_ACTIVATIONS = {
    F.relu: "ReLU", torch.relu: "ReLU", torch.relu_: "ReLU", torch.Tensor.relu: "ReLU", torch.Tensor.relu_: "ReLU",
    F.relu6: "ReLU6", F.leaky_relu: "LeakyReLU", F.elu: "ELU", F.gelu: "GELU", F.silu: "SiLU", F.mish: "Mish",
    F.hardswish: "Hardswish", torch.sigmoid: "Sigmoid", torch.tanh: "Tanh",
}
# Modules that may sit between a conv and its activation: they keep its channels and positions.
_BETWEEN = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d)
RAW = ":raw"  # "block3_conv2:raw" is the conv's own output, before its activation


@dataclass(frozen=True)
class Activation:
    """Where a conv's output is read after its activation: the module at ``path`` (the
    activation module itself, or for a functional activation such as GoogLeNet's
    ``F.relu`` the smallest module that returns its result), which of its calls in one
    forward pass (``call``; ResNet blocks call one ReLU several times), and the
    activation's ``kind`` (``"ReLU"``). Its input is the output of ``input_module`` (at
    module path ``input_path``, its ``input_call``-th call): the conv itself, or the last
    BatchNorm-like module between the conv and the activation."""

    path: str
    call: int
    kind: str
    module: nn.Module = field(repr=False, compare=False)
    input_path: str = ""
    input_call: int = 0
    input_module: nn.Module | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class LayerOutput:
    """The one tensor of a forward pass that a layer name means: the output of ``module``
    (at module ``path``) at its ``call``-th call. ``name`` is the name that gives it back;
    ``after`` names the activation when it is a conv's output after its activation
    (``"ReLU"``), ``before`` when it is that activation's input: the conv's own output
    (named ``conv name + ":raw"``) or a BatchNorm's output (named by its module path).

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> model.layer_output("block3_conv2").describe()
    'block3_conv2 (after ReLU, features.13)'
    >>> model.layer_output("block3_conv2:raw").describe()
    'block3_conv2:raw (conv output before ReLU, features.12)'
    """

    name: str
    path: str
    call: int
    module: nn.Module = field(repr=False, compare=False)
    after: str | None = None
    before: str | None = None

    def describe(self) -> str:
        if self.after:
            return f"{self.name} (after {self.after}, {self.path})"
        if self.before and not self.name.endswith(RAW):  # a BatchNorm's output, the activation's input
            return f"{self.name} (input of {self.before})"
        if self.before:
            return f"{self.name} (conv output before {self.before}, {self.path})"
        return self.name if self.name == self.path else f"{self.name} ({self.path})"


@dataclass(frozen=True)
class LayerInfo:
    """One conv layer: its display ``name``, module ``path``, sizes and output shape (C, H, W)."""

    name: str
    path: str
    index: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    output_shape: tuple[int, int, int] | None
    module: nn.Conv2d = field(repr=False, compare=False)
    activation: Activation | None = field(default=None, repr=False, compare=False)
    # True when the conv's input is the network's input itself: its output is then linear in the pixels.
    reads_input: bool = field(default=False, repr=False, compare=False)

    @property
    def channels(self) -> int:
        return self.out_channels

    def output(self, raw: bool = False) -> LayerOutput:
        """What this layer's name means: the output of the activation that follows the conv
        (when one does), or with ``raw=True`` the conv's own output (named ``name + ":raw"``)."""
        act = self.activation
        if act is None:
            return LayerOutput(self.name, self.path, 0, self.module)
        if raw:
            return LayerOutput(self.name + RAW, self.path, 0, self.module, before=act.kind)
        return LayerOutput(self.name, act.path, act.call, act.module, after=act.kind)

    def activation_input(self) -> LayerOutput:
        """The input of the activation that follows the conv: the conv's output after any
        BatchNorm-like modules in between, before the activation (what dataset examples
        rank by). Without such modules it is the conv's own output (named ``name + ":raw"``);
        without an activation, the conv's own output (named ``name``).

        >>> import cnn_widgets as cw
        >>> resnet = cw.load_model("resnet18", weights=None)
        >>> [resnet.layer(name).activation_input().path for name in ("conv1", "layer1.0.conv1", "layer1.0.conv2")]
        ['bn1', 'layer1.0.bn1', 'layer1.0.conv2']
        >>> cw.load_model("fashion-cnn").layer("block1_conv1").activation_input().name
        'block1_conv1:raw'
        """
        act = self.activation
        if act is None:
            return self.output()
        if act.input_module is None or act.input_module is self.module:
            return self.output(raw=True)
        return LayerOutput(act.input_path, act.input_path, act.input_call, act.input_module, before=act.kind)

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name,) if self.name == self.path else (self.name, self.path)

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.output_shape[1:]) if self.output_shape else "?"
        kernel = "x".join(str(k) for k in self.kernel_size)
        alias = f" ({self.path})" if self.path != self.name else ""
        return f"{self.name}{alias}: {self.in_channels}->{self.out_channels} channels, {kernel} kernel, output {shape}"


def _keras_names(module: nn.Module, convs: dict[str, nn.Conv2d]) -> dict[str, str]:
    """Keras-style names when every conv is a direct child of one Sequential with pools."""
    for container_path, container in module.named_modules():
        if not isinstance(container, nn.Sequential):
            continue
        children = list(container.named_children())
        if not any(isinstance(child, _POOLS) for _, child in children):
            continue
        direct = {f"{container_path}.{name}" if container_path else name for name, child in children if isinstance(child, nn.Conv2d)}
        if direct != set(convs):
            continue
        names: dict[str, str] = {}
        block, conv = 1, 0
        for name, child in children:
            path = f"{container_path}.{name}" if container_path else name
            if isinstance(child, nn.Conv2d):
                conv += 1
                names[path] = f"block{block}_conv{conv}"
            elif isinstance(child, _POOLS) and conv > 0:
                block, conv = block + 1, 0
        return names
    return {}


def discover_layers(
    module: nn.Module,
    output_shapes: dict[str, tuple[int, int, int]] | None = None,
    activations: dict[str, Activation] | None = None,
    reads_input: "set[str] | frozenset[str]" = frozenset(),
) -> list[LayerInfo]:
    """All ``nn.Conv2d`` layers of ``module`` in registration order, with display names.

    With ``output_shapes`` (from a dry run), convs that did not run (GoogLeNet's
    auxiliary heads in eval mode) are left out: they are not part of inference.
    ``activations`` (also from the dry run) says which activation follows each conv,
    ``reads_input`` which convs take the network's input itself.
    """
    convs = {path: sub for path, sub in module.named_modules() if isinstance(sub, nn.Conv2d)}
    keras = _keras_names(module, convs)
    layers = []
    for path, conv in convs.items():
        if output_shapes is not None and path not in output_shapes:
            continue
        layers.append(
            LayerInfo(
                name=keras.get(path, path),
                path=path,
                index=len(layers),
                in_channels=conv.in_channels,
                out_channels=conv.out_channels,
                kernel_size=tuple(conv.kernel_size),
                stride=tuple(conv.stride),
                groups=conv.groups,
                output_shape=output_shapes.get(path) if output_shapes is not None else None,
                module=conv,
                activation=(activations or {}).get(path),
                reads_input=path in reads_input,
            )
        )
    return layers


def resolve_layer(layers: Sequence[LayerInfo], layer: "str | int | LayerInfo | nn.Module | None") -> LayerInfo:
    """The layer meant by a display name, a module path, an index, a LayerInfo or the module itself.

    ``None`` means the last conv layer.
    """
    if not layers:
        raise ValueError("this model has no Conv2d layers, so there is nothing to visualize; pass a model with at least one nn.Conv2d")
    if layer is None:
        return layers[-1]
    if isinstance(layer, LayerInfo):
        layer = layer.path
    if isinstance(layer, nn.Module):
        for info in layers:
            if info.module is layer:
                return info
        raise ValueError("that module is not one of this model's Conv2d layers; valid choices: " + ", ".join(i.name for i in layers))
    if isinstance(layer, bool):
        raise invalid_choice("layer", layer, [i.name for i in layers])
    if not isinstance(layer, (int, str)) and hasattr(layer, "__index__") and str(getattr(layer, "dtype", "")) not in ("bool", "torch.bool"):
        layer = operator.index(layer)  # a NumPy or torch integer
    if isinstance(layer, int):
        if -len(layers) <= layer < len(layers):
            return layers[layer]
        raise ValueError(f"layer index {layer} is out of range; this model has {len(layers)} conv layers (0-{len(layers) - 1})")
    if isinstance(layer, str):
        for info in layers:
            if layer in info.aliases:
                return info
        raise invalid_choice("layer", layer, [i.name for i in layers] + [i.path for i in layers if i.path != i.name])
    raise TypeError(f"layer must be a name, a module path, an index or a Conv2d module, not {type(layer).__name__}")


def layer_list(layers) -> list | None:
    """What a ``layers`` argument lists: None (every conv layer), one layer (a name, an
    index, a NumPy integer, a module, ...) as a list of one, or the items of a list.

    >>> layer_list("block1_conv1"), layer_list([0, 2]), layer_list(None)
    (['block1_conv1'], [0, 2], None)
    """
    if layers is None:
        return None
    if isinstance(layers, (list, tuple, range)) or (hasattr(layers, "__iter__") and getattr(layers, "ndim", None) == 1):
        listed = list(layers)
        if not listed:
            raise ValueError("layers is empty; pass None for every conv layer, or one or more layer names or indices")
        return listed
    return [layers]


def resolve_output(module: nn.Module, layers: Sequence[LayerInfo], layer) -> LayerOutput:
    """The tensor a layer name means (see :class:`LayerOutput`): a conv layer by any name
    :func:`resolve_layer` takes (after its activation), ``name + ":raw"`` (the conv's own
    output), or any other module of the network, by module path or as the module itself
    (its output at its first call, such as a ResNet's ``"layer4"``).

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("resnet18", weights=None)
    >>> [resolve_output(model.module, model.layers, name).path for name in ("conv1", "conv1:raw", "layer4")]
    ['relu', 'conv1', 'layer4']
    """
    if isinstance(layer, str) and layer.endswith(RAW):
        return resolve_layer(layers, layer[: -len(RAW)]).output(raw=True)
    if isinstance(layer, LayerOutput):
        return layer
    if isinstance(layer, nn.Module) and not isinstance(layer, nn.Conv2d):
        path = next((p for p, m in module.named_modules() if m is layer), None)
        if path is None:
            raise ValueError(f"that {type(layer).__name__} is not part of the model")
        return LayerOutput(path or type(layer).__name__, path, 0, layer)
    try:
        return resolve_layer(layers, layer).output()
    except ValueError as error:
        sub = _submodule(module, layer)
        if sub is None:
            raise ValueError(f"{error}; a conv name followed by '{RAW}' means its output before its activation, "
                             "and any module path of the network (such as a ResNet's 'layer4') also works") from None
        return LayerOutput(layer, layer, 0, sub)


def _submodule(module: nn.Module, path) -> nn.Module | None:
    if not isinstance(path, str) or not path:
        return None
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


@dataclass
class DryRun:
    """What one forward pass tells about a network: its ``output``, each conv's output
    shape (C, H, W) and the activation that follows it, and the module path and call
    whose output ends the last spatial stage (see :func:`dry_run`)."""

    output: object
    shapes: dict[str, tuple[int, int, int]]
    activations: dict[str, Activation]
    last_stage: tuple[str, int] | None
    reads_input: frozenset[str] = frozenset()


def dry_run(module: nn.Module, example: torch.Tensor) -> DryRun:
    """Run ``example`` through ``module`` once (no gradients) with a hook on every module,
    following tensors by identity and version (so an in-place op makes a new value):

    - a conv's *activation* is the first activation module whose input is the conv's
      output, directly or after BatchNorm-like modules, unchanged in between (a residual
      ``out += identity`` before the ReLU means no activation follows the conv); an
      activation function called in a ``forward`` counts too, read at the smallest
      module that returns its result;
    - the *last spatial stage* is the last tensor with height and width above 1 not made
      by a pooling layer, named by the outermost module that returns it and whose parent
      has other children with spatial outputs (``layer4`` in a ResNet, ``features.18`` in
      MobileNetV2, the ReLU after the last conv in VGG);
    - the convs that *read the input*: their input is ``example`` itself, unchanged, so
      their output is linear in the pixels (the first conv of a plain CNN; not one
      after a normalization or stem inside the network).

    Hooks are removed afterwards; call it inside :func:`~cnn_widgets.models.preserved`.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten())
    >>> run = dry_run(net.eval(), torch.zeros(1, 1, 10, 10))
    >>> run.shapes["0"], run.activations["0"].path, run.last_stage, run.reads_input
    ((4, 8, 8), '2', ('2', 0), frozenset({'0'}))
    """
    tokens = _Tokens()
    network_input = tokens.of(example)
    reads_input: set[str] = set()
    calls: dict[str, int] = {}
    pending: list[tuple[str, int, object]] = []
    shapes: dict[str, tuple[int, int, int]] = {}
    activations: dict[str, Activation] = {}
    chains: dict[object, str] = {}  # value -> the conv whose output it is (maybe after BatchNorm)
    spatial: list[tuple[str, int, object, bool]] = []  # (path, call, value, made by a pool)
    leaves = {sub for sub in module.modules() if next(sub.children(), None) is None}
    functional: dict[object, tuple[str, str, tuple]] = {}  # value -> (conv, kind, its input's maker) of an activation function's result
    makers: dict[object, tuple[str, int, nn.Module]] = {}  # a conv chain's value -> the module and call that returned it

    class Functions(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kind = _FUNCTIONAL_ACTIVATIONS.get(func)
            # The input's value is taken before the call: an in-place activation changes its version.
            source = tokens.of(args[0]) if kind and args and isinstance(args[0], torch.Tensor) else None
            result = func(*args, **(kwargs or {}))
            if source in chains and isinstance(result, torch.Tensor):
                functional[tokens.of(result)] = (chains[source], kind, makers[source])
            return result

    def before(path, sub, args):
        call = calls.get(path, 0)
        calls[path] = call + 1
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        pending.append((path, call, None if first is None else tokens.of(first)))

    def after(path, sub, output):
        _, call, source = pending.pop()
        if not isinstance(output, torch.Tensor):
            return
        value = tokens.of(output)
        if value in functional and sub is not module:
            conv, kind, maker = functional[value]
            activations.setdefault(conv, Activation(path, call, kind, sub, *maker))
        if isinstance(sub, nn.Conv2d):
            if call == 0:
                shapes[path] = tuple(output.shape[1:])
                chains[value], makers[value] = path, (path, call, sub)
                if source == network_input:
                    reads_input.add(path)
        elif sub in leaves and source in chains:
            conv = chains[source]
            if isinstance(sub, ACTIVATIONS):
                activations.setdefault(conv, Activation(path, call, type(sub).__name__, sub, *makers[source]))
            elif isinstance(sub, _BETWEEN):
                chains[value], makers[value] = conv, (path, call, sub)
        if sub is not module and output.dim() == 4 and min(output.shape[-2:]) > 1:
            spatial.append((path, call, value, isinstance(sub, _POOLS)))

    handles = []
    try:
        for path, sub in module.named_modules():
            try:
                handles.append(sub.register_forward_pre_hook(lambda m, a, path=path: before(path, m, a)))
                handles.append(sub.register_forward_hook(lambda m, a, o, path=path: after(path, m, o)))
            except RuntimeError:  # TorchScript modules take no Python hooks
                continue
        with torch.no_grad(), Functions():
            output = module(example)
    finally:
        for handle in handles:
            handle.remove()
    return DryRun(output, shapes, activations, _last_stage(spatial, activations), frozenset(reads_input))


def _last_stage(spatial, activations: dict[str, Activation]) -> tuple[str, int] | None:
    pooled = {value for _, _, value, pool in spatial if pool}
    last = next((value for _, _, value, _ in reversed(spatial) if value not in pooled), None)
    if last is None:
        return None
    named = {(a.path, a.call) for a in activations.values()}
    candidates = [(path, call) for path, call, value, _ in reversed(spatial)  # outermost first
                  if value == last and (call == 0 or (path, call) in named)]
    if not candidates:
        return None
    with_spatial = {path for path, *_ in spatial}
    for path, call in candidates:
        parent = path.rpartition(".")[0] if "." in path else ""
        siblings = [p for p in with_spatial if p != path and (p.rpartition(".")[0] if "." in p else "") == parent]
        if siblings:
            return path, call
    return candidates[-1]


class _Tokens:
    """A hashable token per tensor value: the same object at the same version gives the same
    token; an in-place change, or a new object that reuses a freed one's id, a new one."""

    def __init__(self) -> None:
        self._refs: dict[int, tuple[weakref.ref, int]] = {}
        self._fresh = 0

    def of(self, tensor: torch.Tensor) -> tuple[int, int, int]:
        known = self._refs.get(id(tensor))
        if known is None or known[0]() is not tensor:
            self._fresh += 1
            known = self._refs[id(tensor)] = (weakref.ref(tensor), self._fresh)
        try:
            version = tensor._version
        except RuntimeError:  # inference tensors keep no version
            version = 0
        return id(tensor), known[1], version


def check_filters(layer: LayerInfo, filters: "int | str | Sequence[int] | range | None") -> list[int]:
    """Filter indices for ``layer`` as a list, repeats kept (see :func:`parse_filters`); ``None`` means all of them."""
    return parse_filters(filters, layer.out_channels, layer=layer.name, unique=False)


def parse_filters(spec: "str | int | Sequence[int] | None", count: int, layer: str | None = None, unique: bool = True) -> list[int]:
    """Filter indices from an index, a list or range of indices, or a text like
    ``"12"``, ``"0-15"``, ``"3, 7, 20-23"`` or ``"all"``; ``None`` means all.
    Booleans and fractional numbers are refused, not truncated. ``unique``: drop repeats.

    >>> parse_filters("0-3, 9", 16)
    [0, 1, 2, 3, 9]
    >>> parse_filters("12", 16)
    [12]
    """
    where = f" for layer {layer}, which has {count} filters" if layer else f"; this layer has {count} filters"
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all")):
        return list(range(count))
    if isinstance(spec, str):
        chosen: list[int] = []
        for part in spec.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part:
                    low, high = (int(bound) for bound in part.split("-", 1))
                    if high < low:
                        raise ValueError
                    chosen.extend(range(low, high + 1))
                else:
                    chosen.append(int(part))
            except ValueError:
                raise ValueError(
                    f"cannot read filters {spec!r}: write 'all', an index like '12', a range like '0-15', or a list like '3, 7, 20-23'"
                ) from None
    elif isinstance(spec, (list, tuple, range)) or (hasattr(spec, "__iter__") and getattr(spec, "ndim", 1) != 0):
        chosen = [_filter_index(item) for item in spec]
    else:  # one index (NumPy and torch integer scalars too)
        chosen = [_filter_index(spec)]
    bad = [f for f in chosen if not 0 <= f < count]
    if bad:
        raise ValueError(f"filter index {bad[0]} is out of range{where} (valid: 0-{count - 1})")
    if not chosen:
        raise ValueError(f"no filters chosen; valid: 0-{count - 1}, a range like '0-15', or 'all'")
    return list(dict.fromkeys(chosen)) if unique else chosen


def _filter_index(value) -> int:
    """One filter index: an int (NumPy and torch integers too), never a bool or a float."""
    if isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        raise TypeError(f"filters must be int indices, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"filters must be int indices (or a text like '0-15'), got {value!r} ({type(value).__name__})") from None
