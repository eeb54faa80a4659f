"""How far to trust a heatmap: the model-randomization sanity check and a faithfulness score.

Two questions a person should ask of any map, answered with the metrics' published
definitions so that the numbers compare with the literature:

- :func:`sanity_check` -- does the map depend on what the model learned? The model
  parameter randomization test of Adebayo et al. (2018), "Sanity Checks for
  Saliency Maps", as quantus's ``MPRT`` computes it: the parameters of a deep copy
  of the network are re-initialized layer by layer from the output down (cascading),
  and after each step the same map is computed again and compared with the original
  by Spearman's rank correlation. A map that barely changes once the classifier is
  random cannot be explaining the class (guided backpropagation is the classic case).
- :func:`faithfulness` -- do the pixels the map calls relevant matter to the model?
  ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
  Attribution Methods"), as pytorch-grad-cam's ``ROADCombined`` computes it: the
  most (and, separately, the least) relevant pixels are replaced by noisy linear
  imputation from their neighbours, and the class probability is read again. The
  same is done for a random map, so the score says whether the map beats chance.

The user's model is never modified: the randomized network is a deep copy.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ...models import Model, as_model, preserved
from .api import _inputs, cam_result
from .core import Steps
from .registry import METHODS

ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
# Weights of the eight neighbours in ROAD's noisy linear imputation (Rong et al. 2022).
_NEIGHBOUR_WEIGHTS = (
    ((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
    ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6),
)


# -- the sanity check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SanityCheck:
    """The model-randomization sanity check of one map (see :func:`sanity_check`).

    ``map`` is the map of the trained model; ``randomized`` names the modules
    re-initialized, output first: after step ``i`` every module in
    ``randomized[:i + 1]`` is random, and ``maps[i]`` is the map then, ``rho[i]``
    its Spearman rank correlation with ``map`` (NaN where a map is constant).
    ``flagged`` is True when the map is still this similar (``rho[0] >=
    threshold``) after the output layer alone is random: then it does not explain
    the class the model learned.
    """

    method: str
    layers: tuple[str, ...]
    class_index: int | None
    map: torch.Tensor
    randomized: tuple[str, ...]
    maps: torch.Tensor
    rho: tuple[float, ...]
    threshold: float

    @property
    def flagged(self) -> bool:
        return bool(self.rho) and not math.isnan(self.rho[0]) and self.rho[0] >= self.threshold

    @property
    def warning(self) -> str | None:
        """None, or a sentence saying why this map should not be trusted to explain the class."""
        if not self.flagged:
            return None
        label = METHODS[self.method].label if self.method in METHODS else self.method
        return (f"the {label} map barely changes when the output layer {self.randomized[0]} is randomized "
                f"(rank correlation {self.rho[0]:.2f} >= {self.threshold:.2f}): it shows the image more than "
                "what the model learned about the class")


def randomizable_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules the sanity check re-initializes, output first: every module with a
    ``reset_parameters`` method, in reverse definition order (quantus's top-down order).

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> [name for name, _ in engine.randomizable_modules(cw.load_model("fashion-cnn").module)][:2]
    ['classifier.5', 'classifier.2']
    """
    found = [(name, sub) for name, sub in module.named_modules() if hasattr(sub, "reset_parameters")]
    return found[::-1]


