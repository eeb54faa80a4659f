"""The PNG in a widget's display data follows the widget: a saved notebook shows
the last picture of each widget, not the one from the moment it was displayed."""
from __future__ import annotations

import hashlib

import nbformat
import pytest
from nbclient import NotebookClient

import cnn_widgets as cw
from cnn_widgets.widgets import static
from view_messages import send_from_view

pytestmark = pytest.mark.usefixtures("one_thread")

PNG = "image/png"
VIEW = "application/vnd.jupyter.widget-view+json"


def digest(png_base64: str) -> str:
    return hashlib.sha256(png_base64.encode()).hexdigest()[:16]


def run(cells: list[str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = NotebookClient(notebook, timeout=300, kernel_name="python3")
    client.execute()
    errors = [out for cell in notebook.cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    return notebook


def widget_outputs(cell) -> list[dict]:
    return [out for out in cell.outputs if VIEW in out.get("data", {})]


def printed(cell) -> list[str]:
    return "".join(out.text for out in cell.outputs if out.output_type == "stream").split()


SHOWN = "import base64, hashlib\nshown = lambda w: hashlib.sha256(w._repr_mimebundle_()[0]['image/png'].encode()).hexdigest()[:16]"


def test_an_executed_notebook_keeps_the_last_picture_of_each_widget():
    notebook = run(
        [
            "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')\n" + SHOWN,
            "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\ndisplay(maps)\nprint(shown(maps))",
            "maps.layer = 'block2_conv1'\nmaps.filter_index = 7",
            "explorer = cw.Explorer(model, 'bag', dataset=None)\nexplorer",
            "explorer.selected_index = 1\nexplorer.layer = 'block3_conv1'",
            "print(shown(maps), shown(explorer))",
        ]
    )
    cells = notebook.cells
    (maps_output,) = widget_outputs(cells[1])
    (explorer_output,) = widget_outputs(cells[3])
    at_display = printed(cells[1])[0]
    last_maps, last_explorer = printed(cells[5])
    assert digest(maps_output["data"][PNG]) == last_maps != at_display
    assert digest(explorer_output["data"][PNG]) == last_explorer
    assert maps_output["output_type"] == "display_data"  # shown with a display id, so it can be updated


class FakeUpdates:
    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr("IPython.display.update_display", lambda data, **kw: self.calls.append((data, kw)))


@pytest.fixture
def updates(monkeypatch):
    yield FakeUpdates(monkeypatch)
    static._shown.clear()


@pytest.fixture
def shown_maps(fashion, updates):
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block1_conv1")
    data, _ = maps._repr_mimebundle_()
    display_id = static._track(maps, data[PNG])
    return maps, display_id


def test_only_a_changed_picture_is_sent(shown_maps, updates):
    maps, display_id = shown_maps
    assert static.refresh() == 0 and updates.calls == []  # nothing changed
    maps.filter_index = 3
    assert static.refresh() == 1
    data, options = updates.calls[-1]
    assert options["display_id"] == display_id and options["raw"] is True
    assert data[PNG] == maps._repr_mimebundle_()[0][PNG] and VIEW in data
    assert static.refresh() == 0  # sent once
    maps.filter_index = 4
    maps.filter_index = 3  # changes that leave the picture as it was
    assert static.refresh() == 0


def test_a_widget_still_computing_is_left_for_a_later_cell(shown_maps, updates):
    maps, _ = shown_maps
    maps.filter_index = 5
    maps.busy = True  # as while a background computation runs
    assert static.refresh() == 0 and updates.calls == []
    maps.busy = False
    assert static.refresh() == 1


def test_a_closed_widget_is_forgotten(shown_maps, updates):
    maps, display_id = shown_maps
    maps.filter_index = 2
    maps.close()
    assert static.refresh() == 0 and display_id not in static._shown
    assert updates.calls == []


class SentToViews:
    """What the kernel sends the widget's views (``widget.send``)."""

    def __init__(self, widget, monkeypatch):
        self.messages = []
        monkeypatch.setattr(widget, "send", lambda content, buffers=None: self.messages.append(content))


def test_leaving_a_view_updates_only_after_the_view_says_nobody_is_in_it(shown_maps, updates, monkeypatch):
    maps, _ = shown_maps
    views = SentToViews(maps, monkeypatch)
    send_from_view(maps, {"type": "shown", "view": "a"})
    maps.filter_index = 3
    send_from_view(maps, {"type": "left", "view": "a"})
    assert updates.calls == [] and views.messages == [{"type": "away?"}]
    send_from_view(maps, {"type": "away", "view": "a"})
    assert len(updates.calls) == 1 and updates.calls[0][0][PNG] == maps._repr_mimebundle_()[0][PNG]


def test_a_late_left_does_not_redraw_a_view_the_person_came_back_to(shown_maps, updates, monkeypatch):
    """The view's "left" waited behind a busy kernel while the person came back: Python asks,
    the view (in use again) does not answer, and no update redraws it. Once the person
    leaves for good, the view answers and the picture follows."""
    maps, _ = shown_maps
    views = SentToViews(maps, monkeypatch)
    for kind in ("shown", "entered"):
        send_from_view(maps, {"type": kind, "view": "a"})
    maps.filter_index = 5  # the person's arrow key
    send_from_view(maps, {"type": "left", "view": "a"})
    send_from_view(maps, {"type": "entered", "view": "a"})  # back, queued behind the "left"
    assert updates.calls == [] and views.messages == [{"type": "away?"}]
    send_from_view(maps, {"type": "left", "view": "a"})
    send_from_view(maps, {"type": "away", "view": "a"})
    assert len(updates.calls) == 1


def test_a_view_in_use_holds_back_the_update_even_when_another_view_is_away(shown_maps, updates, monkeypatch):
    maps, _ = shown_maps
    SentToViews(maps, monkeypatch)
    send_from_view(maps, {"type": "entered", "view": "a"})
    send_from_view(maps, {"type": "shown", "view": "b"})
    maps.filter_index = 2
    send_from_view(maps, {"type": "away", "view": "b"})
    assert updates.calls == []


def test_after_a_cell_a_widget_with_live_views_is_updated_once_a_view_says_nobody_is_in_it(shown_maps, updates, monkeypatch):
    """Python's record may be stale after a cell (the views' messages of the cell are read
    after it), so it asks; a view nobody is in answers at once, and the picture follows."""
    maps, _ = shown_maps
    views = SentToViews(maps, monkeypatch)
    send_from_view(maps, {"type": "shown", "view": "a"})
    maps.filter_index = 3  # the cell
    assert static.refresh() == 0 and updates.calls == []
    assert views.messages == [{"type": "away?"}]
    send_from_view(maps, {"type": "away", "view": "a"})
    assert len(updates.calls) == 1 and updates.calls[0][0][PNG] == maps._repr_mimebundle_()[0][PNG]
    assert views.messages[-1] == {"type": "saved"}  # the view may stop waiting


def test_a_cell_that_changes_a_widget_in_use_updates_it_only_after_the_person_leaves(shown_maps, updates, monkeypatch):
    maps, _ = shown_maps
    views = SentToViews(maps, monkeypatch)
    for kind in ("shown", "entered"):
        send_from_view(maps, {"type": kind, "view": "a"})
    maps.filter_index = 4  # the cell, while the person is in the view
    assert static.refresh() == 0 and updates.calls == []
    assert views.messages == [{"type": "away?"}]  # the view in use marks the update owed
    send_from_view(maps, {"type": "away", "view": "b"})  # another view: still held back
    assert updates.calls == [] and views.messages[-1] == {"type": "saved"}
    send_from_view(maps, {"type": "left", "view": "a"})
    assert updates.calls == [] and views.messages[-1] == {"type": "away?"}
    send_from_view(maps, {"type": "away", "view": "a"})
    assert len(updates.calls) == 1 and updates.calls[0][0][PNG] == maps._repr_mimebundle_()[0][PNG]


def test_a_left_with_nothing_to_update_is_answered(shown_maps, updates, monkeypatch):
    maps, _ = shown_maps
    views = SentToViews(maps, monkeypatch)
    for kind in ("shown", "entered", "left"):
        send_from_view(maps, {"type": kind, "view": "a"})
    assert updates.calls == [] and views.messages == [{"type": "saved"}]
