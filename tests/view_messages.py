"""Deliver a message to a widget the way one from its view arrives in the kernel."""
from __future__ import annotations


def send_from_view(widget, content: dict, buffers=()) -> None:
    """``model.send(content, undefined, buffers)`` in the widget's view, as the kernel receives it
    (ipywidgets' comm message for a custom message, through every callback the widget installed)."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": list(buffers)})
