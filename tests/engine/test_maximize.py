"""Activation maximization: the activation climbs for every image of a batch, a
batch gives the images one-by-one runs give, cutting the network changes
nothing, Stop stops, seeds reproduce, and the user's model and random state
come back untouched."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets.engine.activations import record_activations
from cnn_widgets.engine.optvis import maximize, objectives
from cnn_widgets.engine.optvis.transform import compose, jitter, pad, random_rotate, random_scale
from cnn_widgets.models import preserved

from conftest import assert_unchanged, snapshot

FILTERS = [0, 9, 18, 27, 36, 45, 54, 63]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return cw.load_model("vgg11", weights=None, device="cpu")


def achieved(model, images: torch.Tensor, layer: str, filters) -> torch.Tensor:
    """The fixed evaluation: mean conv output of filter i for image i, no transforms."""
    info = model.layer(layer)
    with preserved(model.module, model.device), torch.no_grad():
        acts = record_activations(model, model.normalize(images.to(model.device)), [info])[info.path]
    return acts[torch.arange(len(filters)), torch.tensor(filters)].flatten(1).mean(1).cpu()


def correlation(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of image i of ``first`` with image i of ``second``."""
    a = first.flatten(1) - first.flatten(1).mean(1, keepdim=True)
    b = second.flatten(1) - second.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def test_activation_rises_over_steps_for_every_filter_of_a_batch(fashion):
    previews = {}

    def progress(step, values, images):
        assert values.shape == (len(FILTERS),)
        if images is not None:
            previews[step] = images

    start = maximize(fashion, "block2_conv2", FILTERS, steps=0, size=32)
    final = maximize(fashion, "block2_conv2", FILTERS, steps=48, size=32, progress=progress, preview_every=16)
    assert sorted(previews) == [16, 32, 48]
    assert torch.equal(previews[48], final)
    curve = [achieved(fashion, images, "block2_conv2", FILTERS) for images in (start, previews[16], previews[32], final)]
    gains = curve[-1] - curve[0]
    assert (gains > 0).all(), f"activation did not rise for filters {[f for f, g in zip(FILTERS, gains) if g <= 0]}"
    means = [c.mean().item() for c in curve]
    assert means == sorted(means), f"mean activation should climb step by step: {means}"
    assert (final.flatten(1).std(1) > 0.02).all(), "every image should have left the gray start"


def test_a_filter_whose_relu_is_dead_at_the_start_still_gets_a_picture():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 3, padding=1)
    with torch.no_grad():
        conv.bias.fill_(-5.0)  # ReLU(conv(gray)) is 0 everywhere: no gradient through the ReLU
    net = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Conv2d(2, 2, 1))
    images = maximize(net, "0", [0, 1], steps=16, size=24)
    assert (images.flatten(1).std(1) > 0.05).all(), "optimizing the pre-activation must move a dead filter's image"


@pytest.mark.parametrize("which", ["fashion", "vgg"])
def test_batched_and_one_by_one_runs_give_the_same_images(which, fashion, vgg):
    model, layer, size, filters = {
        "fashion": (fashion, "block2_conv2", 28, [3, 0, 7, 1]),
        "vgg": (vgg, "block2_conv1", 40, [5, 2, 100]),
    }[which]
    alone = torch.cat([maximize(model, layer, [f], steps=16, size=size, seed=3) for f in filters])
    # An image's randomness, parameters and optimizer state are its own: with the network
    # run one image at a time, a batch is bit-for-bit the one-by-one runs, in any order.
    one_at_a_time = maximize(model, layer, filters, steps=16, size=size, seed=3, batch_size=1)
    assert torch.equal(one_at_a_time, alone)
    reordered = maximize(model, layer, filters[::-1], steps=16, size=size, seed=3, batch_size=1)
    assert torch.equal(reordered.flip(0), alone)
    # Batched convolutions round differently in the last bit, and Adam amplifies that in a few
    # places over many steps; the images stay the same pictures.
    together = maximize(model, layer, filters, steps=16, size=size, seed=3)
    assert together.shape == (len(filters), model.input_size[0], size, size)
    other_seed = maximize(model, layer, filters, steps=16, size=size, seed=4)
    assert (correlation(together, alone) > 0.98).all(), correlation(together, alone)
    assert (correlation(other_seed, alone) < 0.9).all(), "the check above must be able to fail"


