"""The heatmap methods, one registered unit each.

A method is a small object with its ``name`` (what ``engine.cam(method=...)``
takes), its ``label`` (what menus show), whether it ``uses_layer``, whether it
``needs_gradients``, how many passes it costs (:meth:`CamMethod.passes`) and
how it explains (:meth:`CamMethod.explain`), and what the numbers of its maps mean
(``units``, written under every colorbar of its maps). Every module of
:mod:`cnn_widgets.engine.cam.methods` registers its method when imported, so
adding a method is one new file there (and its test); the engine, the widget
and the command line read :data:`METHODS`.

>>> from cnn_widgets.engine.cam import METHODS
>>> METHODS["gradcam"].label, METHODS["gradcam"].uses_layer, METHODS["saliency"].uses_layer
('Grad-CAM', True, False)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence

from ..._choices import invalid_choice

if TYPE_CHECKING:
    from .core import Explanation, Request


class Passes(NamedTuple):
    """What one image costs: ``forward`` and ``backward`` passes through the network, and
    how many of them progress reports count (``counted``; 0 for a method done in one go)."""

    forward: int
    backward: int
    counted: int = 0


class CamMethod:
    """Base of every heatmap method. Subclasses set the class attributes and implement
    :meth:`explain`; :func:`register` makes an instance available by its name."""

    name: str = ""
    label: str = ""
    uses_layer: bool = True
    needs_gradients: bool = True
    order: int = 1000  # position in menus and lists (the existing methods use steps of 10)
    progress_unit: str | None = None  # what progress counts ("noisy copies"), None when nothing
    units: str = ""  # what a map's numbers mean, shown beside its colorbar
    reference: str = ""  # the paper, for the docs

    def passes(self, channels: Sequence[int], samples: int) -> Passes:
        """Passes for one image, given the channels of each explained layer and the
        number of noisy samples (for the methods that use them)."""
        return Passes(1, 1 if self.needs_gradients else 0)

    @property
    def scale_note(self) -> str:
        """What the colorbar of this method's maps says: its label and ``units``.

        >>> from cnn_widgets.engine.cam import METHODS
        >>> METHODS["saliency"].scale_note
        'Saliency (gradient): |d logit / d pixel| (pixels normalized)'
        """
        return f"{self.label}: {self.units or 'the method’s own units'}"

    def explain(self, request: "Request") -> "Explanation":  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


METHODS: dict[str, CamMethod] = {}


def register(method: CamMethod) -> CamMethod:
    """Add ``method`` to :data:`METHODS` (kept in menu order); a name can be taken once."""
    if not method.name or not method.label:
        raise ValueError(f"{type(method).__name__} needs a name and a label")
    if method.name in METHODS:
        raise ValueError(f"a heatmap method named {method.name!r} is registered already")
    METHODS[method.name] = method
    ordered = sorted(METHODS.values(), key=lambda m: (m.order, m.name))
    METHODS.clear()
    METHODS.update((m.name, m) for m in ordered)
    return method


def get_method(name) -> CamMethod:
    """The registered method called ``name``; a clear error with the valid names otherwise.

    >>> get_method("scorecam").passes([128], samples=0)
    Passes(forward=129, backward=0, counted=128)
    """
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise invalid_choice("method", name, METHODS)
    return method