def sanity_check(model, image, method: str = "gradcam", layer=None, target=None, *, steps: int | None = None,
                 init_seed: int = 42, threshold: float = 0.9, **options) -> SanityCheck:
    """The model parameter randomization test (Adebayo et al. 2018) of one image's map.

    A deep copy of the network has its modules re-initialized one more at a time,
    from the output layer down (:func:`randomizable_modules`; ``steps`` of them,
    all by default), each with ``torch.manual_seed(init_seed + 1)`` before its
    ``reset_parameters()`` as quantus's ``MPRT`` does; after each step the map of
    the same class (the trained model's, also when the random model predicts
    another) is computed at the same layers and compared with the trained model's
    map by Spearman's rank correlation. ``method``, ``layer``, ``target`` and the
    options are those of :func:`cam`. The user's model and random state come back unchanged.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn")
    >>> check = engine.sanity_check(model, cw.sample_image("sneaker"), "gradcam", steps=2)
    >>> check.randomized, len(check.rho), check.flagged
    (('classifier.5', 'classifier.2'), 2, False)
    """
    model = as_model(model)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not -1 <= threshold <= 1:
        raise ValueError(f"threshold must be a rank correlation between -1 and 1, got {threshold!r}")
    trained = cam_result(model, image, method, layer, target, **options)
    if isinstance(trained, list):
        raise ValueError("sanity_check takes one image; got a batch (call it once per image)")
    modules = randomizable_modules(model.module)
    if steps is None:
        steps = len(modules)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= len(modules):
        raise ValueError(f"steps must be a whole number from 1 to {len(modules)} (the randomizable modules), got {steps!r}")
    explained = trained.class_index if trained.class_index is not None else target
    layers = list(trained.layers) or None
    progress = Steps(None, options.get("cancel"))
    with preserved(model.module, model.device):
        random_module = copy.deepcopy(model.module)
    random_model = _same_model(model, random_module)
    names, maps, rho = [], [], []
    copies = dict(random_module.named_modules())
    for name, _ in modules[:steps]:
        progress.check()
        with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):  # the user's RNG stays as it was
            torch.manual_seed(init_seed + 1)
            copies[name].reset_parameters()
        randomized_map = cam_result(random_model, image, method, layers, explained, **options).map
        names.append(name)
        maps.append(randomized_map)
        rho.append(spearman(trained.map, randomized_map))
    return SanityCheck(method=trained.method, layers=trained.layers, class_index=trained.class_index, map=trained.map,
                       randomized=tuple(names), maps=torch.stack(maps), rho=tuple(rho), threshold=float(threshold))


def spearman(first: torch.Tensor, second: torch.Tensor) -> float:
    """Spearman's rank correlation of two maps' values (tied values share their mean rank);
    NaN when either map is constant.

    >>> spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 30.0, 20.0]))
    0.5
    """
    a = _ranks(first.detach().reshape(-1).double().cpu())
    b = _ranks(second.detach().reshape(-1).double().cpu())
    a, b = a - a.mean(), b - b.mean()
    denominator = float((a.square().sum() * b.square().sum()).sqrt())
    if denominator == 0:
        return float("nan")
    return round(float((a * b).sum()) / denominator, 12)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    sorted_values, order = values.sort(stable=True)
    ranks = torch.empty_like(values)
    # Ties take the mean of the ranks they span.
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_ranks = ends - (counts.double() - 1) / 2
    ranks[order] = mean_ranks[inverse]
    return ranks


def _same_model(model: Model, module: nn.Module) -> Model:
    """A :class:`Model` with ``model``'s names, preprocessing and classes around another module."""
    return Model(module, name=model.name, input_size=model.input_size, mean=model.mean, std=model.std,
                 classes=model.classes, device=model.device, weights="randomized", output=model.output)


# -- faithfulness --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faithfulness:
    """ROAD for one map and for a random map (see :func:`faithfulness`).

    ``removed`` is the fraction of pixels imputed at each point of the curves.
    ``most_relevant_first[i]`` is the class probability after the ``removed[i]``
    most relevant pixels of ``map`` are imputed (a faithful map makes it fall
    fast), ``least_relevant_first[i]`` after the least relevant are (it should
    stay up); ``random_*`` are the same for ``random_map``. ``probability`` is the
    class probability of the unchanged image. ``road`` is pytorch-grad-cam's
    ``ROADCombined``: the mean over the curve of (least-first minus most-first) / 2,
    higher is more faithful; ``random_road`` is the random map's.
    """

    method: str
    layers: tuple[str, ...]
    class_index: int
    probability: float
    map: torch.Tensor
    random_map: torch.Tensor
    removed: tuple[float, ...]
    most_relevant_first: tuple[float, ...]
    least_relevant_first: tuple[float, ...]
    random_most_relevant_first: tuple[float, ...]
    random_least_relevant_first: tuple[float, ...]

    @property
    def road(self) -> float:
        return _combined(self.least_relevant_first, self.most_relevant_first)

    @property
    def random_road(self) -> float:
        return _combined(self.random_least_relevant_first, self.random_most_relevant_first)

    @property
    def beats_chance(self) -> bool:
        return self.road > self.random_road


