"""The image front of a maximization step (parameterization and transforms) computed without
affine_grid's and einsum's products gives the images those functions give."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnn_widgets.engine.optvis import param, transform


@pytest.mark.parametrize("size", [(152, 152), (5, 7), (64, 40), (1, 3)])
def test_the_sampling_grid_equals_affine_grids(size):
    torch.manual_seed(0)
    theta = torch.randn(6, 2, 3) * 0.3 + torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    theirs = F.affine_grid(theta, [6, 3, *size], align_corners=False)
    mine = transform._affine_grid(theta, size)
    assert mine.shape == theirs.shape and mine.is_contiguous()
    torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=0)


def test_standard_transforms_resample_as_affine_grid_and_grid_sample_do():
    torch.manual_seed(1)
    compose = transform.make_transforms("standard", (64, 64), output_size=(70, 60))
    images, draws = torch.rand(4, 3, 64, 64), torch.rand(4, compose.draws)
    mine = compose(images, draws)
    # The same matrices, resampled the plain way.
    inverse = torch.eye(3).expand(4, 3, 3)
    offset = 0
    for t in compose.transforms:
        inverse = inverse @ t.inverse(draws[:, offset:offset + t.draws])
        offset += t.draws
    canvas = compose.canvas((64, 64))
    to_canvas = torch.diag(torch.tensor([canvas[1] / 2, canvas[0] / 2, 1.0]))
    theta = (torch.diag(torch.tensor([2 / 64, 2 / 64, 1.0])) @ inverse @ to_canvas)[:, :2]
    grid = F.affine_grid(theta, [4, 3, 70, 60], align_corners=False)
    theirs = F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)


def test_color_decorrelation_equals_the_einsum_in_values_and_gradients():
    torch.manual_seed(2)
    raw = torch.randn(3, 3, 9, 11, requires_grad=True)
    mine = param.decorrelate_colors(raw)
    theirs = torch.einsum("nchw,dc->ndhw", raw, param.COLOR_CORRELATION)
    torch.testing.assert_close(mine, theirs)
    upstream = torch.randn_like(mine)
    torch.testing.assert_close(torch.autograd.grad(mine, raw, upstream)[0], torch.autograd.grad(theirs, raw, upstream)[0])
