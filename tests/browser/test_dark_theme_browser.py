"""Every widget is readable in JupyterLab's dark theme: with "JupyterLab Dark" on, each
widget's text (titles, labels, captions, numbers) stands out from the background it is
drawn on by at least WCAG's 4.5:1 contrast, and a screenshot is kept to look at."""
from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, wait_for_output

CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "cw.FilterWeights(model, layer='block1_conv1')",
    "cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')",
    "cw.GradCAM(model, 'sneaker')",
    "cw.ConvolutionExplainer(model, 'sneaker')",
    "cw.ActivationMaximization(model, layer='block1_conv2', filters='0-3')",
    "cw.DeepDream(model, 'sneaker', layer='block1_conv2')",
    "cw.TrainingMonitor(model, 'sneaker')",
    "import torch\ncw.DatasetExamples(model, torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0)), layer='block1_conv1', k=2)",
    "cw.Explorer(model, 'sneaker', dataset=None)",  # its strip, tab bar and first tab (filter weights)
]

# Every element with its own visible text, its colour, and the colour it is drawn on (the
# first ancestor with an opaque background); returns those whose contrast is below 4.5.
LOW_CONTRAST = """
(roots) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return { r, g, b, a }; };
  const lum = ({ r, g, b }) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (let e = el; e; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255 }; };
  const low = []; let checked = 0;
  for (const root of document.querySelectorAll('.cw-widget')) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') continue;
      if (el.closest('svg')) continue;  // chart marks: drawn with currentColor, checked on their labels' parent
      const fg = parse(getComputedStyle(el).color), bg = background(el);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05); checked += 1;
      if (ratio < 4.5) low.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 40)}": ${ratio.toFixed(2)}`);
    }
  }
  return { checked, low };
}
"""


def set_theme(page, theme: str) -> None:
    page.evaluate("(theme) => window.jupyterapp.commands.execute('apputils:change-theme', { theme })", theme)


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_every_widget_is_readable_in_the_dark_theme(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, CELLS)
    widgets = wait_for_output(page, ".cw-widget")
    expect(widgets).to_have_count(len(CELLS), timeout=60_000)  # one a cell, and the Explorer's filter weights
    try:
        set_theme(page, "JupyterLab Dark")
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=30_000)
        page.wait_for_timeout(500)  # the theme's stylesheet applied
        result = page.evaluate(LOW_CONTRAST, None)
        page.screenshot(path=artifact_path("dark-theme-lab.png"), full_page=True)
        for index in range(widgets.count()):
            with contextlib.suppress(Exception):
                widgets.nth(index).screenshot(path=artifact_path(f"dark-theme-lab-{index}.png"))
        assert result["checked"] > 40, result  # the check saw the widgets' text
        assert not result["low"], "text hard to read on the dark theme:\n" + "\n".join(result["low"])
    finally:
        set_theme(page, "JupyterLab Light")  # the server's settings outlive this test
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true", timeout=30_000)
