"""ConvolutionExplainer as a student sees it in JupyterLab: the output number shown at a
position is conv2d's, the arrow keys move the kernel, clicking the feature map jumps
there, Play slides it by itself and Pause stops it, and a kernel of your own is used."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import leave_widgets, open_notebook, run_code, wait_for_output
from .test_tile_viewers import focus

CELLS = [
    "import cnn_widgets as cw\nimport torch.nn.functional as F\nmodel = cw.load_model('fashion-cnn')",
    "conv = cw.ConvolutionExplainer(model, 'sneaker', filter=3, position=(14, 9))\nconv",
]

# conv2d of the model's first layer at the widget's position, printed as the view rounds it.
CONV2D = """
layer = model.layers[0].module
inputs = model.preprocess(cw.sample_image('sneaker'))
row, col = conv.position
value = float(F.conv2d(inputs, layer.weight, layer.bias, padding=1)[0, conv.filter_index, row, col])
print(row, col, f'{value:.3f}', f'{value:.6f}')
"""


def shown_output(widget) -> tuple[str, str, str, str]:
    """The row, column, output as the view writes it, and the view's full-precision value."""
    value = widget.locator(".cw-total .cw-output-value")
    return (widget.get_attribute("data-row"), widget.get_attribute("data-col"), value.text_content(), value.get_attribute("data-value"))


def check_against_conv2d(page, widget) -> None:
    row, col, text, value = shown_output(widget)
    expected_row, expected_col, expected_text, expected_value = run_code(page, CONV2D).split()
    assert (row, col) == (expected_row, expected_col)
    assert text == expected_text
    assert float(value) == pytest.approx(float(expected_value), abs=1e-5)


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_the_convolution_explainer_in_the_browser(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, CELLS)
    widget = wait_for_output(page, ".cw-convolution").first
    expect(widget).to_have_attribute("data-row", "14")
    expect(widget).to_have_attribute("data-col", "9")
    output_map = widget.locator("img.cw-output-map")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=output_map.element_handle())
    expect(widget.locator(".cw-title")).to_have_text("fashion-cnn · filter 3 of block1_conv1 · sneaker")
    expect(widget.locator(".cw-units")).to_contain_text("(pixel - mean) / std")
    expect(widget.locator(".cw-patch td")).to_have_count(9)
    expect(widget.locator(".cw-error")).to_be_hidden()

    # The output number shown is conv2d's at that position.
    check_against_conv2d(page, widget)

    # At the border the patch shows the padding zeros.
    run_code(page, "conv.move_to(0, 4)")
    expect(widget).to_have_attribute("data-row", "0")
    expect(widget.locator(".cw-patch td.cw-padding-cell")).to_have_count(3)
    expect(widget.locator(".cw-patch td.cw-padding-cell").first).to_have_text("0.00")
    check_against_conv2d(page, widget)

    # The arrow keys move the kernel, and Python follows.
    focus(widget)
    page.keyboard.press("ArrowDown")
    expect(widget).to_have_attribute("data-row", "1")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(widget).to_have_attribute("data-col", "6")
    page.keyboard.press("ArrowUp")
    expect(widget).to_have_attribute("data-row", "0")
    page.keyboard.press("ArrowLeft")
    expect(widget).to_have_attribute("data-col", "5")
    assert run_code(page, "print(conv.position)") == "[0, 5]"
    check_against_conv2d(page, widget)

    # Clicking the feature map jumps there: the centre of pixel (20, 7) of the 28x28 map.
    output_map.scroll_into_view_if_needed()
    box = output_map.bounding_box()
    output_map.click(position={"x": box["width"] * (7 + 0.5) / 28, "y": box["height"] * (20 + 0.5) / 28})
    expect(widget).to_have_attribute("data-row", "20")
    expect(widget).to_have_attribute("data-col", "7")
    assert run_code(page, "print(conv.position, conv.step['row'], conv.step['col'])") == "[20, 7] 20 7"
    check_against_conv2d(page, widget)
    leave_widgets(page)  # no hover in the picture, no saved-picture update to rebuild the view under the camera
    widget.screenshot(path=artifact_path("convolution-lab.png"))

    # Play slides the kernel along by itself; Pause stops it.
    widget.locator("button.cw-play").click()
    expect(widget).to_have_attribute("data-playing", "true")
    expect(widget).not_to_have_attribute("data-col", "7")
    # The pause sign is a shape, drawn whatever fonts the machine has (not a character).
    pause_sign = widget.locator("button.cw-play svg.cw-glyph-pause")
    expect(pause_sign).to_be_visible()
    assert pause_sign.bounding_box()["width"] >= 8
    expect(widget.locator("button.cw-play")).to_have_text("pause")
    widget.locator("button.cw-play").click()
    expect(widget).to_have_attribute("data-playing", "false")
    assert run_code(page, "print(conv.playing)") == "False"
    stopped = widget.get_attribute("data-col")
    run_code(page, "import time; time.sleep(1.5)")
    assert widget.get_attribute("data-col") == stopped
    check_against_conv2d(page, widget)

    # A kernel of your own: the same kernel on the image, bias 0.
    widget.locator("select[data-kernel-choice]").select_option("own")
    widget.locator("input.cw-kernel-text").fill("1 0 -1; 1 0 -1; 1 0 -1")
    widget.locator("input.cw-kernel-text").press("Enter")
    expect(widget).to_have_attribute("data-custom", "true")
    expect(widget.locator(".cw-kernel td").first).to_have_text("1.00")
    expect(widget.locator(".cw-bias")).to_have_text("0.000")
    expect(widget.locator(".cw-note")).to_contain_text("same numbers on each channel")
    assert run_code(page, "print(conv.kernel == [[1.0, 0.0, -1.0]] * 3, conv.step['custom'])") == "True True"
    # (a kernel equal to a preset shows under the preset's name once the view is drawn anew)
    widget.locator("select[data-kernel-choice]").select_option("own")
    expect(widget.locator("input.cw-kernel-text")).to_have_value("1 0 -1; 1 0 -1; 1 0 -1")
    widget.locator("input.cw-kernel-text").fill("1 0; 2")
    widget.locator("input.cw-kernel-text").press("Enter")
    expect(widget.locator(".cw-error")).to_contain_text("rows of equal length")
    page.mouse.move(0, 0)
    widget.screenshot(path=artifact_path("convolution-own-kernel-lab.png"))
    widget.locator("select[data-kernel-choice]").select_option("filter")
    expect(widget).to_have_attribute("data-custom", "false")
    expect(widget.locator(".cw-error")).to_be_hidden()
    check_against_conv2d(page, widget)


