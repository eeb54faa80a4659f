"""GradCAM as a person sees it, in JupyterLab 4 and Notebook 7: the top-5
predictions appear with a heatmap over the image; clicking another class or
choosing another method repaints the heatmap and reaches Python; a comparison
shows two heatmaps; a bad upload reads as a message in the widget."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import leave_widgets, open_notebook, run_code, wait_for_output
from .test_tile_viewers import focus, upload_not_a_picture

CELLS = [
    "import cnn_widgets as cw\nfrom cnn_widgets.widgets.gradcam import GradCAM\nmodel = cw.load_model('fashion-cnn')",
    "cam = GradCAM(model, 'sneaker')\ncam",
]

# A top-5 class whose map looks different from the one shown, whatever the weights predict.
PICK_OTHER_CLASS = """
import numpy as np
from cnn_widgets import render
shown = render.normalize(cam.heatmap().numpy())
print(next((p['index'] for p in cam.predictions[1:]
            if not np.allclose(render.normalize(cam.heatmap(target=p['index']).numpy()), shown, atol=1e-3)), -1))
"""


def wait_for_new_overlay(page, widget, previous_src: str | None) -> str:
    """Wait until the heatmap <img> shows a new picture, fully decoded; return its src."""
    overlay = widget.locator("img.cw-overlay")
    if previous_src is not None:
        expect(overlay).not_to_have_attribute("src", previous_src)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle())
    return overlay.get_attribute("src")


def settled(page, widget) -> str:
    """Wait until Python has painted everything asked of it and the page has shown it; return the heatmap's src."""
    assert run_code(page, "cam.wait(); print(cam.busy)") == "False"
    return wait_for_new_overlay(page, widget, None)