def faithfulness(model, image, method: str = "gradcam", layer=None, target=None, *, heatmap: torch.Tensor | None = None,
                 percentiles: Sequence[int] = ROAD_PERCENTILES, noise_seed: int = 0, **options) -> Faithfulness:
    """ROAD (Rong et al. 2022) of one image's map, next to that of a random map.

    At each percentile ``p`` of ``percentiles`` the pixels of the map (scaled to
    its peak) at or above its ``p``-th percentile are replaced by noisy linear
    imputation (each the weighted mean of its eight neighbours, plus Gaussian noise
    of 0.01 in input units), and the explained class's softmax probability is read
    again; then the same with the pixels at or below the ``(100 - p)``-th
    percentile. This is pytorch-grad-cam's ``ROADMostRelevantFirst`` /
    ``ROADLeastRelevantFirst`` with ``ClassifierOutputSoftmaxTarget``; the noise
    is drawn from ``noise_seed`` and is the same for the random map (uniform noise
    from ``noise_seed``). ``heatmap`` (H, W) scores that map instead of computing
    one; ``method``, ``layer``, ``target`` and the options are those of :func:`cam`.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn")
    >>> score = engine.faithfulness(model, cw.sample_image("sneaker"), percentiles=(50,))
    >>> score.removed, 0 <= score.most_relevant_first[0] <= 1
    ((0.5,), True)
    """
    model = as_model(model)
    percentiles = tuple(percentiles)
    if not percentiles or any(isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 100 for p in percentiles):
        raise ValueError(f"percentiles must be numbers between 0 and 100 (exclusive), got {percentiles!r}")
    if heatmap is not None:
        if not isinstance(heatmap, (torch.Tensor, np.ndarray)):
            raise TypeError(f"heatmap must be an (H, W) tensor or array like the input's, got {type(heatmap).__name__}")
        if not bool(torch.isfinite(torch.as_tensor(heatmap, dtype=torch.float32)).all()):
            raise ValueError("heatmap must be an (H, W) tensor of finite numbers; it contains NaN or infinite values")
    found = cam_result(model, image, method, layer, target, **options)
    if isinstance(found, list):
        raise ValueError("faithfulness takes one image; got a batch (call it once per image)")
    if found.class_index is None:
        raise ValueError("faithfulness needs a class to read the probability of; give target as a class index or name")
    inputs = _inputs(model, image)
    if heatmap is None:
        heatmap = found.map
    heatmap = torch.as_tensor(heatmap).detach().to("cpu", torch.float32)
    if heatmap.shape != inputs.shape[-2:]:
        raise ValueError(f"heatmap must be (H, W) = {tuple(inputs.shape[-2:])} like the input, got {tuple(heatmap.shape)}")
    peak = heatmap.max()
    shown = heatmap / peak if peak > 0 else heatmap
    random_map = torch.rand(heatmap.shape, generator=torch.Generator().manual_seed(noise_seed))
    image_cpu = inputs[0].detach().to("cpu", torch.float32)
    with preserved(model.module, model.device), torch.no_grad():
        probability = float(model.logits(inputs).float().softmax(1)[0, found.class_index])
        curves = [_road_curves(model, image_cpu, candidate, found.class_index, percentiles, noise_seed)
                  for candidate in (shown, random_map)]
    (most, least), (random_most, random_least) = curves
    return Faithfulness(method=found.method, layers=found.layers, class_index=found.class_index, probability=probability,
                        map=heatmap, random_map=random_map, removed=tuple(round(1 - p / 100, 6) for p in percentiles),
                        most_relevant_first=most, least_relevant_first=least,
                        random_most_relevant_first=random_most, random_least_relevant_first=random_least)


