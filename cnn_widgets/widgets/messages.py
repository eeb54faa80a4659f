"""Messages from a widget's view: one table per widget class, read by one receiver.

A view sends ``model.send({type: "upload", name: ...}, undefined, [bytes])``; the
widget answers with the method marked ``@handles("upload")``, called with the
message's content and buffers. :func:`message_table` collects a class's marked
methods, its bases' included (a nearer class wins, as with methods), and
``BaseWidget`` installs the one receiver that looks a message's type up in it:
a type no method handles is logged and ignored, and a handler that raises shows
its error in the widget's error line.
"""
from __future__ import annotations

import functools
from typing import Callable


def handles(*message_types: str) -> Callable:
    """Mark a widget method as the one that answers the view's ``{"type": ...}``
    messages of these types; it is called as ``method(content, buffers)``.

    >>> from cnn_widgets.widgets.gradcam import GradCAM
    >>> message_table(GradCAM)["trust"]
    '_on_trust'
    """
    def mark(method: Callable) -> Callable:
        method.message_types = (*getattr(method, "message_types", ()), *message_types)
        return method

    return mark


@functools.cache
def message_table(widget_class: type) -> dict[str, str]:
    """Each message type the class's view may send -> the name of the method that handles it.

    >>> from cnn_widgets.widgets.deepdream import DeepDream
    >>> sorted(message_table(DeepDream).items())  # doctest: +NORMALIZE_WHITESPACE
    [('away', '_on_away'), ('entered', '_on_entered'), ('left', '_on_left'), ('resync', '_on_resync'),
     ('run', '_on_run'), ('shown', '_on_shown'), ('stop', '_on_stop'), ('upload', '_on_upload')]
    """
    table: dict[str, str] = {}
    for klass in reversed(widget_class.__mro__):  # nearer classes last, so they win
        for name, value in vars(klass).items():
            for message_type in getattr(value, "message_types", ()) if callable(value) else ():
                table[message_type] = name
    return table
