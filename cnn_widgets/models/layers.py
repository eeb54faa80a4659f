"""Finding a network's conv layers, naming them, and resolving a name to a layer.

Every ``nn.Conv2d`` anywhere in the module tree is a layer. Networks built as
one ``nn.Sequential`` of convs and pools (VGG, AlexNet, the shipped
fashion-cnn) also get Keras-style names, ``block<b>_conv<c>``, derived by
counting pools, so ``block3_conv1`` means the first conv after the second pool.
"""
from __future__ import annotations

import operator

from dataclasses import dataclass, field
from typing import Sequence

from torch import nn

from .._choices import invalid_choice

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


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

    @property
    def channels(self) -> int:
        return self.out_channels

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


def discover_layers(module: nn.Module, output_shapes: dict[str, tuple[int, int, int]] | None = None) -> list[LayerInfo]:
    """All ``nn.Conv2d`` layers of ``module`` in registration order, with display names.

    With ``output_shapes`` (from a dry run), convs that did not run (GoogLeNet's
    auxiliary heads in eval mode) are left out: they are not part of inference.
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
            )
        )
    return layers


def resolve_layer(layers: Sequence[LayerInfo], layer: "str | int | LayerInfo | nn.Module | None") -> LayerInfo:
    """The layer meant by a display name, a module path, an index, a LayerInfo or the module itself.

    ``None`` means the last conv layer.
    """
    if not layers:
        raise ValueError("this model has no Conv2d layers, so there is nothing to visualize")
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
