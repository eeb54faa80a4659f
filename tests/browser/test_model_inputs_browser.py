"""FeatureMaps tells a student what goes into the model, in JupyterLab 4 and Notebook 7:
the samples like the model's own pictures come first and the others say they are not,
a shipped sample keeps its name, and the view shows the input the model receives, with
its size, and what the model expects."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, wait_for_output

CELLS = [
    "import torch, cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "fashion = cw.FeatureMaps(model, cw.sample_image('ankle_boot'))\nfashion",
    "photos = cw.FeatureMaps(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()))\nphotos",
]


@pytest.mark.browser
def test_feature_maps_say_what_the_model_receives_and_expects(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, CELLS)
    fashion = wait_for_output(page, ".cw-feature-maps").first
    photos = wait_for_output(page, ".cw-feature-maps").nth(1)

    sample = fashion.locator("select[data-trait=sample]")
    expect(sample).to_have_value("ankle_boot")  # cw.sample_image("ankle_boot") keeps its name
    options = sample.locator("option").all_text_contents()
    assert options[0] == "tshirt" and "cat (a color photo: not like fashion-cnn's pictures)" in options, options
    expect(fashion.locator(".cw-input-expects")).to_have_text(
        "fashion-cnn expects a 28x28 gray picture: a light garment centred on black, as in Fashion-MNIST · "
        "pixels 0-1, normalized as (x - 0.286) / 0.353")
    expect(fashion.locator(".cw-input-caption")).to_have_text("what the model receives: 28x28 gray, from the 28x28 gray picture ankle_boot")

    # A photo is shrunk to the model's 28x28 gray input, and the view shows that picture.
    sample.select_option("cat")
    caption = fashion.locator(".cw-input-caption")
    expect(caption).to_have_text("what the model receives: 28x28 gray, from the 320x213 RGB picture cat")
    thumbnail = fashion.locator("img.cw-input-image")
    expect(thumbnail).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 112", arg=thumbnail.element_handle())
    is_gray = thumbnail.evaluate("""img => { const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext('2d'); g.drawImage(img, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false; return true; }""")
    assert is_gray
    fashion.screenshot(path=artifact_path(f"feature-maps-input-{jupyter_server.frontend}.png"))

    # A model for color photos offers photos first, and says the garments are not like its pictures.
    photo_options = photos.locator("select[data-trait=sample] option").all_text_contents()
    assert photo_options[:4] == ["cat", "coffee", "astronaut", "rocket"], photo_options
    assert "sneaker (a 28x28 gray Fashion-MNIST garment: not like Sequential's pictures)" in photo_options
    expect(photos.locator(".cw-input-caption")).to_contain_text("what the model receives: 224x224 RGB")
