"""A PNG of what a widget shows, in its display data, kept current.

Where the live widget cannot run (a notebook on GitHub or nbviewer, nbconvert's
HTML without widget state), a viewer shows the display data's ``image/png``
instead. So every widget is displayed with a display id, and after each cell
has run, each displayed widget whose traits changed since its picture was last
sent gets an ``update_display_data`` message with its current picture. A
headless run (nbclient, ``jupyter nbconvert --execute``, papermill) therefore
saves the last picture of each widget, however many cells changed it later.

Updates go out after a cell has run, and when the person leaves a widget's view.
A live JupyterLab or Notebook answers an update by drawing the widget's view anew
(JupyterLab's widget renderer empties the output and builds a new view: a flash,
and a view in use loses the keyboard focus and any drag), so no update goes to a
widget whose view the person is in. The views report where the person is
(``reportLeaving`` in js/common.js): ``shown`` when drawn, ``entered`` and
``left``. Python does not update a widget with live views (views that reported) on
its own: it asks them ``{"type": "away?"}``, and a view answers ``away`` only if
nobody is in it when the question arrives (what Python knows may be stale: the
views' messages sent during a cell are read after it). On ``away`` the widget's
displays are updated; a view in use marks the update as owed and, when the person
leaves it, reports ``left``, which asks again. So after a cell, widgets nobody is in
are updated one round trip later, the others when they are left; a widget without
live views (a headless run) is updated at once. Python answers every ``away`` and
every ``left`` it asks nothing about with ``{"type": "saved"}``: a view shows
``data-saved-picture`` ("owed" or "asking") while an update may still come, which is
what browser tests wait on. A widget still computing (a background run, a dataset
scan) is left for later, so waiting for a picture never blocks the kernel.

After each cell, too, every displayed widget whose model's weights changed in
place since it last looked (a training step, ``conv.weight.mul_(-1)``, a loaded
``state_dict``: the parameters' tensor versions say so) draws again with its
``refresh()``, so no cell ever leaves a picture of weights the model no longer has.
"""
from __future__ import annotations

import base64
import weakref
from dataclasses import dataclass, field

import traitlets

PNG = "image/png"


