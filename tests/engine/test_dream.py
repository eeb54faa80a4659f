"""DeepDream: frames of the photo's size and the asked-for count that really
change the photo toward the layer, reproducibly; Stop stops; the model and the
user's random state come back untouched; GIFs save."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import cnn_widgets as cw
from cnn_widgets.engine.optvis import dream
from cnn_widgets.render import save_gif
from cnn_widgets.engine.optvis.deepdream import octave_sizes, smooth, zoom_in

from conftest import assert_unchanged, snapshot


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return cw.load_model("vgg11", weights=None, device="cpu")


@pytest.fixture(scope="module")
def photo():
    return cw.sample_image("cat").resize((72, 48))


def as_array(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture, dtype=np.float64)


def test_frames_have_the_photos_size_and_the_asked_for_count(fashion, vgg, photo):
    gray = dream(fashion, cw.sample_image("sneaker"), "block2_conv1", steps=3, frames=3)
    assert len(gray) == 3 and all(f.size == (28, 28) and f.mode == "L" for f in gray)
    color = dream(vgg, photo, "block3_conv1", steps=2, octaves=3, frames=2)
    assert len(color) == 2 and all(f.size == (72, 48) and f.mode == "RGB" for f in color)


def test_dreaming_changes_the_photo_and_each_frame_moves_on(vgg, photo):
    frames = dream(vgg, photo, "block2_conv1", steps=4, octaves=2, frames=3, zoom=1.1)
    original = as_array(photo)
    assert np.abs(as_array(frames[0]) - original).mean() > 3, "the dream must visibly change the photo"
    assert np.abs(as_array(frames[1]) - as_array(frames[0])).mean() > 3, "the next frame zooms and dreams on"
    assert np.abs(as_array(frames[2]) - as_array(frames[1])).mean() > 3


def test_dreaming_on_one_filter_raises_that_filters_activation(fashion):
    from cnn_widgets import engine

    image = cw.sample_image("coat")
    frames = dream(fashion, image, "block2_conv2", filter=5, steps=8, octaves=1, step_size=0.02)
    before = engine.feature_maps(fashion, image, layers="block2_conv2", cache=False)["block2_conv2"][5].mean()
    after = engine.feature_maps(fashion, frames[0], layers="block2_conv2", cache=False)["block2_conv2"][5].mean()
    assert after > before + 0.01


def test_same_seed_same_frames_other_seed_other_frames(fashion):
    image = cw.sample_image("bag")
    first = dream(fashion, image, "block1_conv2", steps=3, frames=2, seed=1)
    again = dream(fashion, image, "block1_conv2", steps=3, frames=2, seed=1)
    other = dream(fashion, image, "block1_conv2", steps=3, frames=2, seed=2)
    assert all(np.array_equal(as_array(a), as_array(b)) for a, b in zip(first, again))
    assert not np.array_equal(as_array(first[-1]), as_array(other[-1]))


def test_cancel_stops_within_one_step_and_keeps_the_frames_so_far(fashion):
    stop = threading.Event()
    calls = []

    def progress(step, total, frame):
        calls.append((step, total, frame is not None))
        if step == 5:
            stop.set()

    frames = dream(fashion, cw.sample_image("shirt"), "block1_conv2", steps=4, octaves=1, frames=10, progress=progress, cancel=stop)
    steps = [step for step, _, _ in calls]
    assert max(steps) == 5, "no step after the one that set the flag"
    assert calls[0][1] == 40, "total = frames x octaves x steps"
    assert [finished for _, _, finished in calls].count(True) == 1, "the first frame finished at step 4"
    assert len(frames) == 2, "the finished frame plus the interrupted one"


def test_model_and_random_state_come_back_untouched_even_after_an_error(user_model, photo):
    model = cw.load_model(user_model, input_size=(3, 48, 72))
    before = snapshot(user_model)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    dream(model, photo, "features.4", steps=2, octaves=2)
    assert_unchanged(user_model, before)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]

    def explode(step, total, frame):
        raise KeyboardInterrupt  # what a notebook's Stop button raises

    with pytest.raises(KeyboardInterrupt):
        dream(model, photo, "features.4", steps=2, progress=explode)
    assert_unchanged(user_model, before)


def test_bad_layer_filter_and_settings_name_the_valid_choices(fashion):
    image = cw.sample_image("sneaker")
    with pytest.raises(ValueError, match="block3_conv1"):
        dream(fashion, image, "block3_conv3")
    with pytest.raises(ValueError, match="0-63"):
        dream(fashion, image, "block2_conv1", filter=64)
    with pytest.raises(ValueError, match="frames"):
        dream(fashion, image, "block2_conv1", frames=0)
    with pytest.raises(ValueError, match="octave_scale"):
        dream(fashion, image, "block2_conv1", octave_scale=1.0)


def test_gif_holds_every_frame(fashion, tmp_path):
    frames = dream(fashion, cw.sample_image("sandal"), "block1_conv2", steps=2, frames=3)
    path = save_gif(frames, tmp_path / "dream.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3 and gif.size == (28, 28)


def test_helpers_octaves_zoom_and_smoothing():
    assert octave_sizes((28, 28), 4, 1.4) == [(20, 20), (28, 28)], "octaves below 16 px are skipped"
    ramp = torch.linspace(0, 1, 40).view(1, 1, 1, 40).expand(1, 1, 40, 40)
    zoomed = zoom_in(ramp, 2.0)
    assert zoomed.shape == ramp.shape and zoomed[..., 0].min() > 0.2 and zoomed[..., -1].max() < 0.8
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert smooth(noise, 1.0).std() < 0.5 * noise.std(), "smoothing removes pixel noise"
