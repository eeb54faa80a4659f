"""The two families most methods belong to, as in pytorch-grad-cam's ``BaseCAM`` and
torchcam's ``_get_weights``: a method of a family only says how it combines.

- :class:`GradientCam`: one forward and one backward pass, stopping at the layer;
  the method combines the layer's activation and the gradient of the class score
  into a low-resolution map (:meth:`GradientCam.combine`).
- :class:`InputGradient`: the gradient of the class score with respect to the
  pixels, with the method's own ReLUs (:meth:`InputGradient.relus`).
"""
from __future__ import annotations

import contextlib

import torch

from .core import (
    Explanation,
    Request,
    captured,
    gradient_or_zeros,
    input_explanation,
    layer_explanation,
    target_scores,
)
from .registry import CamMethod


class GradientCam(CamMethod):
    """A layer's activation A (N, C, h, w) weighted by the gradient g of the class score."""

    uses_layer = True

    def combine(self, activation: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """(N, C, h, w) activation and gradient -> the signed low-resolution map (N, h, w)."""
        raise NotImplementedError

    def explain(self, request: Request) -> Explanation:
        model, inputs = request.model, request.inputs
        with captured(request.layers) as tensors:
            logits = model.logits(inputs)
        indices, scores = target_scores(model, logits, request.target)
        if scores.requires_grad:
            grads = torch.autograd.grad(scores.sum(), tensors, allow_unused=True)
        else:  # the output does not depend on the layer at all
            grads = [None] * len(tensors)
        raws = []
        for activation, grad in zip(tensors, grads):
            activation = activation.detach().float()  # maps in float32 for float16/bfloat16 models too
            raws.append(self.combine(activation, torch.zeros_like(activation) if grad is None else grad.float()))
        return layer_explanation(raws, inputs.shape[-2:], logits, indices, scores)


class InputGradient(CamMethod):
    """d score / d pixels, through the ReLUs :meth:`relus` gives (plain ones by default)."""

    uses_layer = False

    def relus(self):
        """The block the forward pass runs in (guided backpropagation overrides the ReLUs)."""
        return contextlib.nullcontext()

    def gradient(self, model, pixels: torch.Tensor, score) -> tuple[torch.Tensor, torch.Tensor]:
        """(d score / d pixels, logits) for ``pixels`` that require grad; ``score(logits)``
        gives one score per image."""
        with self.relus():
            logits = model.logits(pixels)
            return gradient_or_zeros(score(logits), pixels), logits

    def explain(self, request: Request) -> Explanation:
        model = request.model
        pixels = request.inputs.detach().clone().requires_grad_(True)
        found = {}

        def score(logits):
            found["indices"], found["scores"] = target_scores(model, logits, request.target)
            return found["scores"]

        grads, logits = self.gradient(model, pixels, score)
        return input_explanation(grads, logits, found["indices"], found["scores"])
