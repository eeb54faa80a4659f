"""The one way a widget answers its view: a message table per widget class, read by one receiver."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import cnn_widgets as cw
from cnn_widgets.widgets import static
from cnn_widgets.widgets.base import BaseWidget
from cnn_widgets.widgets.messages import handles, message_table
from view_messages import send_from_view

JS = Path(__file__).resolve().parents[2] / "js"


class Doorbell(cw.FilterWeights):
    """A widget with messages of its own: one that works and one whose handler fails."""

    rings = 0

    @handles("ring")
    def _on_ring(self, content, _buffers) -> None:
        self.rings += content.get("times", 1)

    @handles("break")
    def _on_break(self, _content, _buffers) -> None:
        raise ValueError("the bell is broken")


@pytest.fixture
def doorbell(fashion):
    return Doorbell(fashion, layer="block1_conv1")


def widget_classes() -> list[type]:
    return [getattr(cw, name) for name in cw.__all__ if isinstance(getattr(cw, name), type) and issubclass(getattr(cw, name), BaseWidget)]


def test_every_message_a_view_sends_has_a_handler_and_every_handler_a_view_that_sends_it():
    sent = set()
    for path in JS.glob("*.js"):
        sent |= set(re.findall(r"\bsend\(\s*\{\s*type:\s*\"(\w+)\"", path.read_text()))
    handled = set().union(*(message_table(widget) for widget in widget_classes()))
    assert {"left", "upload", "run", "stop", "kernel", "resync", "trust"} <= sent
    assert sent == handled


def test_a_message_goes_to_the_method_its_type_names(doorbell):
    send_from_view(doorbell, {"type": "ring", "times": 2})
    send_from_view(doorbell, {"type": "ring"})
    assert doorbell.rings == 3 and doorbell.error == ""


def test_the_table_holds_the_bases_handlers_and_a_subclass_can_answer_one_type_its_own_way():
    assert message_table(Doorbell) == {
        "shown": "_on_shown", "entered": "_on_entered", "left": "_on_left", "away": "_on_away",
        "ring": "_on_ring", "break": "_on_break",
    }

    class QuietDoorbell(Doorbell):
        @handles("ring")
        def _on_ring_quietly(self, _content, _buffers) -> None:
            pass

    assert message_table(QuietDoorbell)["ring"] == "_on_ring_quietly"
    assert message_table(Doorbell)["ring"] == "_on_ring"


def test_a_message_of_unknown_type_is_logged_and_changes_nothing(doorbell, caplog):
    before = {name: getattr(doorbell, name) for name in ("grid_png", "tile_png", "error", "filter_index", "layer")}
    with caplog.at_level(logging.WARNING):
        send_from_view(doorbell, {"type": "knock"})
        send_from_view(doorbell, {"kind": "no type at all"})
        send_from_view(doorbell, "not even a dict")  # type: ignore[arg-type]
    assert {name: getattr(doorbell, name) for name in before} == before
    assert doorbell.rings == 0
    assert "Doorbell ignored a message from its view with type 'knock'" in caplog.text


def test_a_failing_handler_shows_its_error_in_the_widget_which_keeps_answering(doorbell):
    send_from_view(doorbell, {"type": "break"})  # raises in the handler, not in the kernel's message loop
    assert doorbell.error == "ValueError: the bell is broken"
    send_from_view(doorbell, {"type": "ring"})
    assert doorbell.rings == 1


def test_leaving_the_view_brings_the_widgets_saved_picture_up_to_date(doorbell, monkeypatch):
    refreshed = []
    monkeypatch.setattr(static, "refresh", lambda **options: refreshed.append(options))
    send_from_view(doorbell, {"type": "left", "view": "v1"})
    send_from_view(doorbell, {"type": "away", "view": "v1"})
    assert [(options["about"], options["confirmed"]) for options in refreshed] == [(doorbell, False), (doorbell, True)]
    assert doorbell.error == ""