@pytest.mark.browser
def test_gradcam_in_the_browser(page, jupyter_server, artifact_path, tmp_path):
    frontend = jupyter_server.frontend
    open_notebook(page, jupyter_server, CELLS)
    widget = wait_for_output(page, ".cw-gradcam").first

    # Five predictions, the top one selected, its heatmap painted over the image.
    expect(widget).to_have_attribute("data-prediction-count", "5")
    rows = widget.locator(".cw-prediction")
    expect(rows).to_have_count(5)
    expect(rows.first).to_have_class("cw-prediction cw-selected")
    top = rows.first.get_attribute("data-index")
    expect(widget).to_have_attribute("data-target-index", top)
    expect(widget).to_have_attribute("data-paints", "1")
    src = wait_for_new_overlay(page, widget, None)
    assert widget.locator("img.cw-overlay").evaluate("img => img.naturalWidth") == 252
    expect(widget.locator(".cw-heatmap-a .cw-caption")).to_contain_text("Grad-CAM · ")
    expect(widget.locator(".cw-error")).to_be_hidden()

    # Clicking another class repaints the heatmap and tells Python.
    other = run_code(page, PICK_OTHER_CLASS)
    assert other != "-1", "every top-5 class has the same map under these weights"
    name = widget.locator(f'.cw-prediction[data-index="{other}"] .cw-prediction-name').text_content()
    widget.locator(f'.cw-prediction[data-index="{other}"]').click()
    expect(widget).to_have_attribute("data-target-index", other)
    expect(widget.locator(f'.cw-prediction[data-index="{other}"]')).to_have_class("cw-prediction cw-selected")
    expect(widget.locator(".cw-heatmap-a .cw-caption")).to_contain_text(f"Grad-CAM · {name} (")
    src = wait_for_new_overlay(page, widget, src)
    assert run_code(page, "print(cam.target_index, cam.error == '')") == f"{other} True"
    leave_widgets(page)  # no hover highlight in the picture, no saved-picture update to rebuild it under the camera
    widget.screenshot(path=artifact_path(f"gradcam-{frontend}.png"))

    # The keyboard walks through the predictions.
    focus(widget)
    rank = widget.locator(".cw-prediction").evaluate_all(f"rows => rows.findIndex((row) => row.dataset.index === '{other}')")
    page.keyboard.press("ArrowUp")
    expect(widget).to_have_attribute("data-target-index", rows.nth(rank - 1).get_attribute("data-index"))
    page.keyboard.press("ArrowDown")
    expect(widget).to_have_attribute("data-target-index", other)
    src = settled(page, widget)
    expect(widget.locator(".cw-heatmap-a .cw-caption")).to_contain_text(f"Grad-CAM · {name} (")

    # Another method repaints the heatmap; the layer picker says it is not used.
    widget.locator("select[data-trait=method]").select_option("saliency")
    expect(widget).to_have_attribute("data-method", "saliency")
    expect(widget.locator(".cw-heatmap-a .cw-caption")).to_contain_text(f"Saliency (gradient) · {name} (")
    expect(widget.locator("select[data-trait=layer]")).to_be_disabled()
    src = wait_for_new_overlay(page, widget, src)
    assert run_code(page, "print(cam.method, cam.target_index)") == f"saliency {other}"

    # Comparing with another method shows both heatmaps, labelled A and B.
    widget.locator("select[data-trait=compare]").select_option("gradcam")
    compare = widget.locator("img.cw-compare")
    expect(compare).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=compare.element_handle())
    expect(widget.locator(".cw-heatmap-b .cw-caption")).to_contain_text(f"B · Grad-CAM · {name} (")
    expect(widget.locator(".cw-heatmap-a .cw-caption")).to_contain_text("A · Saliency")
    assert run_code(page, "print(cam.compare, cam.compare_kind, len(cam.compare_png) > 0)") == "gradcam method True"
    leave_widgets(page)  # no hover highlight in the picture, no saved-picture update to rebuild it under the camera
    widget.screenshot(path=artifact_path(f"gradcam-compare-{frontend}.png"))
    widget.locator("select[data-trait=compare]").select_option("")
    expect(compare).to_be_hidden()

    # A bad upload is a readable message in the widget, which keeps working.
    error = upload_not_a_picture(widget, tmp_path)
    expect(error).to_contain_text("the file 'notes.png' is not an image")
    leave_widgets(page)  # no hover highlight in the picture, no saved-picture update to rebuild it under the camera
    widget.screenshot(path=artifact_path(f"gradcam-error-{frontend}.png"))
    widget.locator("select[data-trait=sample]").select_option("trouser")
    expect(error).to_be_hidden()
    wait_for_new_overlay(page, widget, src)
    assert run_code(page, "print(cam.image_name.split('#')[0], cam.target_index == cam.predictions[0]['index'], repr(cam.error))") == "trouser True ''"

    # On a 1280x720 window, the longest sample label (a photo, "not like fashion-cnn's pictures")
    # does not widen the left column (it made it about 395 px): the closed menu is cut to the
    # column and its full label is its tooltip. Under the maps, what a cell of the layer is.
    page.set_viewport_size({"width": 1280, "height": 720})
    widget.locator("select[data-trait=method]").select_option("gradcam")  # a layer method: the note is about its layer
    expect(widget).to_have_attribute("data-method", "gradcam")
    sample = widget.locator("select[data-trait=sample]")
    longest = max(sample.locator("option").all_text_contents(), key=len)
    assert "not like fashion-cnn's pictures" in longest
    sample.select_option(label=longest)
    src = wait_for_new_overlay(page, widget, src)
    expect(sample).to_have_attribute("title", f"image: {longest}")
    side = widget.locator(".cw-side").evaluate("side => side.getBoundingClientRect().width")
    assert side <= 262, f"the left column is {side} px wide"
    expect(widget.locator(".cw-layer-note")).to_contain_text("block3_conv2 is a 7 x 7 map: each cell covers 4 x 4 pixels")
    leave_widgets(page)
    widget.screenshot(path=artifact_path(f"gradcam-1280-{frontend}.png"))


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_a_long_score_cam_shows_progress_and_stops_on_request(page, jupyter_server):
    """Score-CAM on VGG16's last block runs 512 masked passes (minutes on a CPU): the
    widget says how far it is, and Stop ends it at once and keeps the heatmap shown."""
    open_notebook(
        page,
        jupyter_server,
        ["import cnn_widgets as cw\nmodel = cw.load_model('vgg16', weights=None)", "cam = cw.GradCAM(model, 'cat')\ncam"],
    )
    widget = wait_for_output(page, ".cw-gradcam").first
    shown = wait_for_new_overlay(page, widget, None)
    widget.locator('select[data-trait="method"]').select_option("scorecam")
    status = widget.locator(".cw-busy-line")
    expect(status).to_contain_text("masked passes (one per channel)", timeout=60_000)
    widget.locator("button.cw-stop").click()
    # Stop is no error: a neutral notice, and the menu is back to the map the picture shows.
    expect(widget.locator(".cw-notice")).to_contain_text("stopped Score-CAM for", timeout=30_000)
    expect(widget.locator(".cw-error")).to_be_hidden()
    expect(status).to_be_hidden()
    expect(widget.locator('select[data-trait="method"]')).to_have_value("gradcam")
    expect(widget).to_have_attribute("data-stale", "false")
    assert widget.locator("img.cw-overlay").get_attribute("src") == shown
    assert run_code(page, "print(cam.busy, cam.method, repr(cam.error))") == "False gradcam ''"