def _road_curves(model: Model, image: torch.Tensor, heatmap: torch.Tensor, index: int, percentiles, seed: int):
    # pytorch-grad-cam's ROADCombined draws the least-relevant-first noise before the most-relevant-first noise.
    generator = torch.Generator().manual_seed(seed)
    imputed = [_remove(image, 1 - heatmap, p, generator) for p in percentiles]
    imputed += [_remove(image, heatmap, p, generator) for p in percentiles]
    logits = model.logits(torch.stack(imputed).to(model.device))  # one pass for the whole curve
    probabilities = [float(p) for p in logits.float().softmax(1)[:, index]]
    least, most = probabilities[: len(percentiles)], probabilities[len(percentiles):]
    return tuple(most), tuple(least)


def _remove(image: torch.Tensor, heatmap: torch.Tensor, percentile, generator) -> torch.Tensor:
    threshold = np.percentile(heatmap.numpy(), percentile)
    kept = np.float32(heatmap < threshold)  # the pixels at or above the percentile are imputed
    return impute(image, torch.from_numpy(kept), generator)


def impute(image: torch.Tensor, kept: torch.Tensor, generator: torch.Generator | None = None, noise: float = 0.01) -> torch.Tensor:
    """ROAD's noisy linear imputation: the pixels of ``image`` (C, H, W) where ``kept``
    (H, W) is 0 become the weighted mean of their eight neighbours (solved jointly, so
    a removed region is filled smoothly from its border), plus Gaussian noise of
    standard deviation ``noise`` drawn from ``generator``.

    >>> image = torch.arange(9.0).reshape(1, 3, 3)
    >>> kept = torch.ones(3, 3); kept[1, 1] = 0
    >>> impute(image, kept, noise=0.0)[0, 1, 1]
    tensor(4.)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    channels, height, width = image.shape
    flat = image.reshape(channels, -1).numpy()
    known = kept.reshape(-1).numpy() > 0.5
    missing = np.flatnonzero(kept.reshape(-1).numpy() == 0)
    if missing.size == 0:
        return image.clone()
    unknown_index = np.zeros(height * width, dtype=int)
    unknown_index[missing] = np.arange(missing.size)
    rows, cols, values = [], [], []
    right = np.zeros((missing.size, channels))
    diagonal = np.ones(missing.size)
    y, x = missing // width, missing % width
    for (dy, dx), weight in _NEIGHBOUR_WEIGHTS:
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (nx >= 0) & (ny < height) & (nx < width)
        diagonal[~inside] -= weight
        ids = np.flatnonzero(inside)
        neighbours = ny[inside] * width + nx[inside]
        has_value = known[neighbours]
        right[ids[has_value]] -= weight * flat[:, neighbours[has_value]].T
        rows.append(ids[~has_value])
        cols.append(unknown_index[neighbours[~has_value]])
        values.append(np.full(int((~has_value).sum()), weight))
    rows.append(np.arange(missing.size))
    cols.append(np.arange(missing.size))
    values.append(-diagonal)
    system = coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(missing.size, missing.size)).tocsc()
    solution = torch.tensor(spsolve(system, right), dtype=torch.float).reshape(missing.size, channels)
    # Drawn exactly as the reference implementation's randn_like of the transposed solution is.
    draws = torch.empty_like(solution.t()).normal_(generator=generator)
    filled = image.reshape(channels, -1).clone()
    filled[:, torch.from_numpy(missing)] = solution.t() + noise * draws
    return filled.reshape_as(image)


def _combined(least: Sequence[float], most: Sequence[float]) -> float:
    return float(np.mean(np.float32(least)) - np.mean(np.float32(most))) / 2
