"""Layer-CAM (Jiang et al., 2021): each position weighted by its own positive gradient."""
from ..bases import GradientCam
from ..registry import register


class LayerCam(GradientCam):
    name, label, order = "layercam", "Layer-CAM", 30
    reference = "Jiang et al., LayerCAM, IEEE TIP 2021"
    units = "logit per position: activation times positive gradient"

    def combine(self, activation, grad):
        return (grad.clamp(min=0) * activation).sum(dim=1)


register(LayerCam())
