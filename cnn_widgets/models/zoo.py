"""The model zoo: torchvision architectures by name, with ImageNet weights that
work offline once cached, and the shipped fashion-cnn."""
from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.parse
import warnings
from pathlib import Path

import torch
from torch import nn

from .._choices import invalid_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TORCHVISION_MODELS = (
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "alexnet", "resnet18", "resnet34", "resnet50", "googlenet",
    "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny",
)
SHIPPED_MODELS = ("fashion-cnn",)
MODEL_NAMES = SHIPPED_MODELS + TORCHVISION_MODELS


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights are neither cached nor downloadable; the message says where to put the file."""


def canonical_name(name: str) -> str:
    """The zoo's spelling of a model name (case and ``-``/``_`` insensitive), or a ValueError."""
    key = name.strip().lower().replace("-", "_")
    for candidate in MODEL_NAMES:
        if candidate.replace("-", "_") == key:
            return candidate
    raise invalid_choice("model", name, MODEL_NAMES)


def _weights_enum(name: str):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def imagenet_classes(name: str = "vgg16") -> list[str]:
    """The 1,000 ImageNet class names, from torchvision's weight metadata (no download)."""
    return list(_weights_enum(name).meta["categories"])


def weights_cache_file(name: str, weights=None) -> Path:
    """Where torchvision's cache keeps (or would keep) the ImageNet weights of ``name``
    (``weights``: one of its torchvision weight enums; its DEFAULT when None)."""
    url = (weights or _weights_enum(name)).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def _published_file_names() -> set[str]:
    """The file names of the zoo's published ImageNet weights (``vgg16-397923af.pth``, ...)."""
    return {os.path.basename(urllib.parse.urlparse(_weights_enum(name).url).path) for name in TORCHVISION_MODELS}


def _reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds."""
    if os.environ.get("CNN_WIDGETS_OFFLINE", "") not in ("", "0"):
        return False
    parts = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def imagenet_state_dict(name: str, timeout: float = 3.0, weights=None) -> dict[str, torch.Tensor]:
    """ImageNet weights of a torchvision architecture, from the cache or downloaded
    (``weights``: one of its torchvision weight enums; its DEFAULT when None).

    The file is loaded as data (tensors only, never arbitrary pickles) and must
    match the SHA-256 prefix its torchvision file name carries. Fails within
    ``timeout`` seconds on a machine that cannot reach the download host, with a
    :class:`WeightsUnavailableError` naming the file and the folder.
    """
    weights = weights or _weights_enum(name)
    target = weights_cache_file(name, weights)
    if not target.exists():
        if not _reachable(weights.url, timeout):
            raise WeightsUnavailableError(
                f"ImageNet weights for {name} are not cached and cannot be downloaded from here.\n"
                f"Download {weights.url}\n"
                f"on a machine with internet access and put the file at\n  {target}\n"
                f"(folder {target.parent}; set TORCH_HOME to use another cache folder), "
                f"or pass weights='path/to/file.pth', or weights=None for random weights."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        # Checks the hash prefix before the file takes its final name.
        torch.hub.download_url_to_file(weights.url, str(target), hash_prefix=expected_hash_prefix(target), progress=True)
    check_weights_hash(target, weights.url)
    return load_state_dict_file(target)


def expected_hash_prefix(path: str | os.PathLike) -> str | None:
    """The SHA-256 prefix a torchvision weights file name carries (``vgg16-397923af.pth``), or None."""
    match = re.search(r"-([a-f0-9]{6,})\.", os.path.basename(path))
    return match.group(1) if match else None


_verified: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime) of files whose hash matched


def check_weights_hash(path: str | os.PathLike, url: str | None = None) -> None:
    """Refuse a weights file whose SHA-256 does not start with the prefix in its name.

    A matching file is remembered (by path, size and modification time) so that
    loading it again does not read it twice.
    """
    path = Path(path)
    prefix = expected_hash_prefix(path)
    if prefix is None:
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if not actual.startswith(prefix):
        source = f"\nDownload it again from {url} and replace the file." if url else ""
        raise ValueError(
            f"the weights file {path} is not the published one: its SHA-256 starts with {actual[:len(prefix)]}, "
            f"its name says {prefix}. It may be damaged, incomplete or replaced; it was not loaded.{source}"
        )
    _verified[key] = True


def build_torchvision(name: str) -> nn.Module:
    """A randomly initialized torchvision architecture (no download)."""
    from torchvision.models import get_model

    kwargs = {"init_weights": True} if name == "googlenet" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_model(name, weights=None, **kwargs)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a local file, loaded safely (tensors only, never arbitrary pickles).

    A file named like one of torchvision's published weights (``vgg16-397923af.pth``)
    must also match the SHA-256 prefix in its name.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; weights must be the name of a weights set (such as 'imagenet' or 'none') or the path of an existing state_dict file")
    if path.name in _published_file_names():  # a torchvision download copied by hand: check it too
        check_weights_hash(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for non-checkpoints
        # torch's message advises weights_only=False, which would run the file's code: keep only the reason.
        text = str(error)
        unsupported = re.search(r"Unsupported global: (GLOBAL \S+)", text)
        if unsupported:
            reason = f"it holds objects other than tensors ({unsupported.group(1)})"
        elif "Weights only load failed" in text:
            reason = "it is not a file written by torch.save"
        else:
            reason = text.splitlines()[0] if text else type(error).__name__
        raise ValueError(
            f"{path} cannot be loaded safely as a PyTorch state_dict (tensors only, never code): {reason}"
        ) from error
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return state


def apply_state_dict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly, with an error that lists what does not fit."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {few(unexpected)}")
        if mismatched:
            parts.append("shape mismatch: " + few([f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched]))
        raise ValueError(f"weights from {source} do not fit this architecture: " + "; ".join(parts))
    module.load_state_dict(state)
