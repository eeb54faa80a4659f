"""Snapshots of a model while it trains: what a training monitor shows at one step.

The training loop must not wait, and its model must not be touched, so the work
is split in two:

- :func:`copy_weights` runs on the training thread: one ``detach().clone()`` of
  every parameter and buffer (the predictions and Grad-CAM need the whole network),
  nothing else. It does not consume random numbers, change ``requires_grad``,
  the mode, ``.grad`` or the optimizer.
- :class:`ModelCopy` is a private copy of the network, made once; in another
  thread it loads a copied state and computes the snapshot (first layer's filters,
  feature maps of one image, top predictions, Grad-CAM). All of it runs on the
  copy, inside the copy's own :func:`~cnn_widgets.models.preserved`, so it never
  takes the user's model's lock.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..models import Model, as_model
from .activations import feature_maps
from .cam import Prediction, cam_result
from .weights import filter_weights


def copy_weights(model) -> dict[str, torch.Tensor]:
    """A detached copy of the model's parameters and buffers (its ``state_dict``), for a snapshot.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> state = engine.copy_weights(model)
    >>> state["features.0.weight"].data_ptr() != model.module.features[0].weight.data_ptr()
    True
    """
    module = as_model(model).module
    with torch.no_grad():
        return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


@dataclass
class TrainingSnapshot:
    """What the model computes at one training step, for one fixed image.

    ``filters``: the first conv layer's kernels (out, in, kh, kw); ``maps``: the
    feature maps (C, H, W) of the image at ``layer``; ``predictions``: the top
    classes; ``cam``: the Grad-CAM map (H, W) in [0, 1] of the top class (all zeros,
    ``cam_flat``, while no part of the image raises that class's score yet).
    """

    step: int
    filters: torch.Tensor
    filters_layer: str
    layer: str
    maps: torch.Tensor
    predictions: list[Prediction]
    cam: torch.Tensor
    cam_class: str
    cam_flat: bool


class ModelCopy:
    """A private copy of a network that computes :class:`TrainingSnapshot` from copied weights.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets import engine
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> private = engine.ModelCopy(model, cw.sample_image("bag"))
    >>> private.layer
    'block2_conv2'
    >>> private = engine.ModelCopy(model, cw.sample_image("bag"), layer="block2_conv1")
    >>> snapshot = private.snapshot(0, engine.copy_weights(model))
    >>> snapshot.filters.shape, snapshot.maps.shape[0], len(snapshot.predictions), snapshot.cam.shape
    (torch.Size([32, 1, 3, 3]), 64, 3, torch.Size([28, 28]))
    """

    def __init__(self, model, image, layer=None, k: int = 3) -> None:
        original = as_model(model)
        module = copy.deepcopy(original.module)
        self.model = Model(
            module,
            name=original.name,
            input_size=original.input_size,
            mean=original.mean,
            std=original.std,
            classes=original.classes,
            device=original.device,
            weights=original.weights,
            output=original.output,
        )
        self.filters_layer = self.model.layers[0].name
        # By default a middle conv layer: its maps are large enough to see and already past edges.
        middle = self.model.layers[len(self.model.layers) // 2]
        self.layer = self.model.layer(layer).name if layer is not None else middle.name
        self.inputs = self.model.preprocess(image)
        self.k = k

    def snapshot(self, step: int, state: dict[str, torch.Tensor]) -> TrainingSnapshot:
        """Load ``state`` (from :func:`copy_weights`) into the copy and compute what it shows."""
        with torch.no_grad():
            self.model.module.load_state_dict(state)
        maps = feature_maps(self.model, self.inputs, self.layer, cache=False)[self.layer]
        result = cam_result(self.model, self.inputs, "gradcam", k=self.k)
        result = result[0] if isinstance(result, list) else result  # a batch of one image
        return TrainingSnapshot(
            step=step,
            filters=filter_weights(self.model, self.filters_layer),
            filters_layer=self.filters_layer,
            layer=self.layer,
            maps=maps,
            predictions=list(result.top),
            cam=result.map,
            cam_class=result.class_name or "",
            cam_flat=result.flat,
        )
