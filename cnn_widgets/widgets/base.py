"""What every widget shares: an error line, a busy flag, the message sent when the
person leaves the view, and a layer validated by the model.

Each widget's frontend module and stylesheet are files built from ``js/``
(:mod:`cnn_widgets.frontend`); the widget classes name theirs.
"""
from __future__ import annotations

import anywidget
import traitlets

from .._choices import check_keywords
from . import static
from .static import StaticPicture


def _on_left(_widget, content, _buffers) -> None:
    """The person left a widget's view: bring the saved pictures up to date (static.refresh)."""
    if isinstance(content, dict) and content.get("type") == "left":
        static.refresh()

class BaseWidget(StaticPicture, anywidget.AnyWidget):
    """Base of all cnn-widgets: an ``error`` line shown in the widget and a ``busy`` flag."""

    error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)

    def __init__(self, *args, **kwargs) -> None:
        check_keywords(type(self), kwargs)  # a misspelled option raises instead of being dropped
        super().__init__(*args, **kwargs)
        self.on_msg(_on_left)

    def _show_errors(self, action, *args, **kwargs):
        """Run ``action``; a failure becomes readable text in the widget instead of a traceback."""
        try:
            result = action(*args, **kwargs)
        except Exception as error:  # the widget must survive anything a computation raises
            self.error = f"{type(error).__name__}: {error}"
            return None
        self.error = ""
        return result


class LayerChoice(traitlets.HasTraits):
    """Mixin for widgets with a ``model`` and a synced ``layer`` trait: any name the
    model resolves (Keras-style, module path, index) is accepted and shown by its
    display name; anything else raises with the valid choices."""

    @traitlets.validate("layer")
    def _check_layer(self, proposal):
        try:
            return self.model.layer(proposal["value"]).name
        except ValueError as error:
            raise traitlets.TraitError(str(error)) from None
