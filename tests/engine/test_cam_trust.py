"""How far to trust a map (issue 13): the sanity check and ROAD, against the reference implementations.

The sanity check equals quantus's MPRT (cascading, top-down, Spearman) on the same
inputs; ROAD equals pytorch-grad-cam's ROADCombined with the same noise; and on the
shipped model the two checks tell the methods apart the way the papers say they should.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from model_state import assert_unchanged, make_user_model, snapshot

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.engine.cam.trust import ROAD_PERCENTILES, impute, randomizable_modules, spearman
from cnn_widgets.models.fashion_cnn import WEIGHTS_FILE

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shipped():
    if not WEIGHTS_FILE.exists():
        pytest.skip("the shipped fashion-cnn weights are not trained yet")
    return cw.load_model("fashion-cnn", device="cpu")


@pytest.fixture(scope="module")
def images(shipped):
    from cnn_widgets.models.datasets import load_fashion_mnist

    try:
        pictures, labels = load_fashion_mnist("test")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return shipped.normalize(pictures[:4].float().div(255).unsqueeze(1)), labels[:4]


# -- the sanity check ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam", "guided_backprop"])
def test_sanity_check_equals_quantus_mprt(shipped, images, method):
    quantus = pytest.importorskip("quantus")
    inputs, _ = images
    checks = [engine.sanity_check(shipped, inputs[i], method) for i in range(len(inputs))]
    classes = np.array([check.class_index for check in checks])

    def explain(model, inputs, targets, **kwargs):
        wrapped = cw.load_model(model, input_size=shipped.input_size, mean=shipped.mean, std=shipped.std,
                                classes=shipped.classes, device="cpu")
        maps = engine.cam(wrapped, torch.as_tensor(inputs), method, layer=checks[0].layers or None, target=list(targets))
        return maps.unsqueeze(1).numpy()

    metric = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True)
    scores = metric(model=shipped.module, x_batch=inputs.numpy(), y_batch=classes,
                    a_batch=np.stack([check.map.unsqueeze(0).numpy() for check in checks]),
                    explain_func=explain, device="cpu", batch_size=len(inputs))
    names = [name for name in scores if name != "original"]
    assert tuple(names) == checks[0].randomized
    assert scores["original"] == pytest.approx([1.0] * len(inputs), abs=1e-6)  # our map is what quantus computes
    for step, name in enumerate(names):
        ours = [check.rho[step] for check in checks]
        np.testing.assert_allclose(ours, scores[name], atol=1e-5, equal_nan=True, err_msg=f"step {step} ({name})")


def test_the_randomized_map_comes_from_a_copy_and_the_model_is_unchanged(shipped):
    image = cw.sample_image("sneaker")
    before = engine.cam(shipped, image)
    state = snapshot(shipped.module)
    check = engine.sanity_check(shipped, image, steps=2)
    assert_unchanged(shipped.module, state)
    torch.testing.assert_close(engine.cam(shipped, image), before, rtol=0, atol=0)
    torch.testing.assert_close(check.map, before, rtol=0, atol=0)
    assert check.maps.shape == (2, 28, 28) and check.randomized == ("classifier.5", "classifier.2")
    assert check.class_index == engine.cam_result(shipped, image).class_index


def test_guided_backprop_is_flagged_and_gradcam_is_not_on_the_shipped_model(shipped):
    image = cw.sample_image("sneaker")
    guided = engine.sanity_check(shipped, image, "guided_backprop", steps=1)
    gradcam = engine.sanity_check(shipped, image, "gradcam", steps=1)
    assert guided.rho[0] > 0.95 and guided.flagged and "guided" in guided.warning.lower()
    assert gradcam.rho[0] < 0.5 and not gradcam.flagged and gradcam.warning is None


def test_spearman_is_the_rank_correlation_with_mean_ranks_for_ties():
    scipy_stats = pytest.importorskip("scipy.stats")
    generator = torch.Generator().manual_seed(3)
    a = torch.randint(0, 5, (200,), generator=generator).float()  # many ties
    b = a + torch.rand(200, generator=generator) * 3
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a.numpy(), b.numpy())[0], abs=1e-12)
    assert np.isnan(spearman(torch.zeros(10), b[:10]))


def test_sanity_check_bad_input_names_the_valid_choices(shipped):
    image = cw.sample_image("sneaker")
    count = len(randomizable_modules(shipped.module))
    with pytest.raises(ValueError, match=f"steps must be a whole number from 1 to {count}"):
        engine.sanity_check(shipped, image, steps=0)
    with pytest.raises(ValueError, match="threshold must be a rank correlation between -1 and 1"):
        engine.sanity_check(shipped, image, threshold=2)
    with pytest.raises(ValueError, match="one image"):
        engine.sanity_check(shipped, torch.zeros(2, 1, 28, 28))


# -- ROAD ----------------------------------------------------------------------------------------


def test_road_equals_pytorch_grad_cam_road_combined(shipped, images):
    road = pytest.importorskip("pytorch_grad_cam.metrics.road")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    inputs, _ = images
    for i in range(2):
        score = engine.faithfulness(shipped, inputs[i], noise_seed=7)
        target = [ClassifierOutputSoftmaxTarget(score.class_index)]
        shown = (score.map / score.map.max()).numpy()[None]
        for cams, ours in ((shown, score.road), (score.random_map.numpy()[None], score.random_road)):
            torch.manual_seed(7)
            theirs = road.ROADCombined(list(ROAD_PERCENTILES))(inputs[i : i + 1], cams, target, shipped.module)
            assert ours == pytest.approx(float(theirs[0]), abs=1e-5)
        # The most-relevant-first curve, point by point: their ROADMostRelevantFirst after the same noise draws.
        torch.manual_seed(7)
        road.ROADLeastRelevantFirstAverage(list(ROAD_PERCENTILES))(inputs[i : i + 1], shown, target, shipped.module)
        for percentile, ours in zip(ROAD_PERCENTILES, score.most_relevant_first):
            drop = road.ROADMostRelevantFirst(percentile)(inputs[i : i + 1], shown, target, shipped.module)
            assert ours - score.probability == pytest.approx(float(drop[0]), abs=1e-5)


def test_imputation_equals_the_reference_noisy_linear_imputer():
    road = pytest.importorskip("pytorch_grad_cam.metrics.road")
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(3, 12, 10, generator=generator)
    kept = (torch.rand(12, 10, generator=generator) > 0.6).float()
    torch.manual_seed(5)
    theirs = road.NoisyLinearImputer()(image, kept)
    ours = impute(image, kept, torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert torch.equal(ours[:, kept > 0], image[:, kept > 0])  # kept pixels are untouched


def test_gradcam_beats_a_random_map_on_the_shipped_model_and_a_random_map_on_itself_does_not(shipped):
    image = cw.sample_image("bag")
    score = engine.faithfulness(shipped, image, "gradcam", percentiles=(30, 50, 70))
    assert score.removed == (0.7, 0.5, 0.3)
    assert len(score.most_relevant_first) == 3 and all(0 <= p <= 1 for p in score.most_relevant_first)
    # Removing Grad-CAM's most relevant half hurts the class more than removing a random half.
    assert score.most_relevant_first[1] < score.random_most_relevant_first[1]
    same = engine.faithfulness(shipped, image, heatmap=score.random_map, percentiles=(30, 50, 70))
    assert same.road == pytest.approx(same.random_road) and not same.beats_chance


def test_faithfulness_bad_input_names_the_valid_choices(shipped):
    image = cw.sample_image("sneaker")
    with pytest.raises(ValueError, match="percentiles must be numbers between 0 and 100"):
        engine.faithfulness(shipped, image, percentiles=(0, 50))
    with pytest.raises(ValueError, match=r"heatmap must be \(H, W\) = \(28, 28\)"):
        engine.faithfulness(shipped, image, heatmap=torch.rand(14, 14))
    with pytest.raises(ValueError, match="class index or name"):
        engine.faithfulness(shipped, image, target=lambda logits: logits[:, 0])


def test_trust_checks_leave_a_users_module_exactly_as_it_was():
    module = make_user_model()
    model = cw.load_model(module, input_size=(3, 16, 16), mean=[0.5], std=[0.5], classes=["a", "b", "c", "d"])
    before = snapshot(module)
    image = torch.randn(3, 16, 16)
    random_state = torch.get_rng_state()
    engine.sanity_check(model, image)
    engine.faithfulness(model, image, target="b", percentiles=(50,))
    assert_unchanged(module, before)
    assert torch.equal(torch.get_rng_state(), random_state)  # seeded re-initialization and noise use their own generators
