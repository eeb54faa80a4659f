"""FilterWeights says what it shows, in JupyterLab 4 and Notebook 7: a line on what the
tiles, rows and columns are, a colorbar whose numbers are the weights' (zero marked),
and, for a small kernel, the weights themselves written in the enlarged view."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, wait_for_output
from .test_tile_viewers import click_tile

CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "weights = cw.FilterWeights(model, layer='block1_conv1')\nweights",
]


def close_enough(shown: str, weight: float) -> bool:
    """A number written with three significant digits is the weight."""
    return abs(float(shown) - weight) <= 0.005 * abs(weight) + 1e-12


@pytest.mark.browser
def test_filter_weights_say_what_they_show_with_numbers(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, CELLS)
    weights = wait_for_output(page, ".cw-filter-weights").first
    expect(weights).to_have_attribute("data-tile-count", "32")
    expect(weights.locator(".cw-grid-caption")).to_have_text("32 filters, one tile each: its 3x3 kernel on the single input channel")

    # The grid's colorbar runs from -max|w| to +max|w| of the layer, with zero marked in the middle.
    largest = float(run_code(page, "print(float(weights.weights().abs().max()))"))
    bar = weights.locator(".cw-colorbar[data-trait=grid_colorbar]")
    expect(bar).to_be_visible()
    ticks = bar.locator(".cw-colorbar-tick")
    labels, values = ticks.all_text_contents(), [float(v) for v in ticks.evaluate_all("ts => ts.map(t => t.dataset.value)")]
    assert labels[0] == f"{-largest:.3g}" and labels[-1] == f"{largest:.3g}" and "0" in labels, labels
    assert values[0] == pytest.approx(-largest) and values[-1] == pytest.approx(largest)
    # No two numbers shown run together ("-0.422-0.25"): the bar hides those that would, keeping both ends and
    # zero, also when it gets narrower (here 150 px, where all five would overlap).
    bar.evaluate("node => { node.style.maxWidth = '150px'; }")
    page.wait_for_function("bar => [...bar.querySelectorAll('.cw-colorbar-tick')].some(t => t.style.visibility === 'hidden')",
                           arg=bar.element_handle())  # the resize is measured on the next frame
    shown = ticks.evaluate_all("ts => ts.filter(t => t.style.visibility !== 'hidden').map(t => { const r = t.getBoundingClientRect(); "
                               "return [t.textContent, r.left, r.right]; })")
    assert [label for label, _, _ in shown][:: len(shown) - 1] == [labels[0], labels[-1]] and "0" in [label for label, _, _ in shown], shown
    assert all(right + 6 <= left for (_, _, right), (_, left, _) in zip(shown, shown[1:])), shown
    bar.evaluate("node => { node.style.maxWidth = ''; }")
    expect(bar.locator(".cw-colorbar-zero")).to_be_visible()
    expect(bar.locator(".cw-colorbar-note")).to_contain_text("blue negative, white 0, red positive")

    # Clicking a tile writes that filter's weights into the enlarged view, on the grid's scale.
    click_tile(page, "weights", 6)
    expect(weights).to_have_attribute("data-filter-index", "6")
    expect(weights.locator(".cw-kernel figcaption")).to_have_text("the kernel (1 input channel)")
    kernel = json.loads(run_code(page, "import json; print(json.dumps(weights.weights()[6, 0].tolist()))"))
    cells = weights.locator(".cw-kernel td")
    expect(cells).to_have_count(9)
    shown = cells.all_text_contents()
    exact = [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")]
    flat = [value for row in kernel for value in row]
    assert all(close_enough(text, value) for text, value in zip(shown, flat)), (shown, flat)
    assert exact == pytest.approx(flat)
    # The saved picture (picture(), save_png, the notebook's PNG) writes the same numbers.
    drawn = json.loads(run_code(page, "from cnn_widgets.render import format_weight\n"
                                "print(json.dumps([format_weight(v) for t in weights.tile_numbers for r in t['values'] for v in r]))"))
    assert drawn == shown
    tile_bar = weights.locator(".cw-colorbar[data-trait=tile_colorbar]")
    expect(tile_bar).to_be_visible()
    assert tile_bar.locator(".cw-colorbar-tick").all_text_contents() == labels
    weights.screenshot(path=artifact_path(f"filter-weights-truth-{jupyter_server.frontend}.png"))

    # Deeper layer, channels view: rows and columns are named, and the numbers are per input channel.
    weights.locator("select[data-trait=layer]").select_option("block2_conv1")
    weights.locator("select[data-trait=view]").select_option("channels")
    expect(weights).to_have_attribute("data-tile-count", str(64 * 32))
    expect(weights.locator(".cw-grid-caption")).to_contain_text("rows: the 64 filters")
    expect(weights.locator(".cw-grid-caption")).to_contain_text("columns: their 32 input channels")
    expect(weights.locator(".cw-kernel")).to_have_count(32)
    expect(weights.locator(".cw-kernel figcaption").nth(31)).to_have_text("input channel 31")