RGB_CELLS = [
    "import torch, cnn_widgets as cw\nimport torch.nn.functional as F\ntorch.manual_seed(0)\n"
    "net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, stride=2, padding=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2))\n"
    "net(torch.zeros(1, 3, 48, 48))\n"
    "model = cw.load_model(net, input_size=(3, 48, 48), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))",
    "conv = cw.ConvolutionExplainer(model, 'cat', filter=2, position=(11, 5))\nconv",
]


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_an_rgb_image_shows_three_channel_sums_that_add_up(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, RGB_CELLS)
    widget = wait_for_output(page, ".cw-convolution").first
    expect(widget).to_have_attribute("data-row", "11")
    channels = widget.locator(".cw-channel")
    expect(channels).to_have_count(3)
    expect(widget.locator(".cw-patch").first.locator("td")).to_have_count(25)
    assert [c.get_attribute("data-channel") for c in channels.all()] == ["red", "green", "blue"]
    # The total line adds the three channel sums shown above it, plus the bias.
    sums = [float(t) for t in widget.locator(".cw-channel-sum").all_text_contents()]
    terms = widget.locator(".cw-total").first.text_content()
    for name, value in zip(("red", "green", "blue"), sums):
        assert f"{name} {value:.3f}" in terms
    bias = float(widget.locator(".cw-bias").text_content())
    shown = float(widget.locator(".cw-total .cw-output-value").text_content())
    assert sum(sums) + bias == pytest.approx(shown, abs=3e-3)  # rounded to 3 decimals each
    expected = run_code(page, "print(f'{float(F.conv2d(model.preprocess(cw.sample_image(\"cat\")), net[0].weight, net[0].bias, stride=2, padding=2)[0, 2, 11, 5]):.3f}')")
    assert widget.locator(".cw-total .cw-output-value").text_content() == expected
    expect(widget.locator(".cw-units")).to_contain_text("(0.485, 0.456, 0.406) per channel")
    page.mouse.move(0, 0)
    widget.screenshot(path=artifact_path("convolution-rgb-lab.png"))
