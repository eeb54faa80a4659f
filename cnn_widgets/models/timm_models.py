"""timm models (an optional extra: ``pip install cnn-widgets[timm]``).

``load_model("timm/resnet50")`` builds the architecture with timm and takes the
input size, normalization and class names from its ``pretrained_cfg``; a timm
module passed to ``load_model`` gets the same. Pretrained weights come through
timm's own loading and the Hugging Face cache; offline, the error says which
files to fetch and where they go.
"""
from __future__ import annotations

import difflib
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import zoo

PREFIX = "timm/"
HUB_URL = "https://huggingface.co"


def require_timm():
    """The timm package, or an ImportError that says how to install it."""
    try:
        import timm
    except ImportError as error:
        raise ImportError(
            "timm models need the timm package: pip install 'cnn-widgets[timm]' (or pip install timm)"
        ) from error
    return timm


def is_timm_name(source: object) -> bool:
    """Whether ``source`` names a timm model (``"timm/<architecture>[.<tag>]"``).

    >>> is_timm_name("timm/resnet50"), is_timm_name("resnet50")
    (True, False)
    """
    return isinstance(source, str) and source.strip().lower().startswith(PREFIX)


def is_timm_module(module: nn.Module) -> bool:
    """Whether ``module`` was built by timm (it carries a ``pretrained_cfg``)."""
    return "timm" in sys.modules and isinstance(getattr(module, "pretrained_cfg", None), dict)


def build(source: str, weights: Any) -> tuple[nn.Module, str]:
    """The timm model named by ``"timm/<name>"`` and a label for its weights.

    ``weights``: ``"default"``/``"pretrained"``/``"imagenet"`` for timm's pretrained
    weights, ``None``/``"none"`` for random initialization (offline), or a path to a
    weights file (loaded by timm: safetensors or a tensors-only checkpoint).
    """
    timm = require_timm()
    name = source.strip()[len(PREFIX):]
    architecture = name.split(".", 1)[0]
    if not timm.is_model(architecture):
        known = timm.list_models()
        close = difflib.get_close_matches(architecture, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown timm model {name!r}{hint} (timm.list_models() lists all {len(known)})")
    if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "random")):
        return timm.create_model(name, pretrained=False), "none"
    if isinstance(weights, str) and weights.lower() in ("default", "pretrained", "imagenet"):
        return _pretrained(timm, name), "pretrained"
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist; weights must be the name of a weights set (such as 'imagenet' or 'none') or the path of an existing state_dict file")
        return timm.create_model(name, pretrained=False, checkpoint_path=str(path)), str(weights)
    raise ValueError(
        f"unknown weights {weights!r} for a timm model; valid choices: 'pretrained' (the default), "
        "'none' (random initialization) or a path to a weights file"
    )


def _pretrained(timm, name: str) -> nn.Module:
    cfg = timm.create_model(name, pretrained=False).pretrained_cfg
    cached = cached_weights(cfg)
    if cached is not None:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
    if _offline(cfg):
        raise zoo.WeightsUnavailableError(_unavailable_message(name, cfg))
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as error:  # the model built above: what fails here is fetching or reading the weights
        raise zoo.WeightsUnavailableError(_unavailable_message(name, cfg) + f"\n(the download failed: {error})") from error


def cached_weights(cfg: dict) -> Path | None:
    """The pretrained weights file of a timm ``pretrained_cfg`` if it is already cached."""
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in (cfg.get("hf_hub_filename"), "model.safetensors", "pytorch_model.bin"):
            if filename:
                found = try_to_load_from_cache(hub_id, filename)
                if isinstance(found, str):
                    return Path(found)
    url = cfg.get("url")
    if url:
        target = _url_cache_file(url)
        if target.is_file():
            return target
    return None


def _url_cache_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def _offline(cfg: dict) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return True
    url = HUB_URL if cfg.get("hf_hub_id") else cfg.get("url") or HUB_URL
    return not zoo._reachable(url, timeout=3.0)


def hub_cache_folder() -> Path:
    """The Hugging Face hub cache folder (``HF_HUB_CACHE``, ``HF_HOME``/hub, or ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _unavailable_message(name: str, cfg: dict) -> str:
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        where = (
            f"On a machine with internet access run\n  huggingface-cli download {hub_id}\n"
            f"and copy its cache folder ({hub_cache_folder()}/models--{hub_id.replace('/', '--')}) to the same place here "
            f"(set HF_HOME or HF_HUB_CACHE to use another cache folder)"
        )
    else:
        url = cfg.get("url", "")
        where = f"Download {url}\non a machine with internet access and put the file at\n  {_url_cache_file(url)}"
    return (
        f"pretrained weights for timm/{name} are not cached and cannot be downloaded from here.\n{where}, "
        f"or pass weights='path/to/file.safetensors', or weights=None for random weights."
    )


def model_info(module: nn.Module) -> dict:
    """Input size, mean, std and class names from a timm module's ``pretrained_cfg``.

    >>> import timm
    >>> info = model_info(timm.create_model("resnet18", pretrained=False))
    >>> info["input_size"], info["classes"][0]
    ((3, 224, 224), 'tench')
    """
    cfg = module.pretrained_cfg
    input_size = tuple(cfg.get("input_size") or (3, 224, 224))
    channels = _input_channels(module, cfg) or input_size[0]
    input_size = (int(channels), *input_size[1:])
    mean = tuple(cfg.get("mean") or (0.5,))
    std = tuple(cfg.get("std") or (0.5,))
    if len(mean) != channels:  # built with in_chans= other than the pretrained config's
        mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
    return {"input_size": input_size, "mean": mean, "std": std, "classes": _class_names(module, cfg)}


def _input_channels(module: nn.Module, cfg: dict) -> int | None:
    """The channels the first conv takes: a model built with ``in_chans=1`` differs from its config."""
    first = cfg.get("first_conv")
    for path in (first if isinstance(first, (list, tuple)) else [first]):
        if not path:
            continue
        try:
            conv = module.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(conv, nn.Conv2d):
            return conv.in_channels
    return None


def _class_names(module: nn.Module, cfg: dict) -> list[str] | None:
    count = getattr(module, "num_classes", None) or cfg.get("num_classes")
    names = cfg.get("label_names")
    if names and len(names) == count:
        descriptions = cfg.get("label_descriptions")
        return [descriptions.get(n, n) if isinstance(descriptions, dict) else n for n in names]
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(module)
        if subset is None:
            return None
        descriptions = ImageNetInfo(subset).label_descriptions()
    except Exception:  # no label files for this model: classes are numbered
        return None
    if len(descriptions) != count:
        return None
    return [text.split(",")[0].strip() for text in descriptions]
