"""Grad-CAM++ (Chattopadhay et al., 2018): channels weighted by positive gradients with
per-pixel alphas, the closed form of eq. 19 (exponential of the score)."""
import torch

from ..bases import GradientCam
from ..registry import register


class GradCamPlusPlus(GradientCam):
    name, label, order = "gradcam++", "Grad-CAM++", 20
    reference = "Chattopadhay et al., Grad-CAM++, WACV 2018"
    units = "activation times Grad-CAM++ weight, per position"

    def combine(self, activation, grad):
        grad2 = grad.pow(2)
        denominator = 2 * grad2 + activation.sum(dim=(2, 3), keepdim=True) * grad2 * grad
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alphas = torch.where(denominator != 0, grad2 / safe, torch.zeros_like(grad2))
        weights = (alphas * grad.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
        return (weights * activation).sum(dim=1)


register(GradCamPlusPlus())
