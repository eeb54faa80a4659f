"""A lesson as a student opens it in JupyterLab: lesson 1 runs from the first cell to the last, its
ConvolutionExplainer draws the position Python reports, and the answers stay folded until clicked."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .jupyter import run_code, run_notebook_page, wait_for_output

LESSON = Path(__file__).resolve().parents[2] / "notebooks" / "lessons" / "01_what_a_convolution_does.ipynb"

# Scrolls the notebook to the cell holding the answers: JupyterLab only draws the cells near the view.
SCROLL_TO_ANSWERS = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  const index = panel.content.widgets.findIndex((cell) => cell.model.sharedModel.getSource().includes("<summary>Answers"));
  await panel.content.scrollToItem(index, "start");
  return index;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_lesson_1_opens_with_its_explainer_and_folded_answers(page, jupyter_server, artifact_path):
    shutil.copy(LESSON, jupyter_server.root_dir / LESSON.name)
    run_notebook_page(page, jupyter_server.notebook_url(LESSON.name), LESSON.name, log_tail=jupyter_server.log_tail)

    page.evaluate("() => window.jupyterapp.shell.currentWidget.content.scrollToItem(0, 'start')")
    expect(page.locator(".jp-RenderedMarkdown h1").first).to_contain_text("Lesson 1: What a convolution does")

    explainer = wait_for_output(page, ".cw-convolution").first
    explainer.scroll_into_view_if_needed()
    output_map = explainer.locator("img.cw-output-map")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=output_map.element_handle())
    expect(explainer.locator(".cw-title")).to_contain_text("sneaker")
    expect(explainer.locator(".cw-error")).to_be_hidden()
    row, col = run_code(page, "print(*explainer.position)").split()  # where the lesson left it
    expect(explainer).to_have_attribute("data-row", row)
    expect(explainer).to_have_attribute("data-col", col)

    assert page.evaluate(SCROLL_TO_ANSWERS) > 0
    answers = page.locator(".jp-RenderedMarkdown details").first
    expect(answers.locator("summary")).to_have_text("Answers")
    assert answers.evaluate("details => details.open") is False
    expect(answers.get_by_text("lower", exact=False).first).to_be_hidden()  # the first answer: "Along the lower outlines"
    page.screenshot(path=artifact_path("lesson-1-lab.png"))
    answers.locator("summary").click()
    expect(answers.get_by_text("lower", exact=False).first).to_be_visible()
    assert answers.evaluate("details => details.open") is True
