"""Feature maps: what every conv layer outputs for an image, from one forward pass.

By default a layer's maps are what the layer passes on: the output of the
activation that follows the conv (ReLU, SiLU, GELU..., after any BatchNorm in
between), as the model's layer rule says; ``stage="conv"`` gives the conv's own
output before it. Outputs are copied inside the forward hook, so an in-place
activation cannot overwrite a recorded conv output. The pass stops as soon as the last requested layer has been seen, and
results are cached per (model weights, input), so moving between layers and
filters never recomputes.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import torch
from torch import nn

from .._bounded import BoundedCache
from ..models import Model, as_model, preserved
from ..models.handle import module_token
from ..models.layers import LayerInfo, LayerOutput, layer_list

CACHE_BYTES = 256_000_000  # feature maps kept for moving between layers (VGG16, all layers: 54 MB per image)
_cache = BoundedCache(max_bytes=CACHE_BYTES, max_items=8)
STATISTICS = ("mean", "max", "positive")
STAGES = ("activation", "conv")  # after the activation that follows the conv (default), or the conv's own output


class _Stop(Exception):
    """Raised from a hook to end the forward pass once every wanted layer is recorded."""


def weights_version(model: Model) -> tuple:
    """Changes whenever the model's parameters are written (training, loading, an
    in-place ``weight.mul_(-1)``) or it moves; never the same for two modules."""
    return (module_token(model.module), sum(p._version for p in model.module.parameters()), str(model.device))


def input_fingerprint(tensor: torch.Tensor) -> str:
    """A short hash of an input tensor's values, for caching."""
    data = tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest() + str(tuple(tensor.shape))


def record_activations(model: Model, inputs: torch.Tensor, layers: Iterable[LayerInfo | LayerOutput], detach: bool = True,
                       reduce=None) -> dict[str, torch.Tensor]:
    """Run ``inputs`` (N, C, H, W) through the network up to the last of ``layers``;
    return {key: output (N, C, H, W)}, copied before any in-place op can touch it.

    A :class:`LayerInfo` is recorded at the conv itself (its own output, keyed by its
    module path); a :class:`LayerOutput` (from ``model.layer_output`` or
    ``info.output()``) at its module's ``call``-th call, keyed by its name.
    ``reduce(output)``, if given, is stored instead of the copy: computed inside the
    hook, it also sees the output before an in-place op, and nothing big is kept.
    The caller owns the :func:`preserved` block (this is a building block for the engine).
    """
    wanted: dict[nn.Module, dict[int, list[str]]] = {}
    names: dict[str, str] = {}
    for item in layers:
        if isinstance(item, LayerInfo):
            key, module, call, names[item.path] = item.path, item.module, 0, item.name
        else:
            key, module, call, names[item.name] = item.name, item.module, item.call, item.name
        wanted.setdefault(module, {}).setdefault(call, []).append(key)
    total = sum(len(keys) for calls in wanted.values() for keys in calls.values())
    outputs: dict[str, torch.Tensor] = {}
    calls: dict[nn.Module, int] = {}

    def hook(module, _inputs, output):
        call = calls.get(module, 0)
        calls[module] = call + 1
        for key in wanted[module].get(call, ()):
            if key not in outputs:
                value = output.detach() if detach else output
                outputs[key] = reduce(value) if reduce is not None else value.clone()
        if len(outputs) == total:
            raise _Stop

    handles = [module.register_forward_hook(hook) for module in wanted]
    try:
        model.run(inputs)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [names[key] for key in names if key not in outputs]
    if missing:
        raise RuntimeError(f"layers {', '.join(missing)} were not used in the forward pass of {model.name}")
    return outputs


def layer_stage(info: LayerInfo, stage: str = "activation") -> LayerOutput:
    """Which tensor of ``info`` a feature map shows: ``stage="activation"`` the output of
    the activation that follows the conv (the conv's own output when none does),
    ``"conv"`` the conv's own output. Its ``after``/``before`` name the activation.

    >>> import cnn_widgets as cw
    >>> layer_stage(cw.load_model("fashion-cnn").layer("block1_conv1")).describe()
    'block1_conv1 (after ReLU, features.1)'
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; valid choices: {', '.join(STAGES)}")
    return info.output(raw=stage == "conv")


def feature_maps(model, image, layers=None, *, stage: str = "activation", cache: bool = True) -> dict[str, torch.Tensor]:
    """All channels of the chosen conv layers for one image, from one forward pass.

    ``layers``: None for every conv layer, or a list of names/paths/indices (or one).
    ``stage``: ``"activation"`` (the default) for what each layer passes on, the output
    of the activation that follows the conv (ReLU, SiLU, ...; the conv's own output
    where none follows); ``"conv"`` for the conv's own output, before that activation.
    Returns {layer display name: CPU tensor (C, H, W)} in the network's order.
    ``image`` is anything :func:`cnn_widgets.load_image` takes (resized and
    normalized for the model) or an already preprocessed tensor.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> maps = engine.feature_maps(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"))
    >>> maps["block1_conv1"].shape
    torch.Size([32, 28, 28])
    >>> bool(maps["block1_conv1"].min() >= 0)  # after the ReLU
    True
    """
    model = as_model(model)
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; valid choices: {', '.join(STAGES)}")
    chosen = list(model.layers) if layers is None else [model.layer(layer) for layer in layer_list(layers)]
    inputs = model.preprocess(image)
    if inputs.shape[0] != 1:
        raise ValueError(f"feature_maps takes one image; got a batch of {inputs.shape[0]}")
    key = (weights_version(model), input_fingerprint(inputs), stage)
    stored = _cache.get(key) if cache else None
    needed = [info for info in chosen if stored is None or info.path not in stored]
    if needed:
        with preserved(model.module, model.device), torch.no_grad():
            outputs = record_activations(model, inputs, [layer_stage(info, stage) for info in needed])
        fresh = {info.path: outputs[layer_stage(info, stage).name][0].to("cpu", torch.float32) for info in needed}
        stored = {**(stored or {}), **fresh}
        if cache:
            _cache[key] = stored
    return {info.name: stored[info.path] for info in chosen}


def clear_cache() -> None:
    """Forget cached feature maps (they are also evicted after a few images)."""
    _cache.clear()


def channel_stats(maps: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel mean, max and fraction of positive values of a (C, H, W) stack.

    >>> stats = channel_stats(torch.tensor([[[1.0, -1.0]], [[2.0, 2.0]]]))
    >>> stats["mean"].tolist(), stats["positive"].tolist()
    ([0.0, 2.0], [0.5, 1.0])
    """
    _check_maps(maps)
    flat = maps.reshape(maps.shape[0], -1).float()
    return {"mean": flat.mean(1), "max": flat.amax(1), "positive": (flat > 0).float().mean(1)}


def _check_maps(maps) -> None:
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"maps must be a (C, H, W) tensor, got {type(maps).__name__}")
    if maps.dim() != 3 or maps.shape[0] == 0:
        raise ValueError(f"maps must be a (C, H, W) tensor with at least one channel, got shape {tuple(maps.shape)}")


def sort_channels(maps: torch.Tensor, by: str = "mean", descending: bool = True) -> list[int]:
    """Channel indices ordered by a statistic ("mean", "max" or "positive").

    >>> sort_channels(torch.tensor([[[1.0, -1.0]], [[2.0, 2.0]]]), by="max")
    [1, 0]
    """
    if by not in STATISTICS:
        raise ValueError(f"unknown statistic by={by!r}; valid choices: {', '.join(STATISTICS)}")
    return torch.argsort(channel_stats(maps)[by], descending=descending, stable=True).tolist()
