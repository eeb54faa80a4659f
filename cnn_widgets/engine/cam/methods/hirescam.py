"""HiResCAM (Draelos and Carin, 2020): activation times gradient, element by element,
summed over channels, so the map shows exactly which positions raised the score
(Grad-CAM's channel means can blur that)."""
from ..bases import GradientCam
from ..registry import register


class HiResCam(GradientCam):
    name, label, order = "hirescam", "HiResCAM", 50
    reference = "Draelos and Carin, Use HiResCAM instead of Grad-CAM, arXiv:2011.08891"
    units = "logit per position: activation times gradient"

    def combine(self, activation, grad):
        return (grad * activation).sum(dim=1)


register(HiResCam())