def test_same_seed_same_images_other_seed_other_images(fashion):
    first = maximize(fashion, "block1_conv2", [1, 2], steps=6, size=24, seed=7)
    again = maximize(fashion, "block1_conv2", [1, 2], steps=6, size=24, seed=7)
    other = maximize(fashion, "block1_conv2", [1, 2], steps=6, size=24, seed=8)
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3


def test_cutting_the_network_after_the_layer_changes_nothing(fashion):
    later = []
    handle = fashion.module.classifier.register_forward_hook(lambda *args: later.append(1))
    # The full network needs fashion-cnn's own 28x28 input, so no padding here.
    robust = [jitter(4), random_scale([0.9, 1.0, 1.1]), random_rotate(range(-10, 11))]
    try:
        cut = maximize(fashion, "block2_conv1", [2, 11, 40], steps=10, size=28, transforms=robust)
        assert later == [], "nothing after the target layer may run"
        full = maximize(fashion, "block2_conv1", [2, 11, 40], steps=10, size=28, transforms=robust, truncate=False)
        assert len(later) == 10, "truncate=False runs the whole network once per step"
    finally:
        handle.remove()
    assert torch.equal(cut, full)


@pytest.mark.parametrize("kind", ["event", "callable"])
def test_cancel_stops_within_one_step_and_returns_the_current_images(kind, fashion):
    event = threading.Event()
    steps_seen = []

    def progress(step, values, images):
        steps_seen.append(step)
        if step == 3:
            event.set()

    cancel = event if kind == "event" else event.is_set
    images = maximize(fashion, "block1_conv1", [0, 1, 2], steps=200, size=24, progress=progress, cancel=cancel)
    assert steps_seen == [1, 2, 3]
    assert torch.equal(images, maximize(fashion, "block1_conv1", [0, 1, 2], steps=3, size=24))


def test_model_comes_back_unchanged_after_a_run_and_after_an_error(user_model):
    before = snapshot(user_model)
    model = cw.load_model(user_model, input_size=(3, 32, 32))
    maximize(model, "features.4", [0, 3], steps=3, size=32)
    assert_unchanged(user_model, before)

    def explode(step, values, images):
        if step == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        maximize(model, "features.4", [0, 3], steps=5, size=32, progress=explode)
    assert_unchanged(user_model, before)
    assert user_model.training and user_model.features[1].training


def test_bad_choices_raise_errors_that_name_the_valid_ones(fashion):
    with pytest.raises(ValueError, match="block2_conv1"):
        maximize(fashion, "block2_conv", [0], steps=1)
    with pytest.raises(ValueError, match="0-31"):
        maximize(fashion, "block1_conv1", [32], steps=1)
    with pytest.raises(ValueError, match="neuron"):
        maximize(fashion, "block1_conv1", [0], steps=1, objective="neurons")
    with pytest.raises(ValueError, match="fourier"):
        maximize(fashion, "block1_conv1", [0], steps=1, param="fft")
    with pytest.raises(ValueError, match="standard"):
        maximize(fashion, "block1_conv1", [0], steps=1, transforms="strong")
    with pytest.raises(ValueError, match="Sneaker"):
        maximize(fashion, None, ["Sneakers"], steps=1, objective="class")


def test_the_users_random_state_is_untouched(fashion):
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    maximize(fashion, "block1_conv1", [0, 1], steps=3, size=20)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert random.getstate() == states[2]


def test_transforms_are_drawn_per_image():
    transform = compose([pad(2), jitter(6), random_rotate(range(-10, 11))])
    image = torch.zeros(1, 1, 16, 16)
    image[..., 6:10, 6:10] = 1.0
    draws = torch.tensor([[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]])
    moved = transform(image.expand(2, -1, -1, -1), draws)
    assert moved.shape == (2, 1, 20, 20)
    assert (moved[0] - moved[1]).abs().max() > 0.5, "two images with different draws must move differently"
    # pad alone grows the canvas with gray and leaves the image where it was.
    padded = compose([pad(2)])(image)
    assert torch.equal(padded[..., 2:-2, 2:-2], image) and (padded[..., :2, :] == 0.5).all()


