"""Eigen-CAM (Muhammad and Yeasin, 2020): the layer's activation projected on its first
principal component. It needs no gradients and does not depend on the class: every class
of an image gets the same map. SVD leaves the component's sign open; it is chosen so that
the larger extreme is positive (as pytorch-grad-cam's sign-corrected projection does), so
maps are the same on every device."""
import torch

from ..core import captured, layer_explanation, target_scores
from ..registry import CamMethod, Passes, register


class EigenCam(CamMethod):
    name, label, order = "eigencam", "Eigen-CAM (class-agnostic)", 70
    needs_gradients = False
    reference = "Muhammad and Yeasin, Eigen-CAM, IJCNN 2020"
    units = "activation units: first principal component"

    def passes(self, channels, samples):
        return Passes(1, 0)

    def explain(self, request):
        model, inputs = request.model, request.inputs
        with torch.no_grad():
            with captured(request.layers) as tensors:
                logits = model.logits(inputs)
            indices, scores = target_scores(model, logits, request.target)
            raws = [first_component(activation) for activation in tensors]
        return layer_explanation(raws, inputs.shape[-2:], logits, indices, scores)


def first_component(activation: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, h, w): each image's positions, centered over positions, projected
    on their first right singular vector (computed per image, in float64 on the CPU)."""
    count, channels, height, width = activation.shape
    maps = []
    for image in activation.detach().to("cpu", torch.float64):
        positions = image.reshape(channels, -1).T
        positions = positions - positions.mean(dim=0)
        _, _, vh = torch.linalg.svd(positions, full_matrices=False)
        projection = positions @ vh[0]
        if projection.min().abs() > projection.max().abs():
            projection = -projection
        maps.append(projection.reshape(height, width))
    return torch.stack(maps).to(activation.device, activation.dtype)


register(EigenCam())
