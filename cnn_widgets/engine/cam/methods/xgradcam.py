"""XGrad-CAM (Fu et al., 2020): each channel weighted by its gradient averaged with the
activation's own spatial distribution, sum(g * A) / sum(A)."""
import torch

from ..bases import GradientCam
from ..registry import register


class XGradCam(GradientCam):
    name, label, order = "xgradcam", "XGrad-CAM", 60
    reference = "Fu et al., Axiom-based Grad-CAM, BMVC 2020"
    units = "logit per position: activation times XGrad-CAM weight"

    def combine(self, activation, grad):
        total = activation.sum(dim=(2, 3), keepdim=True)
        safe = torch.where(total != 0, total, torch.ones_like(total))
        weights = torch.where(total != 0, grad * activation / safe, torch.zeros_like(grad)).sum(dim=(2, 3), keepdim=True)
        return (weights * activation).sum(dim=1)


register(XGradCam())
