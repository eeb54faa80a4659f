"""ActivationMaximization and DeepDream from Python: Run fills the view with
progress to the end, Stop stops quickly and keeps what is there, finished
results come back from the cache without the engine, bad settings raise with
the valid choices, the user's model is left as it was, and pictures save."""
from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import pytest
import traitlets
from PIL import Image

import cnn_widgets as cw
from cnn_widgets.widgets import deepdream as deepdream_module
from cnn_widgets.widgets import maximization as maximization_module
from cnn_widgets.widgets.deepdream import DeepDream
from cnn_widgets.widgets.maximization import ActivationMaximization
from cnn_widgets.widgets.pictures import encode_picture
from model_state import assert_unchanged, make_user_model, snapshot
from view_messages import send_from_view

STOP_WITHIN_S = 2.0  # one optimization step is milliseconds here; this allows for a loaded machine


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def count_calls(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call (positional arguments
    under their index, keywords by name) and then calls the original."""
    original = getattr(module, name)
    calls = []

    def counted(*args, **kwargs):
        calls.append({**dict(enumerate(args)), **kwargs})
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background run"
        time.sleep(0.01)


def stop_timed(widget) -> float:
    started = time.monotonic()
    widget.stop()
    return time.monotonic() - started


# -- ActivationMaximization ---------------------------------------------------------------


@pytest.fixture
def maximization(fashion):
    return ActivationMaximization(fashion, layer="block2_conv1", filters="0-3", steps=16, size=28)


def test_maximization_run_fills_the_grid_with_progress_to_the_end(maximization):
    assert all("not computed yet" in title for title in maximization.tile_titles)
    empty_grid = maximization.grid_png
    progress = []
    maximization.observe(lambda change: progress.append(change["new"]), names="progress")
    maximization.run(wait=True)
    assert maximization.status.startswith("done") and not maximization.running and maximization.error == ""
    # From the first step to the last (the steps between reach the view at most every 0.1 s).
    assert progress[0] == 1 / 16 and progress[-1] == 1.0 and progress == sorted(progress)
    assert maximization.tile_titles == [f"filter {f}" for f in range(4)]
    assert maximization.grid_png != empty_grid
    pictures = [maximization.image(f) for f in range(4)]
    assert all(p is not None and p.shape == (28, 28, 3) and p.dtype == np.uint8 for p in pictures)
    assert all(p.std() > 1 for p in pictures), "an optimized image should not be flat gray"


def test_maximization_stop_is_quick_and_keeps_the_images_so_far(fashion):
    widget = ActivationMaximization(fashion, layer="block2_conv1", filters="0-3", steps=2000, size=28)
    widget.run()
    wait_until(lambda: widget.progress > 0.01)
    assert widget.running
    assert stop_timed(widget) < STOP_WITHIN_S
    assert not widget.running and widget.status.startswith("stopped")
    assert widget.progress < 1.0
    assert all(widget.image(f) is not None for f in range(4))
    # The tiles say where the run stopped (not "in progress": nothing is computing any more).
    reached = round(widget.progress * 2000)
    assert all(title.endswith(f"stopped at step {reached} of 2000: select it or press Run to start again") for title in widget.tile_titles)
    # The status says the same, exactly: where it stopped and of how many steps.
    assert widget.status.startswith(f"stopped at step {reached} of 2000 ")


def test_maximization_second_run_comes_from_the_cache(maximization, monkeypatch):
    calls = count_calls(monkeypatch, maximization_module, "maximize")
    maximization.run(wait=True)
    first = maximization.grid_png
    assert len(calls) == 1
    started = time.monotonic()
    maximization.run(wait=True)
    assert len(calls) == 1 and time.monotonic() - started < 1.0
    assert maximization.status.startswith("done") and maximization.grid_png == first
    # Only filters not computed yet go to the engine.
    maximization.filters = "2-5"
    maximization.run(wait=True)
    assert len(calls) == 2 and calls[1][2] == [4, 5]


def test_maximization_layer_change_redraws_and_coming_back_is_instant(maximization, monkeypatch):
    maximization.run(wait=True)
    computed = maximization.grid_png
    calls = count_calls(monkeypatch, maximization_module, "maximize")
    maximization.layer = "block1_conv1"
    assert maximization.filter_count == 32
    maximization.wait()
    # Moving to another layer optimizes the selected filter there, and only that one.
    assert [call[2] for call in calls] == [[0]] and maximization.image(0) is not None
    assert all("not computed yet" in title for title in maximization.tile_titles[1:])
    assert maximization.status.startswith("done in") and "block1_conv1: Run optimizes 3 images" in maximization.status
    maximization.layer = "block2_conv1"
    assert maximization.grid_png == computed and len(calls) == 1
    assert maximization.status.startswith("block2_conv1: ")  # the status speaks of the layer shown


def test_a_layer_change_during_a_run_stops_it_and_the_status_says_so(fashion):
    widget = ActivationMaximization(fashion, layer="block2_conv1", filters="0-3", steps=2000, size=28)
    widget.run()
    wait_until(lambda: widget.progress > 0.002)
    widget.layer = "block1_conv1"
    widget.steps = 16  # the selected filter of the new layer, quickly
    widget.wait()
    assert not widget.running
    assert "the run before stopped at step " in widget.status and " of 2000 (" in widget.status
    assert widget.status.startswith("done") and "block1_conv1: Run optimizes" in widget.status
    assert "in progress" not in widget.status and all("in progress" not in title for title in widget.tile_titles)


def test_moving_to_a_filter_not_computed_computes_it(maximization, monkeypatch):
    calls = count_calls(monkeypatch, maximization_module, "maximize")
    assert maximization.image(9) is None
    maximization.filter_index = 9  # outside the grid's filters 0-3: Run alone would not reach it
    maximization.wait()
    assert [call[2] for call in calls] == [[9]]
    assert maximization.image(9) is not None and maximization.image(9).std() > 1
    assert "finished" in maximization.tile_caption and "not computed" not in maximization.tile_caption
    maximization.filter_index = 9
    maximization.filter_index = 2
    maximization.wait()
    maximization.filter_index = 9  # computed: shown from the cache
    maximization.wait()
    assert [call[2] for call in calls] == [[9], [2]]
    # Run optimizes the grid's filters, and not the ones already there.
    maximization.run(wait=True)
    assert [call[2] for call in calls][-1] == [0, 1, 3]


def test_a_run_estimates_its_time_before_and_while_it_runs(fashion):
    widget = ActivationMaximization(fashion, layer="block2_conv1", filters="0-3", steps=400, size=28)
    assert widget.status.startswith("block2_conv1: Run optimizes 4 images × 400 steps at 28 px in about ")
    assert "with 800 steps about" in widget.status  # what more would cost
    statuses = []
    widget.observe(lambda change: statuses.append(change["new"]), names="status")
    widget.run(wait=True)
    assert any(" left · mean activation" in text for text in statuses), statuses[:5]
    assert widget.status.startswith("done in")


def test_the_first_estimate_comes_from_real_steps_timed_before_the_run(fashion):
    from cnn_widgets.engine.optvis import cost

    # The estimate shown before any run is the timing of a few real steps of this model at this
    # size and batch (cached per model, layer, size, images, settings and device), and says so.
    widget = ActivationMaximization(fashion, layer="block2_conv2", filters="0-2", steps=48, size=20)
    timed = cost.step_seconds(fashion, "block2_conv2", images=3, size=20, **maximization_module.QUALITY_PRESETS["high"])
    assert f"measured: {maximization_module._seconds_text(timed)} s per step" in widget.status, widget.status
    where = fashion.layer("block2_conv2").path
    assert any(key[2] == where and key[4] == 20 and key[5] == 3 for key in cost._step_seconds), "the timing is kept for the next estimate"


def test_the_estimate_uses_the_timing_and_then_what_the_run_measured(fashion, monkeypatch):
    from cnn_widgets.engine.optvis import cost

    # A timing of 100 s per step (as on a much slower machine) is what the first estimate says...
    monkeypatch.setattr(cost, "step_seconds", lambda *args, **kwargs: 100.0)
    widget = ActivationMaximization(fashion, layer="block2_conv2", filters="0-2", steps=30, size=22)
    assert "Run optimizes 3 images × 30 steps at 22 px in about 50 min (measured: 100 s per step" in widget.status, widget.status
    assert "with 60 steps about 1.7 h" in widget.status
    # ...until a run measured its own steps: the next estimate at this size comes from those.
    widget.run(wait=True)
    widget.seed = 1  # new images to make, same size and batch
    assert "measured in the last run: " in widget.status and "100 s per step" not in widget.status, widget.status
    assert "about 50 min" not in widget.status


def test_defaults_keep_a_first_run_short():
    from cnn_widgets.widgets.maximization import DEFAULT_CANDIDATES, FIRST_RUN_S, _scaled_estimate

    small = ActivationMaximization(cw.load_model("fashion-cnn"), layer="block3_conv1")
    assert (small.size, small.steps, small.filters) == (28, 128, "0-15")  # small inputs: their own size
    big = ActivationMaximization(cw.load_model("vgg16", weights=None), layer="block3_conv1")
    count = len(big.chosen_filters())
    assert (big.size, big.steps, count) in DEFAULT_CANDIDATES  # never VGG's 224 px
    # The first candidate estimated (from one timing of the smallest, scaled) to fit FIRST_RUN_S, or the smallest.
    expected = _scaled_estimate(big.model, big.layer, "channel", count, big.steps, big.size, DEFAULT_CANDIDATES[-1][::2])
    assert expected <= FIRST_RUN_S or (big.size, big.steps, count) == DEFAULT_CANDIDATES[-1]
    assert "measured: " in big.status


def test_class_visualization_shows_one_image_per_class_with_its_name(fashion):
    widget = ActivationMaximization(fashion, objective="class", filters="0-3", steps=16)
    assert widget.filter_count == 10
    assert widget.tile_titles[0].startswith("class 0: T-shirt/top")
    widget.run(wait=True)
    assert widget.tile_titles == ["class 0: T-shirt/top", "class 1: Trouser", "class 2: Pullover", "class 3: Dress"]
    assert widget.tile_caption.startswith("class 0: T-shirt/top (of 10 classes)") and "score reached" in widget.tile_caption
    assert "filter" not in widget.tile_caption + widget.status + widget.title
    assert widget.class_names[3] == "Dress"  # the slider's label in the view: "class 3: Dress"
    # The saved picture names the enlarged class under it, as the view's caption does.
    from cnn_widgets.render.convolution import text_band

    saved, grid, tile = widget.picture(), widget._grid_picture, widget._enlarged_picture
    left = grid.shape[1] + 16
    band = text_band(["class 0: T-shirt/top (of 10 classes)"], tile.shape[1])
    assert np.array_equal(saved[tile.shape[0]: tile.shape[0] + band.shape[0], left: left + tile.shape[1]], band)
    assert all(widget.image(c).std() > 1 for c in range(4))
    with pytest.raises(traitlets.TraitError, match="valid: 0-9"):
        widget.filter_index = 10


def test_the_first_layer_shows_the_pixels_its_middle_unit_sees_enlarged_and_says_so(fashion):
    widget = ActivationMaximization(fashion, layer="block1_conv1", filters="0-1", steps=8)
    assert "first layer: the pixels that excite the middle unit most" in widget.status and "3x3 pixels" in widget.status
    widget.run(wait=True)
    assert widget.used_objective() == "neuron" and widget.objective == "channel"  # the menu keeps its choice
    assert "middle unit's activation reached" in widget.tile_caption and "sees only 3x3 pixels" in widget.tile_caption
    assert "shown: 3x3 of the 28x28 px optimized" in widget.tile_caption  # not "28x28 px" beside a 3x3 picture
    # The tile is the 3x3 window around the middle (rows and columns 13-15 of 28), each pixel a block, in a gray frame.
    image, tile = widget.image(0), widget._tile(0)
    assert tile.shape == image.shape
    assert (tile[0] == maximization_module.FRAME_GRAY).all() and (tile[:, -1] == maximization_module.FRAME_GRAY).all()
    inside = tile[1:-1, 1:-1, 0]
    assert np.array_equal(inside[::9, ::9][:3, :3], image[13:16, 13:16, 0])
    assert np.unique(inside, axis=0).shape[0] <= 3 and np.unique(inside, axis=1).shape[1] <= 3  # blocks
    from cnn_widgets.render.convolution import text_band

    saved, grid, enlarged = widget.picture(), widget._grid_picture, widget._enlarged_picture
    band = text_band(["filter 0 of 32", "middle unit's 3x3 pixels, enlarged"], enlarged.shape[1])
    left = grid.shape[1] + 16
    assert np.array_equal(saved[enlarged.shape[0]: enlarged.shape[0] + band.shape[0], left: left + enlarged.shape[1]], band)
    # Other layers keep the filter's mean and the whole image.
    widget.layer = "block1_conv2"
    widget.wait()
    assert widget.used_objective() == "channel" and "first layer" not in widget.status
    # An objective the person chose is respected at the first layer too.
    asked = ActivationMaximization(fashion, layer="block1_conv1", filters="0", steps=8, objective="channel")
    asked.run(wait=True)
    assert asked.used_objective() == "channel" and "first layer" not in asked.status + asked.tile_caption
    assert np.array_equal(asked._tile(0), asked.image(0))
    widget.layer = "block1_conv1"
    widget.objective = "class"
    widget.objective = "channel"  # chosen in the menu
    assert widget.used_objective() == "channel"


def test_variations_are_different_images_of_one_filter(maximization):
    maximization.variations = 3
    maximization.wait()
    images = maximization.variation_images(0)
    assert len(images) == 3 and "3 variations" in maximization.tile_caption
    differences = [np.abs(images[a].astype(int) - images[b].astype(int)).mean() for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(differences) > 2, differences
    with pytest.raises(traitlets.TraitError, match="between 1 and 8"):
        maximization.variations = 9


def test_maximization_bad_filters_raise_with_the_valid_range(maximization):
    with pytest.raises(traitlets.TraitError, match=r"valid: 0-63"):
        maximization.filters = "60-70"
    with pytest.raises(traitlets.TraitError, match="a range like '0-15'"):
        maximization.filters = "three"
    with pytest.raises(traitlets.TraitError, match="Valid choices: high, basic"):
        maximization.preset = "best"
    with pytest.raises(traitlets.TraitError, match="did you mean"):
        maximization.layer = "block2_conv"
    assert maximization.filters == "0-3" and maximization.layer == "block2_conv1"


def test_maximization_saves_what_it_shows(maximization, tmp_path):
    maximization.run(wait=True)
    path = tmp_path / "grid.png"
    maximization.save_png(path)
    saved = decode(path.read_bytes())
    assert saved.shape == maximization.picture().shape and saved.std() > 1


# -- DeepDream ----------------------------------------------------------------------------------


@pytest.fixture
def dreamer(fashion):
    return DeepDream(fashion, "sneaker", layer="block2_conv1", steps=3, frames=4, dream_size=0)  # the photo as it is: fast


def test_a_view_opened_mid_run_gets_the_streamed_frames(dreamer, monkeypatch):
    monkeypatch.setattr(dreamer, "send", lambda content, buffers=None: None)
    frames = [encode_picture(np.full((4, 4), value, dtype=np.uint8)) for value in (0, 255)]
    with dreamer._lock:  # as if two frames had been streamed
        dreamer._pngs, dreamer._sent = list(frames), 2
    send_from_view(dreamer, {"type": "resync"}, [])
    assert dreamer.frames_png == frames and dreamer.error == ""


def panels(picture: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The dream and the original in DeepDream.picture(): two panels of side x side pixels, PANEL_GAP apart."""
    gap = deepdream_module.PANEL_GAP
    return picture[gap : gap + side, gap : gap + side], picture[gap : gap + side, 2 * gap + side : 2 * gap + 2 * side]


def test_dream_shows_the_photo_before_a_run(dreamer):
    assert dreamer.frames_png == [] and dreamer.dream_frames == []
    assert dreamer.sample == "sneaker" and dreamer.image.size == (28, 28)
    assert decode(dreamer.photo_png).shape[:2] == (308, 308)  # 28 px enlarged 11x, crisp
    assert decode(dreamer.image_png).shape[:2] == (84, 84)  # the thumbnail of the upload
    assert "press Run" in dreamer.caption and dreamer.error == ""
    photo = np.asarray(Image.open(io.BytesIO(dreamer.photo_png)).convert("RGB"))
    assert all(np.array_equal(panel, photo) for panel in panels(dreamer.picture(), 308))  # no dream yet: the photo twice


def test_dream_saved_picture_shows_the_dream_beside_the_original_like_the_view(dreamer, tmp_path):
    """The saved picture (save_png, and the static PNG of a saved notebook) is what the view shows:
    the dream and, at the same size beside it, the original, each labelled under it."""
    dreamer.run(wait=True)
    dreamer.save_png(tmp_path / "dream.png")
    saved = decode((tmp_path / "dream.png").read_bytes())[..., :3]
    assert np.array_equal(saved, dreamer.picture())
    dreamt, original = decode(dreamer.frames_png[dreamer.frame_index])[..., :3], decode(dreamer.photo_png)[..., :3]
    assert dreamt.shape == original.shape == (308, 308, 3)
    assert 2 * 308 <= saved.shape[1] <= 2 * 308 + 4 * deepdream_module.PANEL_GAP  # two panels side by side
    assert saved.shape[0] > 308  # and a label band under them
    left, right = panels(saved, 308)
    assert np.array_equal(left, dreamt) and np.array_equal(right, original)
    assert not np.array_equal(left, right)
    band = saved[deepdream_module.PANEL_GAP + 308 :, : saved.shape[1] // 2]
    assert (band < 128).any()  # the label's dark text under the dream
    static = base64.b64decode(dreamer._repr_mimebundle_()[0]["image/png"])  # what a saved notebook shows
    assert np.array_equal(decode(static)[..., :3], saved)


def test_dream_defaults_give_the_dream_room_and_show_the_original_at_its_size(fashion):
    widget = DeepDream(fashion, "sneaker", layer="block3_conv1", frames=1)
    assert widget.dream_size == 84 and widget.image.size == (28, 28)  # a 28 px photo is dreamed at 84 px
    before = decode(widget.photo_png)
    widget.run(wait=True)
    assert widget.status.startswith("done") and widget.dream_frames[0].size == (84, 84)
    dreamt = decode(widget.frames_png[0])
    assert dreamt.shape[:2] == before.shape[:2] == (252, 252)  # the original beside the dream: the same size
    # Visible dream patterns: the dream differs from the (enlarged) photo clearly, not by faint streaks.
    change = np.abs(dreamt[..., :3].astype(float) - before[..., :3].astype(float)).mean()
    assert change > 12, change  # the old defaults (28 px, 10 steps of 0.01) changed it by 8 on average, these by 18
    assert "dreamed at 84x84" in widget.title
    with pytest.raises(traitlets.TraitError, match="dream_size must be between 0"):
        widget.dream_size = 2000


def test_dream_run_streams_frames_and_ends_done(dreamer, monkeypatch):
    lengths, progress, streamed = [], [], []
    dreamer.observe(lambda change: lengths.append(len(change["new"])), names="frames_png")
    dreamer.observe(lambda change: progress.append(change["new"]), names="progress")
    monkeypatch.setattr(dreamer, "send", lambda content, buffers=None: streamed.append((content, list(buffers or []))))
    dreamer.run(wait=True)
    assert dreamer.status.startswith("done") and not dreamer.running and dreamer.error == ""
    assert progress[-1] == 1.0 and progress == sorted(progress)
    # Each frame goes to the browser as soon as it is finished, once: one message per new
    # frame while running, then the whole list once in the synced trait.
    assert [(content["type"], content["start"], len(buffers)) for content, buffers in streamed] == [("frames", i, 1) for i in range(4)]
    assert lengths == [4]
    assert [buffers[0] for _, buffers in streamed] == list(dreamer.frames_png)
    assert len(dreamer.dream_frames) == 4 and all(f.size == (28, 28) for f in dreamer.dream_frames)
    assert all(decode(png).shape[:2] == (308, 308) for png in dreamer.frames_png)
    assert dreamer.frame_index == 3
    assert dreamer.picture().shape[1] == 2 * 308 + 3 * deepdream_module.PANEL_GAP  # the dream beside the original
    # The dream changes the photo, and each frame differs from the one before (zoom and dream).
    photo = np.asarray(dreamer.image, dtype=float)
    frames = [np.asarray(f, dtype=float) for f in dreamer.dream_frames]
    assert np.abs(frames[0] - photo).mean() > 0.25
    assert all(np.abs(a - b).mean() > 0.5 for a, b in zip(frames, frames[1:]))


def test_dream_frame_index_moves_the_picture(dreamer):
    dreamer.run(wait=True)
    last = dreamer.picture()
    dreamer.frame_index = 0
    assert not np.array_equal(dreamer.picture(), last)
    assert np.array_equal(panels(dreamer.picture(), 308)[0], decode(dreamer.frames_png[0])[..., :3])


def test_dream_stop_is_quick_and_keeps_the_frames_so_far(fashion, monkeypatch):
    widget = DeepDream(fashion, "sneaker", layer="block1_conv2", steps=200, frames=20)
    widget.run()
    wait_until(lambda: len(widget.dream_frames) >= 1)
    assert widget.running
    assert stop_timed(widget) < STOP_WITHIN_S
    assert not widget.running and widget.status.startswith("stopped") and widget.progress < 1.0
    kept = len(widget.frames_png)
    assert 1 <= kept < 20 and len(widget.dream_frames) == kept
    assert widget.caption.startswith("stopped:")
    # A stopped dream is not cached as finished: Run with the same settings dreams again.
    original, calls = deepdream_module.dream, []
    monkeypatch.setattr(deepdream_module, "dream", lambda *a, **k: calls.append(k) or original(*a, **{**k, "frames": 1, "steps": 1}))
    widget.run(wait=True)
    assert len(calls) == 1


def test_dream_second_run_comes_from_the_cache(dreamer, monkeypatch):
    calls = count_calls(monkeypatch, deepdream_module, "dream")
    dreamer.run(wait=True)
    first = list(dreamer.frames_png)
    started = time.monotonic()
    dreamer.run(wait=True)
    assert len(calls) == 1 and time.monotonic() - started < 1.0
    assert dreamer.status.startswith("done") and dreamer.frames_png == first
    # Fewer frames are the first frames of the longer dream: shown at once, no engine call.
    dreamer.frames = 2
    assert dreamer.frames_png == first[:2] and len(calls) == 1
    # Other settings are another dream: nothing shown until Run.
    dreamer.seed = 1
    assert dreamer.frames_png == [] and "press Run" in dreamer.caption
    dreamer.run(wait=True)
    assert len(calls) == 2 and len(dreamer.frames_png) == 2 and dreamer.frames_png != first[:2]


def test_dream_layer_change_redraws_and_coming_back_is_instant(dreamer, monkeypatch):
    dreamer.filter = 63
    dreamer.run(wait=True)
    dreamed = list(dreamer.frames_png)
    calls = count_calls(monkeypatch, deepdream_module, "dream")
    dreamer.layer = "block1_conv1"
    assert dreamer.filter_count == 32 and dreamer.filter == -1, "a filter the new layer lacks falls back to the whole layer"
    assert dreamer.frames_png == [] and dreamer.caption.startswith("the photo: press Run to dream · block1_conv1")
    dreamer.run(wait=True)
    assert len(calls) == 1 and len(dreamer.frames_png) == 4 and dreamer.frames_png != dreamed
    dreamer.layer, dreamer.filter = "block2_conv1", 63
    assert dreamer.frames_png == dreamed and len(calls) == 1
    assert "filter 63" in dreamer.caption


def test_dream_settings_reach_the_engine(dreamer, monkeypatch):
    calls = count_calls(monkeypatch, deepdream_module, "dream")
    dreamer.set_trait("filter", 5)
    dreamer.octaves, dreamer.octave_scale, dreamer.step_size, dreamer.zoom, dreamer.seed = 2, 1.5, 0.02, 1.1, 7
    dreamer.run(wait=True)
    settings = calls[0]
    assert (settings["layer"], settings["filter"], settings["octaves"], settings["octave_scale"]) == ("block2_conv1", 5, 2, 1.5)
    assert (settings["steps"], settings["step_size"], settings["frames"], settings["zoom"], settings["seed"]) == (3, 0.02, 4, 1.1, 7)


def test_dream_bad_settings_raise_with_the_valid_choices(dreamer):
    with pytest.raises(traitlets.TraitError, match=r"valid: -1 for the whole layer, or 0-63"):
        dreamer.filter = 64
    with pytest.raises(traitlets.TraitError, match="did you mean .*'block2_conv1'"):
        dreamer.layer = "block2_conv"
    with pytest.raises(traitlets.TraitError, match=r"octave_scale must be in \(1, 4\]"):
        dreamer.octave_scale = 1.0
    with pytest.raises(traitlets.TraitError, match="frames must be between 1 and 120"):
        dreamer.frames = 0
    with pytest.raises(traitlets.TraitError, match="step_size must be in"):
        dreamer.step_size = -0.1
    with pytest.raises(traitlets.TraitError, match="zoom must be in"):
        dreamer.zoom = 0.5
    with pytest.raises(traitlets.TraitError, match="Valid choices: cat, coffee"):
        dreamer.sample = "dog"
    assert (dreamer.filter, dreamer.layer, dreamer.frames, dreamer.sample) == (-1, "block2_conv1", 4, "sneaker")
    with pytest.raises(TypeError, match="unknown settings octave.*valid: filter, octaves"):
        DeepDream(dreamer.model, octave=3)


def test_dream_image_picker_and_bad_uploads(dreamer):
    dreamer.run(wait=True)
    dreamer.sample = "bag"
    assert dreamer.image_name.startswith("bag#") and dreamer.frames_png == [] and dreamer.error == ""
    # A bad upload is readable text in the widget; the photo stays.
    send_from_view(dreamer, {"type": "upload", "name": "notes.png"}, [b"this is not a picture"])
    assert "notes.png" in dreamer.error and dreamer.image_name.startswith("bag#")
    # A good upload (a colour photo) is dreamed on in grayscale for this model.
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    send_from_view(dreamer, {"type": "upload", "name": "red.png"}, [buffer.getvalue()])
    assert dreamer.error == "" and dreamer.sample == "" and dreamer.image_name.startswith("red.png#")
    assert dreamer.image.size == (40, 30) and dreamer.image.mode == "L"
    dreamer.run(wait=True)
    assert dreamer.dream_frames[0].size == (40, 30)


def test_dream_failure_is_shown_in_the_widget(dreamer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of dreams")

    monkeypatch.setattr(deepdream_module, "dream", broken)
    dreamer.run(wait=True)
    assert dreamer.error == "RuntimeError: out of dreams" and dreamer.status == "failed" and not dreamer.running


def test_dream_saves_png_and_gif(dreamer, tmp_path):
    with pytest.raises(RuntimeError, match="press Run"):
        dreamer.save_gif(tmp_path / "none.gif")
    dreamer.run(wait=True)
    dreamer.frame_index = 1
    dreamer.save_png(tmp_path / "frame.png")
    assert np.array_equal(decode((tmp_path / "frame.png").read_bytes())[..., :3], dreamer.picture())
    dreamer.save_gif(tmp_path / "dream.gif", duration_ms=50)
    with Image.open(tmp_path / "dream.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (308, 308)
    bundle, _ = dreamer._repr_mimebundle_()
    assert "image/png" in bundle


# -- both: the user's model comes back as it was ----------------------------------------------


def test_the_users_model_is_unchanged_after_both_widgets(tmp_path):
    net = make_user_model()
    before = snapshot(net)
    model = cw.load_model(net, input_size=(3, 32, 32))
    maximization = ActivationMaximization(model, filters="0-1", steps=4)
    maximization.run(wait=True)
    assert maximization.status.startswith("done") and maximization.error == ""
    dreamer = DeepDream(model, steps=2, frames=2)
    assert dreamer.sample == "cat" and dreamer.image.mode == "RGB"
    dreamer.run(wait=True)
    assert dreamer.status.startswith("done") and dreamer.error == ""
    assert len(dreamer.dream_frames) == 2 and dreamer.dream_frames[0].size == dreamer.image.size
    # A run stopped halfway restores the model too.
    dreamer.seed, dreamer.steps = 3, 5000
    dreamer.run()
    wait_until(lambda: dreamer.progress > 0)
    dreamer.stop()
    assert_unchanged(net, before)
    assert not any(t.name in (ActivationMaximization.__name__, DeepDream.__name__) for t in threading.enumerate() if t.is_alive())


def test_maximization_progress_is_saved_as_a_gif(tmp_path):
    from PIL import Image

    import cnn_widgets as cw

    widget = cw.ActivationMaximization(cw.load_model("fashion-cnn"), layer="block1_conv2", filters="0-3", steps=32)
    with pytest.raises(RuntimeError, match="press Run"):
        widget.save_gif(tmp_path / "none.gif")
    widget.run(wait=True)
    widget.save_gif(tmp_path / "progress.gif")
    assert Image.open(tmp_path / "progress.gif").n_frames >= 2


def test_a_fast_run_tells_the_view_only_as_often_as_it_can_follow_and_the_gif_keeps_every_preview(fashion, tmp_path):
    # 128 steps of a few ms each: progress reached the view at every step and the grid was
    # redrawn and encoded at each of 16 previews, costing more than the steps between them.
    widget = ActivationMaximization(fashion, layer="block2_conv1", filters="0-3", steps=128, size=28)
    progress, grids = [], []
    widget.observe(lambda change: progress.append(change["new"]), names="progress")
    widget.observe(lambda change: grids.append(change["new"]), names="grid_png")
    started = time.monotonic()
    widget.run(wait=True)
    elapsed = time.monotonic() - started  # the bounds grow with it: a slow machine cannot fail them
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert len(progress) <= 3 + elapsed / maximization_module.STATUS_EVERY_S, (len(progress), elapsed)
    assert 1 <= len(grids) <= 2 + elapsed / maximization_module.PREVIEW_EVERY_S, (len(grids), elapsed)
    assert widget.status.startswith("done") and all(widget.image(f) is not None for f in range(4))
    widget.save_gif(tmp_path / "run.gif")
    with Image.open(tmp_path / "run.gif") as gif:
        assert gif.n_frames == 128 // maximization_module._preview_every(128)  # every preview, drawn or not


def test_other_views_of_the_model_answer_while_a_long_run_goes_on(fashion):
    maximization = ActivationMaximization(fashion, layer="block2_conv1", filters="0-7", steps=3000, size=28)  # about 30 s
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block2_conv1")
    maximization.run()
    try:
        wait_until(lambda: maximization.progress > 0)
        maps.sample = "bag"  # a new image: a forward pass on the same model
        assert maps.error == "" and "bag" in maps.title
        assert maximization.running  # the feature maps did not wait for the run to end
    finally:
        maximization.stop()