def test_neuron_class_and_composed_objectives(fashion):
    neuron_images = maximize(fashion, "block2_conv1", [4, 8], steps=16, size=28, objective="neuron")
    start = maximize(fashion, "block2_conv1", [4, 8], steps=0, size=28)
    info = fashion.layer("block2_conv1")
    with preserved(fashion.module), torch.no_grad():
        center = [record_activations(fashion, fashion.normalize(x), [info])[info.path][[0, 1], [4, 8], 7, 7] for x in (start, neuron_images)]
    assert (center[1] > center[0]).all(), "the center neuron's activation should rise"

    classes = ["Trouser", "Bag"]
    logits = []
    for steps in (0, 24):
        images = maximize(fashion, None, classes, steps=steps, objective="class")
        with torch.no_grad():
            logits.append(fashion.module(fashion.normalize(images))[[0, 1], [1, 8]])
    assert images.shape == (2, 1, 28, 28)
    assert (logits[1] > logits[0]).all(), "the class logit should rise"

    goal = objectives.channel("block2_conv1", [6, 6]) - 10 * objectives.diversity("block2_conv1")
    assert goal.layers == ("block2_conv1",)
    pair = maximize(fashion, "block2_conv1", [6, 6], steps=8, size=28, objective=goal)
    assert pair.shape == (2, 1, 28, 28) and (pair[0] - pair[1]).abs().max() > 1e-3


def test_a_three_channel_torchvision_model(vgg):
    filters = [1, 10, 20]
    start = maximize(vgg, "block2_conv1", filters, steps=0, size=64)
    final = maximize(vgg, "block2_conv1", filters, steps=10, size=64, param="pixel")
    assert final.shape == (3, 3, 64, 64)
    assert (achieved(vgg, final, "block2_conv1", filters) > achieved(vgg, start, "block2_conv1", filters)).all()


def test_a_batch_that_runs_out_of_memory_is_split_and_gives_the_same_images(fashion):
    seen = []

    def small_memory(_module, inputs):
        seen.append(inputs[0].shape[0])
        if inputs[0].shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    fashion.layers  # the one-time dry run that finds the layers is not part of this
    handle = fashion.module.register_forward_pre_hook(small_memory)
    try:
        split = maximize(fashion, "block1_conv2", [0, 1, 2, 3, 4], steps=3, size=20)
    finally:
        handle.remove()
    assert seen[:4] == [5, 2, 2, 1], "5 images fail, then halves that fit (2, 2, 1)"
    assert max(seen[4:]) <= 2, "the smaller batch size is kept for the rest of the run"
    assert torch.equal(split, maximize(fashion, "block1_conv2", [0, 1, 2, 3, 4], steps=3, size=20, batch_size=2))


def test_a_batch_that_runs_out_of_memory_in_the_backward_pass_is_freed_before_the_smaller_retry(fashion):
    # On a GPU the retry needs the memory the failed attempt held: its activations must be gone by then.
    import weakref

    early = []  # per forward pass: (batch size, block1_conv2's input, which its backward keeps, weakly)
    held_at_retry = []

    def backward_runs_out_of_memory(_grad):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated in the backward pass)")

    def keep_a_weak_reference(_module, inputs):
        if early and early[-1][0] > 2:  # the forward pass after a failed one
            held_at_retry.append(early[-1][1]() is not None)
        early.append((inputs[0].shape[0], weakref.ref(inputs[0])))

    def fail_halfway_back(_module, inputs):  # before block1_conv2's backward has run
        if inputs[0].shape[0] > 2:
            inputs[0].register_hook(backward_runs_out_of_memory)

    fashion.layers
    handles = [
        fashion.layer("block1_conv2").module.register_forward_pre_hook(keep_a_weak_reference),
        fashion.layer("block2_conv1").module.register_forward_pre_hook(fail_halfway_back),
    ]
    try:
        images = maximize(fashion, "block2_conv1", [0, 1, 2, 3, 4], steps=2, size=20)
    finally:
        for handle in handles:
            handle.remove()
    assert [size for size, _ in early[:4]] == [5, 2, 2, 1], "the backward pass fails for 5 images; halves go on"
    assert held_at_retry == [False], "the failed attempt's activations are released before the retry"
    assert images.shape == (5, 1, 20, 20)


