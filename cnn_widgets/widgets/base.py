"""What every widget shares: an error line, a busy flag, the one receiver of the
view's messages (:mod:`.messages`) with the message sent when the person leaves
the view, and a layer validated by the model.

Each widget's frontend module and stylesheet are files built from ``js/``
(:mod:`cnn_widgets.frontend`); the widget classes name theirs.
"""
from __future__ import annotations

import anywidget
import traitlets

from .._choices import check_keywords, invalid_choice
from . import static
from ..models.layers import RAW
from .messages import handles, message_table
from .static import StaticPicture


class BaseWidget(StaticPicture, anywidget.AnyWidget):
    """Base of all cnn-widgets: an ``error`` line shown in the widget and a ``busy`` flag."""

    error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)

    def __init__(self, *args, **kwargs) -> None:
        check_keywords(type(self), kwargs)  # a misspelled option raises instead of being dropped
        super().__init__(*args, **kwargs)
        self.on_msg(self._on_view_message)

    def _on_view_message(self, _widget, content, buffers) -> None:
        """The one receiver of the view's messages: the method the class's message table
        names for the message's type answers it; an unknown type is logged and ignored,
        and a handler's failure shows in the error line (the kernel keeps running)."""
        message_type = content.get("type") if isinstance(content, dict) else None
        handler = message_table(type(self)).get(message_type)
        if handler is None:
            self.log.warning("%s ignored a message from its view with type %r", type(self).__name__, message_type)
            return
        try:
            getattr(self, handler)(content, buffers)
        except Exception as error:  # the widget must survive anything a message leads to
            self._show_error(error)

    @handles("shown")
    def _on_shown(self, content, _buffers) -> None:
        """A view of this widget was drawn: updates of its saved picture now ask it first."""
        static.view_report(self, "shown", content.get("view", ""))

    @handles("entered")
    def _on_entered(self, content, _buffers) -> None:
        """The person came into a view: its saved picture waits until they leave."""
        static.view_report(self, "entered", content.get("view", ""))

    @handles("left")
    def _on_left(self, content, _buffers) -> None:
        """The person left a view: ask the views whether they are still left, then bring the
        saved picture up to date (static.view_report)."""
        static.view_report(self, "left", content.get("view", ""))

    @handles("away")
    def _on_away(self, content, _buffers) -> None:
        """A view answered that nobody is in it: bring the saved picture up to date now."""
        static.view_report(self, "away", content.get("view", ""))

    def _show_error(self, error: Exception) -> None:
        """Show ``error`` as readable text in the widget's error line."""
        self.error = f"{type(error).__name__}: {error}"

    def _show_errors(self, action, *args, **kwargs):
        """Run ``action``; a failure becomes readable text in the widget instead of a traceback."""
        try:
            result = action(*args, **kwargs)
        except Exception as error:  # the widget must survive anything a computation raises
            self._show_error(error)
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
        except (ValueError, TypeError) as error:
            raise traitlets.TraitError(str(error)) from None

    def _layer_options(self, raw: bool = False) -> list[dict]:
        """The layer menu: each conv layer's name, module path, channels and output shape;
        with ``raw``, also ``NAME:raw`` (the conv's own output) for a conv with an activation after it."""
        options = []
        for info in self.model.layers:
            names = [info.name] + ([info.name + RAW] if raw and info.activation is not None else [])
            options += [{"name": name, "path": info.path, "channels": info.out_channels, "shape": list(info.output_shape or ())} for name in names]
        return options


class UnitChoice(LayerChoice):
    """Mixin for views of one unit (a ``layer`` and a ``filter_index`` of it) that are not
    tile viewers: the layer checked as :class:`LayerChoice` does, the filter index
    against the layer's channels."""

    @traitlets.validate("filter_index")
    def _check_filter(self, proposal):
        value, count = proposal["value"], self.model.layer(self.layer).out_channels
        if not 0 <= value < count:
            raise traitlets.TraitError(f"filter_index {value} is out of range for layer {self.layer} (valid: 0-{count - 1})")
        return value
