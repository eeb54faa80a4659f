"""What activation maximization maximizes: objectives that add and scale like numbers.

An objective turns what a forward pass recorded into one score per image
(higher is better), so ``channel(layer, filters) - 100 * diversity(layer)`` is
an objective too, as in Lucent. Objectives are batched: with a list of
filters, image i is scored on ``filters[i]``, so one run can visualize a whole
layer. Conv activations are the conv's own output (before its ReLU), so a
filter that starts dead still has a gradient to climb. Scores read the
forward pass through a :class:`~cnn_widgets.engine.optvis.forward.Recording`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..._choices import check_int
from .forward import Recording


class Objective:
    """A score per image to maximize, with the layers it reads and whether it needs
    the network's final output. Objectives add, subtract and scale like numbers.

    >>> total = channel("block1_conv1", [0, 1]) - 2 * diversity("block1_conv1")
    >>> total.layers, total.needs_output
    (('block1_conv1',), False)
    """

    def __init__(self, score: Callable[[Recording], torch.Tensor], *, layers: Sequence = (), needs_output: bool = False, name: str = "objective") -> None:
        self.score = score
        self.layers = tuple(dict.fromkeys(layers))
        self.needs_output = bool(needs_output)
        self.name = name

    def __call__(self, recording: Recording) -> torch.Tensor:
        return self.score(recording)

    def _combine(self, other, op: Callable, symbol: str) -> "Objective":
        if isinstance(other, Objective):
            return Objective(
                lambda r: op(self(r), other(r)),
                layers=self.layers + other.layers,
                needs_output=self.needs_output or other.needs_output,
                name=f"({self.name} {symbol} {other.name})",
            )
        if isinstance(other, (int, float)):
            return Objective(lambda r: op(self(r), other), layers=self.layers, needs_output=self.needs_output, name=f"({self.name} {symbol} {other})")
        return NotImplemented

    def __add__(self, other):
        return self._combine(other, lambda a, b: a + b, "+")

    def __radd__(self, other):
        return self._combine(other, lambda a, b: b + a, "+")

    def __sub__(self, other):
        return self._combine(other, lambda a, b: a - b, "-")

    def __rsub__(self, other):
        return self._combine(other, lambda a, b: b - a, "-")

    def __mul__(self, other):
        if isinstance(other, Objective):
            raise TypeError("objectives can be multiplied by numbers only")
        return self._combine(other, lambda a, b: a * b, "*")

    __rmul__ = __mul__

    def __truediv__(self, other):
        if not isinstance(other, (int, float)):
            raise TypeError("objectives can be divided by numbers only")
        return self * (1.0 / other)

    def __neg__(self):
        return self * -1

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _per_image(values, indices: range) -> torch.Tensor:
    """``values`` (one int for every image, or one per image of the whole batch) for the chunk."""
    if isinstance(values, int):
        return torch.full((len(indices),), values, dtype=torch.long)
    return torch.as_tensor([values[i] for i in indices], dtype=torch.long)


def channel(layer, filters: "int | Sequence[int]") -> Objective:
    """The mean activation of a filter over all positions (image i: ``filters[i]``).

    >>> acts = torch.arange(8.0).view(2, 2, 1, 2)
    >>> channel("conv", [1, 0])(Recording({"conv": acts})).tolist()
    [2.5, 4.5]
    """

    def score(recording: Recording) -> torch.Tensor:
        index = _per_image(filters, recording.indices)
        return recording.channels(layer, index).flatten(1).mean(1)

    return Objective(score, layers=[layer], name=f"channel({layer})")


def neuron(layer, filters: "int | Sequence[int]", position: tuple[int, int] | None = None, visible: tuple[float, float] = (1.0, 1.0)) -> Objective:
    """The activation of a filter at one position (y, x) of the layer's output
    (the center by default).

    ``visible``: the fraction (height, width) of the network input that is the
    image itself, centered (the rest is padding added by transforms); ``position``
    is then counted on the grid of the image, not of the padded input.

    >>> rec = Recording({"conv": torch.arange(9.0).view(1, 1, 3, 3)})
    >>> neuron("conv", 0)(rec).tolist(), neuron("conv", 0, (0, 2))(rec).tolist()
    ([4.0], [2.0])
    """
    if position is not None:
        if isinstance(position, (str, bytes)) or not hasattr(position, "__len__") or len(position) != 2:
            raise ValueError(f"position must be (row, column) on the layer's output grid, got {position!r}")
        position = tuple(check_int("position (row, column)", value, low=0) for value in position)

    def score(recording: Recording) -> torch.Tensor:
        maps = recording.channels(layer, _per_image(filters, recording.indices))
        height, width = maps.shape[-2:]
        if position is None:
            y, x = height // 2, width // 2
        else:
            y = position[0] + (height - round(height * visible[0])) // 2
            x = position[1] + (width - round(width * visible[1])) // 2
        if not (0 <= y < height and 0 <= x < width):
            rows, columns = round(height * visible[0]), round(width * visible[1])
            raise ValueError(f"neuron position {tuple(position)} is outside the layer's output grid for this image "
                             f"(valid: rows 0-{rows - 1}, columns 0-{columns - 1})")
        return maps[:, y, x]

    return Objective(score, layers=[layer], name=f"neuron({layer})")


def class_logit(classes: "int | Sequence[int]") -> Objective:
    """The network's output (logit) for a class (image i: ``classes[i]``); needs the full forward pass.

    >>> rec = Recording(output=torch.tensor([[1.0, 5.0], [3.0, 4.0]]), indices=range(2))
    >>> class_logit([1, 0])(rec).tolist()
    [5.0, 3.0]
    """

    def score(recording: Recording) -> torch.Tensor:
        logits = recording.output
        index = _per_image(classes, recording.indices).to(logits.device)
        return logits[torch.arange(logits.shape[0], device=logits.device), index]

    return Objective(score, needs_output=True, name="class_logit")


def diversity(layer, groups: Sequence[int] | None = None) -> Objective:
    """How much each image looks like the others of its group, as seen by ``layer``:
    the mean cosine similarity of their Gram matrices (style), as in Lucent. Subtract
    it (``channel(...) - weight * diversity(...)``) to get different images for one filter.

    ``groups`` labels each image of the batch (e.g. its filter); None puts all in one group.

    >>> rec = Recording({"conv": torch.ones(2, 3, 2, 2)})
    >>> [round(v, 4) for v in diversity("conv")(rec).tolist()]
    [0.5, 0.5]
    """

    def score(recording: Recording) -> torch.Tensor:
        acts = recording.activation(layer)
        count, channels = acts.shape[:2]
        flat = acts.reshape(count, channels, -1)
        grams = F.normalize((flat @ flat.transpose(1, 2)).reshape(count, -1), dim=1)
        similarity = grams @ grams.T
        labels = _per_image(0 if groups is None else groups, recording.indices).to(acts.device)
        same = (labels[:, None] == labels[None, :]) & ~torch.eye(count, dtype=torch.bool, device=acts.device)
        group_size = (labels[:, None] == labels[None, :]).sum(1)
        return (similarity * same).sum(1) / group_size

    return Objective(score, layers=[layer], name=f"diversity({layer})")
