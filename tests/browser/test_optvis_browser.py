"""ActivationMaximization and DeepDream as a person sees them, in JupyterLab 4
and Notebook 7: pressing Run shows a rising progress bar, a changing status and
images as they are computed; Stop stops within moments and keeps what is there;
DeepDream's frames reach the browser as binary PNGs and its player (slider,
Play/Pause) moves through them. One notebook shows both widgets."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, wait_for_output
from .test_tile_viewers import upload_not_a_picture

CELLS = [
    "import cnn_widgets as cw\n"
    "from cnn_widgets.widgets.maximization import ActivationMaximization\n"
    "from cnn_widgets.widgets.deepdream import DeepDream\n"
    "model = cw.load_model('fashion-cnn')",
    # Thousands of steps: the run is surely still going when Stop is clicked.
    "maxi = ActivationMaximization(model, layer='block2_conv1', filters='0-7', steps=2000, size=28)\nmaxi",
    # 100 steps x 3 octaves per frame: the first frame comes in seconds, all 40 take a minute or more.
    "dream = DeepDream(model, 'sneaker', layer='block2_conv1', steps=100, frames=40)\ndream",
]
STOPPED_WITHIN_MS = 5_000  # one step is milliseconds; this allows for a loaded two-core machine


def progress_rises(page, widget) -> None:
    """The progress bar moves off zero and then further up."""
    bar = widget.locator("progress.cw-progress").element_handle()
    page.wait_for_function("bar => bar.value > 0", arg=bar)
    first = bar.evaluate("bar => bar.value")
    page.wait_for_function("([bar, first]) => bar.value > first", arg=[bar, first])


def set_number(widget, trait: str, value) -> None:
    """Type a value into a number control and commit it, as leaving the field does."""
    field = widget.locator(f"input[data-trait={trait}]")
    field.fill(str(value))
    field.dispatch_event("change")


def image_loaded(page, image) -> None:
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


@pytest.mark.browser
def test_run_stop_and_the_frame_player_in_the_browser(page, jupyter_server, artifact_path, tmp_path):
    frontend = jupyter_server.frontend
    open_notebook(page, jupyter_server, CELLS)
    maxi = wait_for_output(page, ".cw-maximization").first
    dream = wait_for_output(page, ".cw-deepdream").first

    # -- ActivationMaximization: Run streams a sharpening grid, Stop keeps it ---------------
    controls = maxi.locator(".cw-run-controls")
    expect(controls).to_have_attribute("data-running", "false")
    expect(maxi.locator("button.cw-stop")).to_be_disabled()
    grid = maxi.locator("img.cw-grid")
    image_loaded(page, grid)
    empty_grid = grid.get_attribute("src")
    maxi.locator("button.cw-run").click()
    expect(controls).to_have_attribute("data-running", "true")
    expect(maxi.locator("button.cw-run")).to_be_disabled()
    progress_rises(page, maxi)
    expect(maxi.locator(".cw-status")).to_contain_text("step ")
    expect(grid).not_to_have_attribute("src", empty_grid)  # a preview of the images arrived
    maxi.locator("button.cw-stop").click()
    expect(controls).to_have_attribute("data-running", "false", timeout=STOPPED_WITHIN_MS)
    expect(maxi.locator("button.cw-run")).to_be_enabled()
    expect(maxi.locator(".cw-status")).to_contain_text("stopped at step ")
    expect(maxi.locator(".cw-status")).to_contain_text(" of 2000 ")
    assert run_code(page, "print(maxi.running, maxi.status.split()[0], maxi.progress < 1)") == "False stopped True"
    assert run_code(page, "print(sum(maxi.image(f) is not None for f in range(8)))") == "8"

    # A short run to the end, set from the page, for a clean picture.
    set_number(maxi, "steps", 48)
    assert run_code(page, "print(maxi.steps)") == "48"
    maxi.locator("button.cw-run").click()
    expect(maxi.locator(".cw-status")).to_contain_text("done in", timeout=60_000)
    expect(controls).to_have_attribute("data-running", "false")
    assert maxi.locator("progress.cw-progress").evaluate("bar => bar.value") == 1
    assert run_code(page, "print(maxi.tile_titles[:2])") == "['filter 0', 'filter 1']"
    image_loaded(page, grid)
    maxi.screenshot(path=artifact_path(f"maximization-{frontend}.png"))

    # -- DeepDream: frames appear while it dreams; Stop keeps them -------------------------------
    expect(dream).to_have_attribute("data-frame-count", "0")
    expect(dream.locator(".cw-caption")).to_contain_text("press Run")
    frame = dream.locator("img.cw-frame")
    image_loaded(page, frame)
    photo = frame.get_attribute("src")
    expect(dream.locator("button.cw-play")).to_be_disabled()
    dream.locator("button.cw-run").click()
    expect(dream).to_have_attribute("data-running", "true")
    progress_rises(page, dream)
    expect(dream.locator(".cw-status")).to_contain_text("frame ")
    expect(dream).not_to_have_attribute("data-frame-count", "0", timeout=60_000)  # the first frame arrived
    expect(frame).not_to_have_attribute("src", photo)
    dream.locator("button.cw-stop").click()
    expect(dream).to_have_attribute("data-running", "false", timeout=STOPPED_WITHIN_MS)
    expect(dream.locator("button.cw-run")).to_be_enabled()
    expect(dream.locator(".cw-caption")).to_contain_text("stopped:")
    kept = int(dream.get_attribute("data-frame-count"))
    assert run_code(page, "print(dream.running, dream.status.split()[0], len(dream.frames_png))") == f"False stopped {kept}"
    assert 1 <= kept < 40

    # New settings from the page: the photo again until Run, then every frame.
    set_number(dream, "steps", 6)
    set_number(dream, "frames", 6)
    expect(dream).to_have_attribute("data-frame-count", "0")
    assert run_code(page, "print(dream.steps, dream.frames)") == "6 6"
    dream.locator("button.cw-run").click()
    expect(dream.locator(".cw-status")).to_contain_text("done in", timeout=60_000)
    expect(dream).to_have_attribute("data-frame-count", "6")
    expect(dream).to_have_attribute("data-frame-index", "5")  # the player follows the newest frame
    expect(dream.locator(".cw-frame-label")).to_have_text("frame 6 / 6")
    image_loaded(page, frame)
    assert frame.evaluate("img => img.naturalWidth") == 252  # the 28 px photo dreamed at 84 px, enlarged 3x
    assert frame.evaluate("img => img.clientWidth") == 252  # shown at that size: square pixels
    # The original beside the dream, labeled, at the same size.
    original = dream.locator("img.cw-original")
    image_loaded(page, original)
    assert original.evaluate("img => [img.naturalWidth, img.clientWidth]") == [252, 252]
    expect(dream.locator(".cw-dream-side .cw-section-title")).to_have_text("Original")
    last = frame.get_attribute("src")

    # The frame slider shows another frame and tells Python.
    slider = dream.locator("input.cw-frame-slider")
    slider.fill("1")
    expect(dream).to_have_attribute("data-frame-index", "1")
    expect(frame).not_to_have_attribute("src", last)
    assert run_code(page, "print(dream.frame_index)") == "1"

    # Play cycles through the frames in the browser; Pause stops and tells Python where.
    play = dream.locator("button.cw-play")
    play.click()
    expect(dream).to_have_attribute("data-playing", "true")
    seen = set()
    for _ in range(40):
        seen.add(dream.get_attribute("data-frame-index"))
        if len(seen) >= 4:
            break
        page.wait_for_timeout(60)
    assert len(seen) >= 4, f"playing showed only frames {sorted(seen)}"
    play.click()
    expect(dream).to_have_attribute("data-playing", "false")
    shown = dream.get_attribute("data-frame-index")
    assert run_code(page, "print(dream.frame_index)") == shown

    slider.fill("5")
    expect(dream).to_have_attribute("data-frame-index", "5")
    image_loaded(page, frame)
    expect(dream.locator(".cw-error")).to_be_hidden()
    dream.screenshot(path=artifact_path(f"deepdream-{frontend}.png"))

    # A bad upload reads as a message in the widget; picking a sample clears it.
    error = upload_not_a_picture(dream, tmp_path)
    expect(error).to_contain_text("notes.png")
    dream.locator("select[data-trait=sample]").select_option("bag")
    expect(error).to_be_hidden()
    expect(dream).to_have_attribute("data-frame-count", "0")
    assert run_code(page, "print(dream.image_name.split('#')[0], repr(dream.error))") == "bag ''"


NAVIGATION_CELLS = [
    "import cnn_widgets as cw\n"
    "from cnn_widgets.widgets.maximization import ActivationMaximization\n"
    "maxi = ActivationMaximization(cw.load_model('fashion-cnn'), layer='block2_conv1', filters='0-3', steps=48, size=28)\n"
    "maxi",
]


def click_maximization_tile(page, widget, position: int) -> None:
    """Click the centre of grid position ``position`` of the ActivationMaximization grid, using the layout Python sent."""
    layout = json.loads(run_code(page, "import json; print(json.dumps(maxi.grid_layout))"))
    grid = widget.locator("img.cw-grid")
    image_loaded(page, grid)
    ratio = grid.bounding_box()["width"] / layout["width"]
    col, row = position % layout["columns"], position // layout["columns"]
    x = layout["padding"] + col * (layout["tile_width"] + layout["padding"]) + layout["tile_width"] / 2
    y = layout["padding"] + row * (layout["tile_height"] + layout["label_height"] + layout["padding"]) + layout["tile_height"] / 2
    grid.click(position={"x": x * ratio, "y": y * ratio})


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_moving_to_a_filter_computes_it_and_the_status_says_what_happened(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, NAVIGATION_CELLS)
    maxi = wait_for_output(page, ".cw-maximization").first
    status = maxi.locator(".cw-status")
    caption = maxi.locator(".cw-enlarged .cw-caption")
    tile = maxi.locator("img.cw-tile")

    # Before a run the status says what Run would do, about how long it takes, and on what that is based.
    expect(status).to_contain_text("block2_conv1: Run optimizes 4 images × 48 steps at 28 px in about ")
    expect(status).to_contain_text(" s per step")
    expect(status).to_contain_text("measured: ")
    expect(caption).to_contain_text("not computed yet")
    image_loaded(page, tile)
    blank = tile.get_attribute("src")

    # A click on a tile not computed yet optimizes that filter.
    click_maximization_tile(page, maxi, 2)
    expect(caption).to_contain_text("filter 2 of 64", timeout=10_000)
    expect(caption).to_contain_text("finished", timeout=60_000)
    expect(tile).not_to_have_attribute("src", blank)

    # The slider goes to filter 9, outside the grid's 0-3: it is optimized, not left blank.
    maxi.locator("input[data-trait=filter_index]").fill("9")
    expect(caption).to_contain_text("filter 9 of 64", timeout=10_000)
    expect(caption).to_contain_text("finished", timeout=60_000)
    assert run_code(page, "print(maxi.filter_index, maxi.image(9) is not None, maxi.status.startswith('done in'))") == "9 True True"

    # So does the right arrow key, to filter 10.
    maxi.press("ArrowRight")
    expect(caption).to_contain_text("filter 10 of 64", timeout=10_000)
    expect(caption).to_contain_text("finished", timeout=60_000)
    assert run_code(page, "print(maxi.image(10) is not None)") == "True"

    # Stop says where it stopped; nothing says "in progress" afterwards.
    set_number(maxi, "steps", 2000)
    maxi.locator("button.cw-run").click()
    expect(status).to_contain_text("/2000")  # the new run's steps (the bar still showed the last run's end before)
    progress_rises(page, maxi)
    maxi.locator("button.cw-stop").click()
    expect(maxi.locator(".cw-run-controls")).to_have_attribute("data-running", "false", timeout=STOPPED_WITHIN_MS)
    expect(status).to_contain_text("stopped at step ")
    reached = run_code(page, "print(round(maxi.progress * 2000))")
    expect(status).to_contain_text(f"stopped at step {reached} of 2000")
    assert run_code(page, "print(any('in progress' in t for t in maxi.tile_titles))") == "False"

    # A layer change resets the status to the new layer, and its selected filter is computed.
    set_number(maxi, "steps", 32)
    maxi.locator("select[data-trait=layer]").select_option("block1_conv2")
    expect(status).to_contain_text("block1_conv2: Run optimizes", timeout=60_000)
    expect(caption).to_contain_text("finished", timeout=60_000)
    expect(status).not_to_contain_text("step 2000")

    # Class visualization: one image per class, with the class names (slider, caption, tiles); the layer menu is hidden.
    slider_label = maxi.locator(".cw-slider-label")
    expect(slider_label).to_have_text("filter 10")
    maxi.locator("select[data-trait=objective]").select_option("class")
    expect(maxi.locator("select[data-trait=layer]")).to_be_hidden()
    expect(slider_label).to_have_text("class 9: Ankle boot")  # filter 10 selected: the last of the 10 classes
    expect(caption).to_contain_text("class 9: Ankle boot", timeout=10_000)
    expect(caption).to_contain_text("finished", timeout=60_000)
    maxi.locator("button.cw-run").click()
    expect(status).to_contain_text("(4 images)", timeout=60_000)  # classes 0-3, as the filters field says
    maxi.locator("input[data-trait=filter_index]").fill("3")  # computed by the run: shown at once
    expect(slider_label).to_have_text("class 3: Dress")
    expect(caption).to_contain_text("class 3: Dress (of 10 classes)")
    assert run_code(page, "print(maxi.tile_titles[:2])") == "['class 0: T-shirt/top', 'class 1: Trouser']"
    expect(maxi.locator(".cw-error")).to_be_hidden()
    maxi.screenshot(path=artifact_path("maximization-classes-lab.png"))