class StaticPicture:
    """Mixin: a widget's display data also carries a PNG of what it shows."""

    def picture(self):
        """What the widget shows, as a uint8 RGB array (None before anything is drawn)."""
        return None

    def _picture_pending(self) -> bool:
        """True while a computation will still change the picture (do not wait for it)."""
        return bool(getattr(self, "busy", False) or getattr(self, "running", False))

    def _picture_sources(self) -> list[traitlets.HasTraits]:
        """The objects whose trait changes can change the picture."""
        return [self]

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, plus a PNG of what it shows for places that cannot run it
        (a saved notebook on GitHub, nbconvert's HTML export)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        try:
            picture = self.picture()
        except Exception:  # a static copy is a courtesy; never let it break the display
            picture = None
        if picture is not None:
            from .pictures import encode_picture

            data = {**data, PNG: base64.b64encode(encode_picture(picture, "png")).decode("ascii")}
        return data, metadata

    def save_html(self, path, title: str | None = None):
        """Write a self-contained HTML page showing this widget as it is now (no Python,
        Jupyter or network needed to open it); see :func:`cnn_widgets.save_html`."""
        from ..export import save_html

        return save_html(path, self, title=title or f"{type(self).__name__} · cnn-widgets")

    def _ipython_display_(self) -> None:
        """Display with a display id, so the picture can follow the widget (see the module doc)."""
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        display(data, raw=True, metadata=metadata, display_id=_track(self, data.get(PNG)))


@dataclass
class _Shown:
    widget: weakref.ref
    png: str | None
    changed: bool = False
    observed: list = field(default_factory=list)
    weights: tuple | None = None  # the model's weights version when the widget last drew


_shown: dict[str, _Shown] = {}
_hooked = False


def _track(widget: StaticPicture, png: str | None) -> str:
    """Remember a displayed widget and watch its traits; returns its display id."""
    display_id = f"cnn-widgets-{widget.model_id}"
    entry = _shown.get(display_id)
    if entry is None:
        entry = _shown[display_id] = _Shown(weakref.ref(widget), png)

        def changed(_change, entry=entry) -> None:
            entry.changed = True

        for source in widget._picture_sources():
            source.observe(changed, names=traitlets.All)
            entry.observed.append((weakref.ref(source), changed))
    entry.png, entry.changed = png, False
    entry.weights = _weights_of(widget)
    _hook()
    return display_id


def _hook() -> None:
    global _hooked
    if _hooked:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", refresh)
        _hooked = True


def refresh(*_args, about=None, confirmed: bool = False, asked: set | None = None) -> int:
    """Bring the saved pictures up to date: every displayed widget that changed and is
    not computing is updated at once if it has no live views, else its views are asked
    whether anyone is in them (see the module doc). Returns how many displays were
    updated. Runs after each cell.

    ``about``: a view of this widget reported (see :func:`view_report`): only the displays
    that show it (itself or, for an Explorer, one of its views); ``confirmed``: its views
    have just said nobody is in them, so it is updated unless Python knows one is in use.
    The widgets asked are added to ``asked``."""
    from IPython.display import update_display

    updated = 0
    for display_id, entry in list(_shown.items()):
        widget = entry.widget()
        if widget is None or getattr(widget, "comm", None) is None:  # collected or closed
            _forget(display_id)
            continue
        try:
            sources = widget._picture_sources()
            if about is not None and not any(source is about for source in sources):
                continue
            _follow_weights(widget, entry)
            if not entry.changed or widget._picture_pending():
                continue
            live = [source for source in sources if _views_of(source)]
            in_use = any(in_use for source in live for in_use in _views_of(source).values())
            if live and not (confirmed and not in_use):
                if about is None or not in_use:  # after a cell, a view in use marks the update owed
                    for source in live:  # every model with views (an Explorer's tab may be gone)
                        source.send({"type": "away?"})  # updated when a view answers "away"
                        if asked is not None:
                            asked.add(id(source))
                continue
            entry.changed = False
            data, metadata = widget._repr_mimebundle_()
            if PNG not in data or data[PNG] == entry.png:
                continue
            update_display(data, raw=True, metadata=metadata, display_id=display_id)
        except Exception:  # a static copy is a courtesy; never let it break a cell
            continue
        entry.png = data[PNG]
        updated += 1
    return updated


def view_report(widget, kind: str, view: str) -> int:
    """A view of ``widget`` reports where the person is (``kind``: "shown", "entered",
    "left" or "away"; ``view`` names the view); the saved picture follows when it may.
    Returns how many displays were updated (see :func:`refresh`).

    >>> class Widget:
    ...     sent = []
    ...     def send(self, content): self.sent.append(content)
    >>> widget = Widget()
    >>> view_report(widget, "entered", "view-1"), widget._views_in_use
    (0, {'view-1': True})
    >>> view_report(widget, "left", "view-1"), widget.sent  # not displayed: nothing to update
    (0, [{'type': 'saved'}])
    """
    views = _views_of(widget)
    if not views:
        views = widget._views_in_use = {}
    views[str(view)] = kind == "entered"
    if kind not in ("left", "away"):
        return 0
    asked: set = set()
    updated = refresh(about=widget, confirmed=kind == "away", asked=asked)
    if id(widget) not in asked:
        widget.send({"type": "saved"})  # nothing more will come of this report: the view may settle
    return updated


def _views_of(widget) -> dict:
    """The views of ``widget`` that reported, each with whether the person is in it."""
    return getattr(widget, "_views_in_use", None) or {}


def _weights_of(widget) -> tuple | None:
    """The version of the weights of the model ``widget`` shows (None: it has no refresh)."""
    model = getattr(widget, "model", None)
    if model is None or not callable(getattr(widget, "refresh", None)):
        return None
    from ..engine.activations import weights_version

    return weights_version(model)


def _follow_weights(widget, entry: _Shown) -> None:
    """Redraw ``widget`` when its model's weights changed since it last drew (and it is idle)."""
    now = _weights_of(widget)
    if now is None or now == entry.weights or widget._picture_pending():
        return
    widget.refresh()
    entry.weights = now
    entry.changed = True


def _forget(display_id: str) -> None:
    entry = _shown.pop(display_id)
    for source_ref, callback in entry.observed:
        source = source_ref()
        if source is not None:
            source.unobserve(callback, names=traitlets.All)
