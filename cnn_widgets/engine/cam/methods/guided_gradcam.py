"""Guided Grad-CAM (Selvaraju et al., 2017): guided backpropagation times the Grad-CAM
map, as captum's ``GuidedGradCam`` composes them."""
import dataclasses

from ..core import input_explanation
from ..registry import CamMethod, Passes, register
from .gradcam import GradCam
from .guided_backprop import GuidedBackprop


class Composition(CamMethod):
    """An input method's attribution, per pixel, times a layer method's map of the same class."""

    uses_layer = True

    def __init__(self, pixels, weighting, name: str, label: str, order: int, reference: str = "") -> None:
        self.pixels, self.weighting = pixels, weighting
        self.name, self.label, self.order, self.reference = name, label, order, reference
        self.units = f"{pixels.units} times {weighting.label} map"

    def passes(self, channels, samples):
        first, second = self.pixels.passes(channels, samples), self.weighting.passes(channels, samples)
        return Passes(first.forward + second.forward, first.backward + second.backward)

    def explain(self, request):
        pixels = self.pixels.explain(request)
        same_class = pixels.indices if pixels.indices[0] is not None else request.target
        weighting = self.weighting.explain(dataclasses.replace(request, target=same_class))
        attribution = pixels.attribution * weighting.map.unsqueeze(1)
        return input_explanation(attribution, pixels.logits, pixels.indices, pixels.scores)


register(Composition(GuidedBackprop(), GradCam(), "guided_gradcam", "Guided Grad-CAM", 130,
                     "Selvaraju et al., Grad-CAM, ICCV 2017"))
