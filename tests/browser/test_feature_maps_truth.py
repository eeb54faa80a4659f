"""FeatureMaps tells the truth at a glance, in JupyterLab 4 and Notebook 7: the
before/after-activation choice changes the caption and the values, the colorbar's
numbers are the data's, a map that is zero for the image is dark under the default
scale, and an untrained model says so in its title."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, wait_for_output

CELLS = [
    "import torch, cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')\n"
    "with torch.no_grad():  # filter 5 never fires: zero after the ReLU for any image\n"
    "    model.module.features[0].weight[5] = 0\n    model.module.features[0].bias[5] = -1",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv1')\nmaps",
    "untrained = cw.FeatureMaps(cw.load_model('fashion-cnn', weights=None), 'sneaker')\nuntrained",
]

# The colour of the enlarged picture's centre pixel, read back from the page.
CENTRE_PIXEL = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3)); }"""


def tick_labels(widget, trait: str) -> list[str]:
    return widget.locator(f".cw-colorbar[data-trait={trait}] .cw-colorbar-tick").all_text_contents()


@pytest.mark.browser
def test_feature_maps_say_what_they_show_with_numbers(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, CELLS)
    maps = wait_for_output(page, ".cw-feature-maps").first
    untrained = wait_for_output(page, ".cw-feature-maps").nth(1)
    expect(maps).to_have_attribute("data-tile-count", "32")
    caption = maps.locator(".cw-caption")
    expect(caption).to_contain_text("after ReLU")
    expect(maps.locator(".cw-title")).to_contain_text("after ReLU")

    # The grid's colorbar runs from 0 to the layer's largest value, as Python computes it.
    high = run_code(page, "print(f'{float(maps.maps().max()):.3g}')")
    labels = tick_labels(maps, "grid_colorbar")
    assert labels[0] == "0" and labels[-1] == high, (labels, high)
    expect(maps.locator(".cw-colorbar[data-trait=grid_colorbar]")).to_be_visible()
    expect(maps.locator(".cw-colorbar[data-trait=tile_colorbar]")).to_be_visible()

    # Under the default (layer-wide) scale, the map that is zero for this image is the darkest colour.
    run_code(page, "maps.filter_index = 5")
    expect(caption).to_contain_text("filter 5 of 32")
    expect(caption).to_contain_text("max 0 ")
    tile = maps.locator("img.cw-tile")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=tile.element_handle())
    darkest = run_code(page, "print(cw.render.colormap_lut(maps.colormap)[0].tolist())")
    assert str(tile.evaluate(CENTRE_PIXEL)).replace(" ", "") == darkest.replace(" ", "")
    maps.screenshot(path=artifact_path(f"feature-maps-truth-{jupyter_server.frontend}.png"))

    # "before ReLU" shows the conv's own output: the caption says so and negative values appear.
    stage = maps.locator("select[data-trait=stage]")
    assert stage.locator("option").all_text_contents() == ["after ReLU", "before ReLU (conv output)"]
    stage.select_option("conv")
    expect(caption).to_contain_text("before ReLU")
    expect(maps.locator(".cw-title")).to_contain_text("before ReLU")
    low = run_code(page, "print(f'{float(maps.maps().min()):.3g}')")
    assert low.startswith("-")
    expect(maps.locator(".cw-colorbar[data-trait=grid_colorbar] .cw-colorbar-tick").first).to_have_text(low)
    assert run_code(page, "print(maps.stage)") == "conv"

    # A model with random weights says so where a student looks first.
    expect(untrained.locator(".cw-title")).to_contain_text("untrained (random weights)")
    expect(untrained.locator(".cw-title")).to_be_visible()
    expect(maps.locator(".cw-title")).not_to_contain_text("untrained")