def test_the_objective_reads_the_conv_output_the_network_computes(fashion):
    from cnn_widgets.engine.optvis.forward import LayerTap

    info = fashion.layer("block2_conv2")
    inputs = torch.randn(3, 1, 28, 28)
    with preserved(fashion.module), torch.no_grad():
        expected = record_activations(fashion, inputs, [info])[info.path]
        for cut in (True, False):
            with LayerTap(fashion, [info], cut=cut) as tap:
                recording = tap.run(inputs)
                torch.testing.assert_close(recording.activation(info), expected)
                chosen = recording.channels(info, torch.tensor([5, 0, 63]))
                torch.testing.assert_close(chosen, expected[[0, 1, 2], [5, 0, 63]])


@pytest.mark.parametrize("long_run", ["maximize", "dream"])
def test_a_long_run_lets_other_computations_on_the_model_in_between_steps(long_run, user_model):
    """A feature-map view on the same model answers during a long run, not after it,
    and the model still comes back unchanged."""
    from cnn_widgets import engine

    model = cw.load_model(user_model, input_size=(3, 32, 32))
    before = snapshot(user_model)
    stop, steps = threading.Event(), []

    def progress(step, *_):
        steps.append(step)

    if long_run == "maximize":
        run = lambda: maximize(model, "block2_conv1", filters=[0], steps=100_000, size=32, progress=progress, cancel=stop)  # noqa: E731
    else:
        run = lambda: engine.dream(model, torch.rand(32, 32, 3).numpy(), layer="block2_conv1", steps=100_000, octaves=1, progress=progress, cancel=stop)  # noqa: E731
    worker = threading.Thread(target=run)
    worker.start()
    try:
        while len(steps) < 3 and worker.is_alive():  # a run that failed at once must not hang the test
            worker.join(0.01)
        assert worker.is_alive(), "the long run ended before its third step"
        maps = engine.feature_maps(model, torch.rand(32, 32, 3).numpy(), layers=["block1_conv1"], cache=False)
        assert worker.is_alive() and not stop.is_set()  # answered while the run goes on
        seen = len(steps)
        while len(steps) < seen + 3 and worker.is_alive():  # ... and the run carries on afterwards
            worker.join(0.01)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join()
    assert next(iter(maps.values())).shape[0] == 8
    assert_unchanged(user_model, before)


def test_the_default_objective_is_the_middle_unit_only_where_the_conv_reads_the_pixels(fashion):
    from cnn_widgets.engine.optvis import default_objective, middle_unit_window

    # Decided from the forward pass: block1_conv1's input is the network's input itself.
    assert [default_objective(fashion, info.name) for info in fashion.layers] == ["neuron"] + ["channel"] * 5
    default = maximize(fashion, "block1_conv1", [0, 5], steps=4)
    assert torch.equal(default, maximize(fashion, "block1_conv1", [0, 5], steps=4, objective="neuron"))
    asked = maximize(fashion, "block1_conv1", [0, 5], steps=4, objective="channel")  # an explicit choice is kept
    assert not torch.allclose(default, asked)
    assert torch.equal(maximize(fashion, "block2_conv1", [0], steps=4), maximize(fashion, "block2_conv1", [0], steps=4, objective="channel"))
    assert middle_unit_window(fashion, "block1_conv1", (28, 20)) == (13, 9, 3, 3)
    # A nonlinearity before the first conv: no conv reads the pixels, every layer keeps the mean.
    squashed = cw.load_model(nn.Sequential(nn.Tanh(), nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 4, 3)), input_size=(3, 16, 16))
    assert [default_objective(squashed, info.name) for info in squashed.layers] == ["channel", "channel"]
    assert middle_unit_window(squashed, 0, 16) is None
    plain = cw.load_model(nn.Sequential(nn.Conv2d(3, 4, 5, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 3)), input_size=(3, 16, 16))
    assert [default_objective(plain, info.name) for info in plain.layers] == ["neuron", "channel"]
    assert middle_unit_window(plain, 0, 16) == (6, 6, 5, 5)  # outputs 6x6, the middle one at 3 starts at 3 * 2