@pytest.mark.browser
def test_the_trust_panel_shows_both_checks(page, jupyter_server, artifact_path):
    """Issue 13: on demand, the map of the model with its output layer randomized sits beside
    its rank correlation and verdict, and the ROAD curve of the map is drawn with a random map's."""
    open_notebook(page, jupyter_server, [CELLS[0], "cam = GradCAM(model, 'sneaker', method='guided_backprop')\ncam"])
    widget = wait_for_output(page, ".cw-gradcam").first
    wait_for_new_overlay(page, widget, None)
    panel = widget.locator(".cw-trust")
    panel.locator("button.cw-trust-button").click()
    expect(panel).to_have_attribute("data-state", "done", timeout=120_000)
    randomized = panel.locator("img.cw-trust-randomized")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=randomized.element_handle())
    expect(panel.locator(".cw-trust-rho")).to_contain_text("output layer classifier.5 randomized · rank correlation with the map ρ = 0.9")
    expect(panel.locator(".cw-trust-sanity")).to_have_class("cw-trust-sanity cw-trust-flagged")
    expect(panel.locator(".cw-trust-verdict")).to_contain_text("barely changes")
    expect(panel.locator("svg.cw-road-chart polyline")).to_have_count(2)
    expect(panel.locator(".cw-trust-score")).to_contain_text("for a random map")
    # Pictograms and legend lines are SVG shapes, not characters a font may lack (issue 12).
    expect(panel.locator(".cw-trust-verdict svg.cw-glyph-warning")).to_have_count(1)
    expect(panel.locator(".cw-trust-steps svg.cw-glyph-arrow").first).to_be_visible()
    expect(panel.locator(".cw-trust-legend svg.cw-line-key-dashed")).to_have_count(1)
    panel.screenshot(path=artifact_path(f"gradcam-trust-{jupyter_server.frontend}.png"))
    # Another method: the numbers of the old map disappear.
    widget.locator('select[data-trait="method"]').select_option("gradcam")
    expect(panel).to_have_attribute("data-state", "")


# The weakest top-5 class next to the top one (the test checks the data has a weak one).
WEAKEST_CLASS = """
top = float(cam.heatmap().max())
weak = min(cam.predictions[1:], key=lambda p: float(cam.heatmap(target=p['index']).max()))
print(weak['name'], float(cam.heatmap(target=weak['index']).max()) / top < 0.25)
"""

# Keep the model busy from another thread, so the next view waits where the page can see it.
HOLD_THE_MODEL = """
import threading
from cnn_widgets.models.state import model_lock
release, held = threading.Event(), threading.Event()
def _hold():
    with model_lock(model.module):
        held.set()
        release.wait()
threading.Thread(target=_hold, daemon=True).start()
print(held.wait(60))
"""

# Mean brightness of each heatmap <img> as the page shows it.
BRIGHTNESS = """widget => [...widget.querySelectorAll('.cw-heatmaps img')].map((img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
  return sum / (3 * data.length / 4);
})"""


