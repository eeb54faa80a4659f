"""Guided backpropagation (Springenberg et al., 2015): the pixel gradient through ReLUs
that pass back only positive gradients where they were active."""
from ..bases import InputGradient
from ..guided_relu import guided_relus
from ..registry import register


class GuidedBackprop(InputGradient):
    name, label, order = "guided_backprop", "Guided backprop", 120
    reference = "Springenberg et al., Striving for Simplicity, ICLR Workshop 2015"
    units = "|guided d logit / d pixel|"

    def relus(self):
        return guided_relus()


register(GuidedBackprop())
