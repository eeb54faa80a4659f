"""Score-CAM (Wang et al., 2020), as in Algorithm 1 of the paper: each channel of the
layer, upsampled and scaled to [0, 1], masks the input; the channel's weight is the
softmax, over the channels, of the class logit for its masked input (the paper subtracts
the logit of a baseline input first, which a softmax over channels cancels). pytorch-grad-cam
and torchcam compute the same. Where the masked logits are all equal (a model whose score
does not depend on its input), no channel is evidence and the map is zero, not the mean of
the channels a uniform softmax would give. Forward passes only, one per channel."""
import torch
import torch.nn.functional as F

from ..core import batch_for, captured, layer_explanation, scale_unit, scorer, target_scores
from ..registry import CamMethod, Passes, register


class ScoreCam(CamMethod):
    name, label, order = "scorecam", "Score-CAM", 40
    needs_gradients = False
    progress_unit = "masked passes (one per channel)"
    reference = "Wang et al., Score-CAM, CVPR Workshops 2020"
    units = "activation units: softmax-weighted channels"

    def passes(self, channels, samples):
        return Passes(1 + sum(channels), 0, counted=sum(channels))

    def explain(self, request):
        model, inputs, steps = request.model, request.inputs, request.steps
        batch_size = batch_for(inputs, request.options.batch_size)
        size = tuple(inputs.shape[-2:])
        with torch.no_grad():
            with captured(request.layers) as tensors:
                logits = model.logits(inputs)
            indices, scores = target_scores(model, logits, request.target)
            score_of = scorer(request.target, indices)
            steps.total = inputs.shape[0] * sum(t.shape[1] for t in tensors)
            raws = []
            for activation in tensors:
                count, channels = activation.shape[:2]
                masked_scores = torch.zeros(count, channels, device=activation.device, dtype=torch.float32)
                for i in range(count):
                    for start in range(0, channels, batch_size):
                        chunk = activation[i, start : start + batch_size].unsqueeze(1)
                        masks = scale_unit(F.interpolate(chunk, size=size, mode="bilinear", align_corners=False))
                        with steps.watching():
                            values = score_of(model.logits(inputs[i : i + 1] * masks), i)
                        masked_scores[i, start : start + chunk.shape[0]] = values.float()
                        steps.advance(chunk.shape[0])
                weights = masked_scores.softmax(dim=1)
                uniform = (masked_scores.amax(dim=1, keepdim=True) == masked_scores.amin(dim=1, keepdim=True)) & (channels > 1)
                weights = torch.where(uniform, torch.zeros_like(weights), weights)
                raws.append((weights[:, :, None, None] * activation.detach().float()).sum(dim=1))
        return layer_explanation(raws, size, logits, indices, scores)


register(ScoreCam())
