"""SmoothGrad (Smilkov et al., 2017): a noise tunnel over saliency.

:class:`NoiseTunnel` averages any input method's gradient over ``samples`` noisy copies
of each image (noise of ``noise`` times the image's range), as captum's ``NoiseTunnel``
does. Each image's noise is drawn on the CPU from ``seed`` alone, so an image gets the
same map on every device and wherever it sits in a batch.
"""
import torch

from ..bases import InputGradient
from ..core import batch_for, input_explanation, scorer, target_scores
from ..registry import CamMethod, Passes, register
from .saliency import Saliency


class NoiseTunnel(CamMethod):
    """``inner`` (an input method) averaged over noisy copies of each image."""

    uses_layer = False
    progress_unit = "noisy copies"

    def __init__(self, inner: InputGradient, name: str, label: str, order: int, reference: str = "") -> None:
        self.inner, self.name, self.label, self.order, self.reference = inner, name, label, order, reference
        self.units = f"{inner.units}, mean over noisy copies"

    def passes(self, channels, samples):
        return Passes(1 + samples, samples, counted=samples)

    def explain(self, request):
        model, inputs, options, steps = request.model, request.inputs, request.options, request.steps
        with torch.no_grad():
            logits = model.logits(inputs)
        indices, scores = target_scores(model, logits, request.target)
        score_of = scorer(request.target, indices)
        total = torch.zeros_like(inputs)
        steps.total = inputs.shape[0] * options.samples
        batch_size = batch_for(inputs, options.batch_size)
        for i in range(inputs.shape[0]):
            generator = torch.Generator(device="cpu").manual_seed(options.seed)
            image = inputs[i : i + 1].detach()
            sigma = options.noise * float(image.max() - image.min())
            for start in range(0, options.samples, batch_size):
                count = min(batch_size, options.samples - start)
                draws = torch.randn((count, *image.shape[1:]), generator=generator).to(image.device, image.dtype)
                noisy = (image + sigma * draws).requires_grad_(True)
                with steps.watching():
                    grads, _ = self.inner.gradient(model, noisy, lambda out, i=i: score_of(out, i))
                total[i] += grads.sum(dim=0)
                steps.advance(count)
        return input_explanation(total / options.samples, logits, indices, scores)


register(NoiseTunnel(Saliency(), "smoothgrad", "SmoothGrad", 110, "Smilkov et al., SmoothGrad, arXiv:1706.03825"))
