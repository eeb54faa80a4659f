"""Grad-CAM (Selvaraju et al., 2017): channels weighted by their mean gradient."""
from ..bases import GradientCam
from ..registry import register


class GradCam(GradientCam):
    name, label, order = "gradcam", "Grad-CAM", 10
    reference = "Selvaraju et al., Grad-CAM, ICCV 2017"
    units = "logit per position: activation times mean gradient"

    def combine(self, activation, grad):
        weights = grad.mean(dim=(2, 3), keepdim=True)
        return (weights * activation).sum(dim=1)


register(GradCam())
