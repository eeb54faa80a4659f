"""What every widget shares: an error line, a busy flag, the message sent when the
person leaves the view, and a layer validated by the model.

Each widget's frontend module and stylesheet are files built from ``js/``
(:mod:`cnn_widgets.frontend`); the widget classes name theirs.
"""
from __future__ import annotations

import anywidget
import traitlets

from .._choices import check_keywords, invalid_choice
from . import static
from ..models.layers import RAW
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

    @staticmethod
    def _check_choice(what, value, options):
        """A trait validator's answer: ``value`` if it is one of ``options``, else an error naming them."""
        if value not in options:
            raise traitlets.TraitError(str(invalid_choice(what, value, options)))
        return value


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

    def _layer_options(self, raw: bool = False) -> list[dict]:
        """The layer menu: each conv layer's name, module path, channels and output shape;
        with ``raw``, also ``NAME:raw`` (the conv's own output) for a conv with an activation after it."""
        options = []
        for info in self.model.layers:
            names = [info.name] + ([info.name + RAW] if raw and info.activation is not None else [])
            options += [{"name": name, "path": info.path, "channels": info.out_channels, "shape": list(info.output_shape or ())} for name in names]
        return options
