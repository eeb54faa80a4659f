"""Every text a user controls reaches the page as text: the Explorer's header and
the DatasetExamples caption escape names and error messages, and a save_html page
keeps its widgets' state inside its <script> elements whatever the text holds.
The real-browser check is tests/browser/test_untrusted_text_browser.py."""
from __future__ import annotations

import json
import re

import pytest

import cnn_widgets as cw
from cnn_widgets.export import STATIC_MIME, script_json
from hostile_texts import attack, hostile_widgets, script_breaker


@pytest.fixture(scope="module")
def widgets(tmp_path_factory):
    return hostile_widgets(tmp_path_factory.mktemp("hostile"))


def test_the_explorer_header_shows_the_model_class_name_as_text(widgets):
    # The Explorer is an anywidget: its heading is a text trait, which js/explorer.js sets as textContent.
    assert widgets["explorer"].heading == '<img src=x onerror=alert("model class name")> · conv layers (click to select)'


def test_the_examples_caption_shows_module_names_and_errors_as_text(widgets):
    # DatasetExamples is an anywidget: its caption and error are text traits, which js/examples.js sets as
    # textContent (the browser test checks that no script runs), so they hold the names as they are.
    caption = widgets["explorer"].examples.caption
    assert 'features.<img src=x onerror=alert("module name")>' in caption
    error = widgets["failing"].error
    assert "is not an image" in error and '<img src=x onerror=alert("broken dataset folder")>' in error


def test_a_saved_page_keeps_each_widgets_state_in_its_script_element(widgets, tmp_path):
    heatmaps = widgets["heatmaps"]
    assert script_breaker("class name") in [p["name"] for p in heatmaps.predictions]  # the name that breaks a naive page
    page = cw.save_html(tmp_path / "page.html", heatmaps, widgets["maps"], title=attack("title")).read_text()
    tags = re.findall(r"<script[^>]*>", page)
    # Two widgets: each its state element, and the loader script of each.
    assert sorted(tags) == sorted(["<script>"] * 2 + [f'<script type="{STATIC_MIME}">'] * 2)
    assert "<!--" not in page and "<img src=x" not in page
    states = re.findall(rf'<script type="{re.escape(STATIC_MIME)}">(.*?)</script>', page, flags=re.S)
    names = [p["name"] for p in json.loads(states[0])["state"]["predictions"]]
    assert script_breaker("class name") in names


def test_script_json_escapes_what_html_would_read_and_stays_json():
    value = {"text": "a</script><!--<script>&\u2028\u2029>"}
    text = script_json(value)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == value
