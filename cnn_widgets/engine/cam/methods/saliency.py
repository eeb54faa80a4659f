"""Saliency (Simonyan et al., 2014): the gradient of the class score with respect to the pixels."""
from ..bases import InputGradient
from ..registry import register


class Saliency(InputGradient):
    name, label, order = "saliency", "Saliency (gradient)", 100
    reference = "Simonyan et al., Deep Inside Convolutional Networks, ICLR Workshop 2014"
    units = "|d logit / d pixel| (pixels normalized)"


register(Saliency())
