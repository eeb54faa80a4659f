"""The Explorer on an atlas store, in JupyterLab and Notebook 7: every tab says what it shows, the dataset
examples come from the store with their own controls (the arrow keys move the filter), the
heatmaps tab names the shared layer it uses, and the Unit tab shows the selected filter's
weights, feature visualization, dataset examples and map for the image."""
from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import expect

import cnn_widgets as cw
from cnn_widgets.atlas import atlas, open_atlas
from cnn_widgets.models.datasets import load_fashion_mnist

from .jupyter import open_notebook, run_code, wait_for_output
from .test_tile_viewers import focus


@pytest.fixture
def store(tmp_path):
    """An atlas of 40 Fashion-MNIST images, two layers, with (quick) feature visualizations."""
    images, labels = load_fashion_mnist("test")
    model = cw.load_model("fashion-cnn", device="cpu")
    for i in range(40):
        folder = tmp_path / "images" / model.classes[int(labels[i])].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i].numpy()).save(folder / f"{i:03d}.png")
    atlas(model, tmp_path / "images", tmp_path / "store", layers=["block1_conv2", "block2_conv1"], k=4, workers=1, progress=False,
          visualizations=True, visualization_steps=16)
    return tmp_path / "store"


def visible_image(locator) -> None:
    """The <img> is on screen and its picture has been decoded (not an empty or broken image)."""
    expect(locator).to_be_visible()
    locator.evaluate("img => img.decode()")
    assert locator.evaluate("img => img.naturalWidth") > 0


@pytest.mark.browser
def test_the_explorer_on_an_atlas_explains_its_tabs_and_shows_a_unit(page, jupyter_server, artifact_path, store):
    open_notebook(page, jupyter_server, [
        "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
        f"explorer = cw.Explorer(model, 'sneaker', atlas={str(store)!r}, layer='block2_conv1')\nexplorer",
    ])
    wait_for_output(page, ".cw-filter-weights")
    about = page.locator(".cw-tab-about:visible")
    expect(about).to_contain_text("the learned weights of its kernel")

    # Dataset examples: from the store, with the true label and what the number is.
    page.get_by_role("tab", name="Dataset examples").click()
    examples = page.locator(".cw-dataset-examples")
    expect(examples).to_contain_text("block2_conv1, filter 0: the 4 of 40 images that excite it most, from the atlas")
    expect(examples).to_contain_text("Under each: its true label and the filter's strongest response in that image")
    first = open_atlas(store).examples("block2_conv1", 1)[0]
    # The arrow keys, in both frontends: the view handles them itself (js/examples.js). (Under the old
    # ipywidgets IntSlider, ArrowRight did not move the filter in Notebook 7.)
    focus(examples)
    page.keyboard.press("ArrowRight")
    expect(examples).to_contain_text("block2_conv1, filter 1: the 4 of 40")
    expect(examples.locator(".cw-examples-list li").first).to_contain_text(f"image #{first['image']} ({first['id']}) · true: {first['label']}")
    visible_image(examples.locator("img").first)
    assert run_code(page, "print(explorer.layer, explorer.filter_index, explorer.maps.filter_index)") == "block2_conv1 1 1"

    # Heatmaps: the shared layer, said so.
    page.get_by_role("tab", name="Heatmaps").click()
    expect(page.locator(".cw-tab-about:visible")).to_contain_text("Grad-CAM at the shared layer, block2_conv1")

    # Unit: the four pictures of filter 1, side by side.
    page.get_by_role("tab", name="Unit").click()
    unit = page.locator(".cw-unit-view")
    expect(unit).to_contain_text("block2_conv1, filter 1 of 64")
    for part, text in (("filter", "3×3 weights"), ("feature-visualization", "from the atlas"),
                       ("dataset-examples", "the 4 images that excite it most"), ("on-this-image", "its map for sneaker (after its ReLU")):
        panel = unit.locator(f".cw-unit-{part}")
        expect(panel).to_contain_text(text)
        visible_image(panel.locator("img"))
    boxes = [unit.locator(f".cw-unit-{part} img").bounding_box() for part in ("filter", "feature-visualization")]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 4 and boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"], "side by side"
    page.screenshot(path=artifact_path(f"explorer-unit-{jupyter_server.frontend}.png"), full_page=True)
