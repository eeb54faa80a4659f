"""Activation maximization shows what each filter wants: on the shipped model, the
image made for a filter excites that filter more than the images made for the
other filters do (compared column by column: one filter across the images, since
filters differ in scale), with the default settings, on every layer."""
from __future__ import annotations

import pytest
import torch

from cnn_widgets.engine.activations import record_activations
from cnn_widgets.engine.optvis import default_objective, maximize, middle_unit_window
from cnn_widgets.engine.optvis.transform import standard_transforms
from cnn_widgets.models import preserved

pytestmark = pytest.mark.usefixtures("one_thread")

FILTERS = list(range(8))
WIDGET_STEPS = 128  # the ActivationMaximization widget's default


def own_image_table(model, layer: str, images: torch.Tensor, objective: str = "channel") -> torch.Tensor:
    """table[i, j]: filter j's response to image i (no transforms), as ``objective`` measures
    it: "channel", the mean conv output over the map; "neuron", the middle unit's output."""
    info = model.layer(layer)
    with preserved(model.module, model.device), torch.no_grad():
        acts = record_activations(model, model.normalize(images), [info])[info.path][:, FILTERS]
    if objective == "neuron":
        height, width = acts.shape[-2:]
        return acts[:, :, height // 2, width // 2]
    return acts.flatten(2).mean(2)


# Every layer, measured with the objective the default settings use (default_objective): the
# filter's mean conv output before its ReLU, except at block1_conv1. That conv reads the pixels
# directly, so its mean is linear in them: the sum of the kernel's weights times the mean
# brightness, plus border terms. Its best image was flat, bright or dark by the sign of that
# sum, and filters whose sums share a sign wanted nearly the same image (measured at 128 and
# 512 steps: filters 2, 3 and 6 of 8 lost; the ReLU's output instead left 4 of 8 with no
# gradient from the gray start). So the default there is the middle unit of each filter's map,
# which sees 3x3 pixels and is best excited by the kernel's own pattern; its table reads the
# middle unit too. Measured (fourier and pixel, 128 steps): all 8 filters win.
@pytest.mark.parametrize("layer", ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2"])
def test_each_filters_own_image_excites_it_most(fashion, layer):
    images = maximize(fashion, layer, FILTERS, steps=WIDGET_STEPS)
    table = own_image_table(fashion, layer, images, default_objective(fashion, layer))
    others = table.clone()
    others.fill_diagonal_(float("-inf"))
    losing = [j for j in FILTERS if not table[j, j] > others[:, j].max()]
    assert not losing, f"{layer}: another filter's image excites filters {losing} more than their own"


def test_first_conv_images_show_their_kernels_pattern_in_the_middle_units_window(fashion):
    # What the default shows at the first conv: the 3x3 pixels the middle unit sees are
    # bright where the kernel's weights are positive and dark where they are negative.
    kernels = fashion.module.get_submodule(fashion.layer("block1_conv1").path).weight[FILTERS, 0].detach()
    top, left, height, width = middle_unit_window(fashion, "block1_conv1", 28)
    seen = maximize(fashion, "block1_conv1", FILTERS, steps=WIDGET_STEPS)[:, 0, top:top + height, left:left + width]
    # A weak weight can lose its pixel to its neighbours: the default Fourier image couples
    # pixels, and 128 steps do not flip it (measured: weights -0.04 and -0.01 got bright pixels;
    # the pixel parameterization gets all 72 within 0.03 of the pattern).
    clear = kernels.abs() > 0.05
    assert clear.sum() >= 60
    assert torch.equal((seen > 0.5)[clear], (kernels > 0)[clear])
    assert ((seen - 0.5).abs()[clear] > 0.4).all(), "the pattern's pixels should be near black or white"


def test_the_mean_objective_asked_for_at_the_first_conv_makes_flat_images(fashion):
    # Why the first conv's default is not the mean: asked for explicitly, its images are
    # bright or dark as their kernel sums, whatever the kernel's pattern.
    info = fashion.layer("block1_conv1")
    sums = fashion.module.get_submodule(info.path).weight[FILTERS].sum((1, 2, 3))
    images = maximize(fashion, "block1_conv1", FILTERS, steps=WIDGET_STEPS, objective="channel")
    brightness = images[:, :, 3:-3, 3:-3].mean((1, 2, 3))  # inside the border
    clear = [j for j in FILTERS if abs(sums[j]) > 0.1]
    assert len(clear) >= 4
    assert [bool(brightness[j] > 0.5) for j in clear] == [bool(sums[j] > 0) for j in clear], (sums, brightness)


def test_transforms_scale_with_the_image_and_stay_off_on_small_inputs():
    small, medium, large = (standard_transforms((s, s)) for s in (28, 64, 256))
    assert small == []
    assert [repr(t) for t in medium][:2] == ["pad(6)", "jitter(4.0)"]
    assert [repr(t) for t in large][:2] == ["pad(24)", "jitter(16.0)"]


def test_maco_images_have_the_right_shape_range_and_reproduce(fashion):
    first = maximize(fashion, "block2_conv1", [0, 3], steps=8, size=24, param="maco")
    again = maximize(fashion, "block2_conv1", [0, 3], steps=8, size=24, param="maco")
    other = maximize(fashion, "block2_conv1", [0, 3], steps=8, size=24, param="maco", seed=1)
    assert first.shape == (2, 1, 24, 24)
    assert 0 <= first.min().item() and first.max().item() <= 1
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_maco_keeps_the_magnitude_and_raises_the_objective(fashion):
    from cnn_widgets.engine.optvis.param import maco_image
    from cnn_widgets.engine.optvis.streams import ImageStreams

    start = maximize(fashion, "block3_conv1", FILTERS, steps=0, param="maco")
    final = maximize(fashion, "block3_conv1", FILTERS, steps=64, param="maco")
    gains = own_image_table(fashion, "block3_conv1", final).diagonal() - own_image_table(fashion, "block3_conv1", start).diagonal()
    assert (gains > 0).all(), f"the activation did not rise for filters {[j for j in FILTERS if gains[j] <= 0]}"
    # Only the phase is a parameter (one per image, channel and rfft frequency), none for the magnitude.
    image = maco_image(ImageStreams(0, [0, 1]), channels=1, size=(16, 16))
    assert [tuple(t.shape) for t in image.parameters] == [(1, 16, 9), (1, 16, 9)]
    assert not image.magnitude.requires_grad


def test_maco_leaves_the_model_unchanged(user_model):
    from conftest import assert_unchanged, snapshot

    import cnn_widgets as cw

    before = snapshot(user_model)
    maximize(cw.load_model(user_model, input_size=(3, 32, 32)), "features.4", [0, 3], steps=3, size=32, param="maco")
    assert_unchanged(user_model, before)


def test_the_transparency_map_shows_where_the_image_mattered(fashion):
    images, where = maximize(fashion, "block2_conv1", [0, 3], steps=16, size=24, param="maco", transparency=True)
    plain = maximize(fashion, "block2_conv1", [0, 3], steps=16, size=24, param="maco")
    assert torch.equal(images, plain), "asking for the map must not change the images"
    assert where.shape == (2, 1, 24, 24)
    assert torch.allclose(where.flatten(1).max(1).values, torch.ones(2))
    assert where.min() >= 0 and (where.flatten(1).std(1) > 0.01).all(), "the map should vary over the image"


def boot() -> torch.Tensor:
    import numpy as np

    from cnn_widgets.images import sample_image

    return torch.from_numpy(np.asarray(sample_image("ankle_boot").convert("L"), dtype=np.float32) / 255)[None, None]


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_accentuation_starts_from_the_image_and_stays_close(fashion, param):
    image = boot()
    unchanged = maximize(fashion, "block2_conv2", [0, 5], steps=0, param=param, start=image)
    assert unchanged.shape == (2, 1, 28, 28)
    assert (unchanged - image).abs().max() < 0.01, "with no steps the picture is the start image"
    loose = maximize(fashion, "block2_conv2", [0, 5], steps=32, param=param, start=image)
    close = maximize(fashion, "block2_conv2", [0, 5], steps=32, param=param, start=image, closeness=50.0)
    assert 0 <= close.min() and close.max() <= 1
    assert torch.equal(close, maximize(fashion, "block2_conv2", [0, 5], steps=32, param=param, start=image, closeness=50.0))
    change = lambda images: (images - image).pow(2).flatten(1).mean(1)  # noqa: E731
    assert (change(close) < change(loose)).all(), "the closeness penalty must keep the image nearer the start"
    table = own_image_table(fashion, "block2_conv2", torch.cat([unchanged, close]))
    gains = table[2:, [0, 5]].diagonal() - table[:2, [0, 5]].diagonal()
    assert (gains > 0).all(), "the filter must respond more to the accentuated image than to the start"


def test_accentuation_errors_name_the_problem(fashion):
    with pytest.raises(ValueError, match="closeness needs a start"):
        maximize(fashion, "block2_conv2", [0], steps=1, closeness=1.0)
    with pytest.raises(ValueError, match="start must be images of shape"):
        maximize(fashion, "block2_conv2", [0], steps=1, start=torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match="MaCo"):
        maximize(fashion, "block2_conv2", [0], steps=1, start=boot(), param="maco")
