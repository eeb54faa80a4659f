"""What every widget shares: its frontend module, an error line, a busy flag.

The frontend is plain ES modules in ``js/`` (no bundler, no network imports).
anywidget loads one module per widget, so the shared helpers in
``js/common.js`` are prepended to the widget's own module here, once.
"""
from __future__ import annotations

import functools
from pathlib import Path

import anywidget
import traitlets

from .._choices import check_keywords
from . import static
from .static import StaticPicture


def _on_left(_widget, content, _buffers) -> None:
    """The person left a widget's view: bring the saved pictures up to date (static.refresh)."""
    if isinstance(content, dict) and content.get("type") == "left":
        static.refresh()

_PACKAGED_JS = Path(__file__).resolve().parent.parent / "_js"  # inside a built wheel
_SOURCE_JS = Path(__file__).resolve().parents[2] / "js"  # in a source checkout


def js_dir() -> Path:
    return _PACKAGED_JS if _PACKAGED_JS.is_dir() else _SOURCE_JS


@functools.lru_cache(maxsize=None)
def frontend_module(*names: str) -> str:
    """``js/common.js`` followed by the named files, as one ES module."""
    folder = js_dir()
    parts = [(folder / "common.js").read_text()]
    parts += [(folder / name).read_text() for name in names]
    return "\n".join(parts)


@functools.lru_cache(maxsize=None)
def stylesheet(*names: str) -> str:
    """``js/widgets.css`` followed by the named widget-specific stylesheets."""
    folder = js_dir()
    return "\n".join((folder / name).read_text() for name in ("widgets.css", *names))


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
