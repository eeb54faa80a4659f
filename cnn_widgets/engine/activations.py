"""Feature maps: what every conv layer outputs for an image, from one forward pass.

Outputs are copied inside the forward hook, so an in-place ReLU that follows
the conv cannot overwrite them: a stored map is the conv's own (pre-ReLU)
output. The pass stops as soon as the last requested layer has been seen, and
results are cached per (model weights, input), so moving between layers and
filters never recomputes.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import torch

from .._bounded import BoundedCache
from ..models import Model, as_model, preserved
from ..models.handle import module_token
from ..models.layers import LayerInfo

CACHE_BYTES = 256_000_000  # feature maps kept for moving between layers (VGG16, all layers: 54 MB per image)
_cache = BoundedCache(max_bytes=CACHE_BYTES, max_items=8)
STATISTICS = ("mean", "max", "positive")


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


def record_activations(model: Model, inputs: torch.Tensor, layers: Iterable[LayerInfo], detach: bool = True,
                       reduce=None) -> dict[str, torch.Tensor]:
    """Run ``inputs`` (N, C, H, W) through the network up to the last of ``layers``;
    return {layer path: output (N, C, H, W)}, copied before any in-place op can touch it.

    ``reduce(output)``, if given, is stored instead of the copy: computed inside the
    hook, it also sees the conv's own output, and nothing big is kept.
    The caller owns the :func:`preserved` block (this is a building block for the engine).
    """
    wanted = {info.path: info for info in layers}
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(path: str):
        def hook(_module, _inputs, output):
            if path not in outputs:
                if reduce is not None:
                    outputs[path] = reduce(output.detach() if detach else output)
                else:
                    outputs[path] = output.detach().clone() if detach else output.clone()
            if len(outputs) == len(wanted):
                raise _Stop

        return hook

    for info in wanted.values():
        handles.append(info.module.register_forward_hook(make_hook(info.path)))
    try:
        model.run(inputs)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [wanted[p].name for p in wanted if p not in outputs]
    if missing:
        raise RuntimeError(f"layers {', '.join(missing)} were not used in the forward pass of {model.name}")
    return outputs


def feature_maps(model, image, layers=None, *, cache: bool = True) -> dict[str, torch.Tensor]:
    """All channels of the chosen conv layers for one image, from one forward pass.

    ``layers``: None for every conv layer, or a list of names/paths/indices (or one).
    Returns {layer display name: CPU tensor (C, H, W)} in the network's order.
    ``image`` is anything :func:`cnn_widgets.load_image` takes (resized and
    normalized for the model) or an already preprocessed tensor.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> maps = engine.feature_maps(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"))
    >>> maps["block1_conv1"].shape
    torch.Size([32, 28, 28])
    """
    model = as_model(model)
    if layers is None:
        chosen = list(model.layers)
    elif isinstance(layers, (str, int, LayerInfo)) or not hasattr(layers, "__iter__") or getattr(layers, "ndim", 1) == 0:
        chosen = [model.layer(layers)]  # one layer (a NumPy or torch integer too)
    else:
        chosen = [model.layer(layer) for layer in layers]
    inputs = model.preprocess(image)
    if inputs.shape[0] != 1:
        raise ValueError(f"feature_maps takes one image; got a batch of {inputs.shape[0]}")
    key = (weights_version(model), input_fingerprint(inputs))
    stored = _cache.get(key) if cache else None
    needed = [info for info in chosen if stored is None or info.path not in stored]
    if needed:
        with preserved(model.module, model.device), torch.no_grad():
            outputs = record_activations(model, inputs, needed)
        fresh = {path: out[0].to("cpu", torch.float32) for path, out in outputs.items()}
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
    flat = maps.reshape(maps.shape[0], -1).float()
    return {"mean": flat.mean(1), "max": flat.amax(1), "positive": (flat > 0).float().mean(1)}


def sort_channels(maps: torch.Tensor, by: str = "mean", descending: bool = True) -> list[int]:
    """Channel indices ordered by a statistic ("mean", "max" or "positive")."""
    if by not in STATISTICS:
        raise ValueError(f"unknown statistic {by!r}; valid choices: {', '.join(STATISTICS)}")
    return torch.argsort(channel_stats(maps)[by], descending=descending, stable=True).tolist()