@pytest.mark.browser
def test_compared_classes_share_a_scale_and_the_menus_always_agree_with_the_picture(page, jupyter_server, artifact_path):
    """Issue 13: a weak class alone is drawn on the top class's scale, and two classes compared
    share one numbered colorbar, so the class at 0.3 % is visibly weaker than the one at 97.6 %; while the menus' view is computed the old picture
    is faded and says it is the previous choice; Stop is a neutral notice and puts the menus
    back to the picture; quick menu changes end with the picture of the last choice."""
    frontend = jupyter_server.frontend
    open_notebook(page, jupyter_server, CELLS)
    widget = wait_for_output(page, ".cw-gradcam").first
    wait_for_new_overlay(page, widget, None)
    expect(widget).to_have_attribute("data-stale", "false")
    expect(widget).to_have_attribute("data-colorbars", "1")

    # Two classes of very different probability: one scale, the weak class visibly weaker.
    weak, is_weak = run_code(page, WEAKEST_CLASS).rsplit(" ", 1)
    assert is_weak == "True", "no top-5 class with a weak map under these weights"
    # Alone, the weak class is drawn on the top class's scale too, and its colorbar says so.
    weak_index, top_index, top_peak = run_code(
        page, f"print(cam.model.classes.index({weak!r}), cam.predictions[0]['index'], float(cam.heatmap().max()))").split()
    before = widget.locator("img.cw-overlay").get_attribute("src")
    widget.locator(f'.cw-prediction[data-index="{weak_index}"]').click()
    settled(page, widget)
    wait_for_new_overlay(page, widget, before)
    bar = widget.locator(".cw-shared-colorbar")
    expect(bar.locator(".cw-colorbar-note")).to_contain_text(
        "on the scale of Sneaker (97.6%), the top class, so colours compare across classes")
    assert float(bar.get_attribute("data-high")) == pytest.approx(float(top_peak))
    expect(widget.locator('select[data-trait="scale"]')).to_be_enabled()
    widget.locator(f'.cw-prediction[data-index="{top_index}"]').click()
    settled(page, widget)
    expect(bar.locator(".cw-colorbar-note")).to_contain_text("Sneaker (97.6%) is the top class")
    widget.locator("select[data-trait=compare]").select_option(weak)
    compare = widget.locator("img.cw-compare")
    expect(compare).to_be_visible()
    settled(page, widget)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=compare.element_handle())
    expect(widget).to_have_attribute("data-colorbars", "1")
    bar = widget.locator(".cw-shared-colorbar")
    expect(bar).to_be_visible()
    expect(bar.locator(".cw-colorbar-note")).to_contain_text("A and B on one scale · Grad-CAM: logit per position")
    expect(bar.locator(".cw-colorbar-tick").first).to_have_text("0")
    assert bar.locator(".cw-colorbar-tick").count() >= 3
    peak = run_code(page, "print(float(cam.heatmap().max()))")
    assert float(bar.get_attribute("data-high")) == pytest.approx(float(peak))
    expect(widget.locator(".cw-heatmap-b .cw-panel-class")).to_have_text(weak)
    expect(widget.locator(".cw-heatmap-b .cw-panel-probability")).to_contain_text("% probability")
    expect(widget.locator(".cw-heatmap-a .cw-panel-probability")).to_contain_text("97.6% probability")
    strong, faint = widget.evaluate(BRIGHTNESS)
    assert faint < 0.5 * strong, (strong, faint)  # 0.35 on one scale; 0.66 with each map on its own peak
    expect(widget.locator('select[data-trait="scale"]')).to_be_enabled()
    leave_widgets(page)  # no hover highlight in the picture, no saved-picture update to rebuild it under the camera
    widget.screenshot(path=artifact_path(f"gradcam-compare-classes-{frontend}.png"))

    # Quick menu changes while the model is busy: the old picture is faded and says whose it is.
    shown = widget.locator("img.cw-overlay").get_attribute("src")
    assert run_code(page, HOLD_THE_MODEL) == "True"
    widget.locator("select[data-trait=method]").select_option("layercam")
    third = widget.locator(".cw-prediction").nth(2)
    third_name = third.locator(".cw-prediction-name").text_content()
    third.click()
    widget.locator("select[data-trait=method]").select_option("gradcam++")
    expect(widget).to_have_attribute("data-stale", "true")
    pending = widget.locator(".cw-pending")
    expect(pending).to_contain_text(f"Faded: the previous choice (Grad-CAM · Sneaker and Grad-CAM · {weak}), not what the menus say")
    expect(widget.locator(".cw-busy-line")).to_contain_text("computing Grad-CAM++ for")
    expect(pending).to_contain_text("being computed")
    assert widget.locator("img.cw-overlay").get_attribute("src") == shown
    leave_widgets(page)  # no saved-picture update to rebuild the view under the camera
    widget.screenshot(path=artifact_path(f"gradcam-pending-{frontend}.png"))
    assert run_code(page, "release.set(); cam.wait(); print(cam.method, cam.shown['method'], cam.shown['target_index'] == cam.target_index)") == "gradcam++ gradcam++ True"
    expect(widget).to_have_attribute("data-stale", "false")
    expect(pending).to_be_hidden()
    expect(widget.locator(".cw-heatmap-a .cw-caption")).to_contain_text(f"A · Grad-CAM++ · {third_name} (")
    expect(widget.locator(".cw-heatmap-b .cw-caption")).to_contain_text(f"B · Grad-CAM++ · {weak} (")
    expect(widget.locator(".cw-heatmap-a .cw-panel-class")).to_have_text(third_name)
    src = wait_for_new_overlay(page, widget, shown)

    # Another method, then Stop before it is done: no error, the menu is back to the picture.
    assert run_code(page, HOLD_THE_MODEL) == "True"
    widget.locator("select[data-trait=method]").select_option("scorecam")
    expect(widget).to_have_attribute("data-stale", "true")
    widget.locator("button.cw-stop").click()
    assert run_code(page, "release.set(); cam.wait(); print(cam.method, repr(cam.error))") == "gradcam++ ''"
    notice = widget.locator(".cw-notice")
    expect(notice).to_contain_text(f"stopped Score-CAM for {third_name}")
    expect(notice).to_contain_text("the menus are back to the map shown")
    expect(widget.locator(".cw-error")).to_be_hidden()
    expect(widget.locator("select[data-trait=method]")).to_have_value("gradcam++")
    expect(widget).to_have_attribute("data-stale", "false")
    assert widget.locator("img.cw-overlay").get_attribute("src") == src
    leave_widgets(page)  # no saved-picture update to rebuild the view under the camera
    widget.screenshot(path=artifact_path(f"gradcam-stopped-{frontend}.png"))
