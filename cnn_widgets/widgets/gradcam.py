"""GradCAM: where the network looks when it decides on a class.

The model's top-5 predictions for an image form a clickable list; the chosen
class's heatmap (any method of :data:`cnn_widgets.engine.METHODS`, at any
layer) is laid over the image, and a second heatmap (another class, or
another method) can sit beside it for comparison. Every map has a numbered
colorbar in its method's units (``METHODS[name].units``). By default the classes
of one image share a scale, so a class the network barely sees looks weak: two
classes compared share one, and a single class's map is drawn from zero to the
larger of its own peak and the top predicted class's peak (same method and
layer; that peak is computed once per image, method and layer and kept).

What the menus say and what the picture shows agree: :attr:`GradCAM.shown` is
the view the picture shows, and the page marks the picture as the previous
choice while the menus' view is computed. Stop is not an error: it puts the
menus back to the picture shown and says so in :attr:`GradCAM.notice`.

Maps come from :func:`cnn_widgets.engine.cam` and are computed in one
background thread, because Score-CAM on a deep layer of a large network takes
a minute on a CPU and the kernel must stay usable meanwhile. Every map is
cached per (image, method, layer, class), so going back to one is instant, and
colormap and opacity only re-render the overlay from the cached map.
"""
from __future__ import annotations

import difflib
import math
import threading
import weakref
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import torch
import traitlets

from .. import engine, render
from .._choices import invalid_choice
from ..engine.activations import weights_version
from ..engine.cam import CAM_METHODS, METHODS, class_index
from ..models import Model, as_model
from ..frontend import bundled
from ..models.layers import RAW
from ..models.state import model_lock
from .base import BaseWidget, LayerChoice
from .image_input import ImageInput
from .messages import handles
from .pictures import Picture
from .worker import Worker

TOP_K = 5
# How the maps of an image's classes are scaled: the default lets the colours be compared.
SCALES = {"shared": "one scale for the image's classes", "per_map": "each map to its own peak"}
DISPLAY_SIZE = 256  # small inputs (28x28) are enlarged by an integer factor to about this size
THUMBNAIL_SIZE = 96
GAP = 16  # white pixels between the two overlays of a saved comparison
CACHE_SIZE = 64  # maps kept per widget; a 224x224 map is 200 kB
PEAKS_SIZE = 4096  # maps' peaks kept per widget (the shared scale's reference), a few bytes each


class _Panel(NamedTuple):
    """One heatmap the view shows: which map, and the key it is cached under."""

    method: str
    layer: str | None  # None for the methods that explain pixels directly
    class_index: int
    key: tuple


class GradCAM(ImageInput, LayerChoice, BaseWidget):
    """Class heatmaps over an image: click one of the top-5 predictions to see where the
    network looks for that class.

    ``image`` is anything :func:`cnn_widgets.load_image` takes, or a sample name
    (default: ``"sneaker"`` for 1-channel models, ``"cat"`` otherwise). ``method``
    is one of :data:`cnn_widgets.engine.METHODS`; ``layer`` means what it means for
    :func:`cnn_widgets.engine.cam`: a conv layer's name is the output of the activation
    that follows it, ``name + ":raw"`` the conv's own output (both offered), and any
    module path whose output is a feature map works too (a ResNet's ``"layer4"``);
    default: the output of the last spatial stage (``model.last_stage``); ``target`` the class
    explained first (index or name; default: the top prediction; a new image
    starts again at its own top prediction). ``compare`` puts a second heatmap
    beside the first: ``""`` (none), another method (``"scorecam"``) or another
    class name (``"Bag"``).

    Maps are computed in a background thread, so the kernel stays usable during a
    slow one (Score-CAM on a deep layer); the constructor waits for the first
    view, and after a change :meth:`wait` blocks until the view is up to date
    (``save_png`` and ``picture`` wait by themselves).

    >>> import cnn_widgets as cw
    >>> widget = cw.GradCAM(cw.load_model("fashion-cnn"), "sneaker", compare="saliency")
    >>> len(widget.predictions), widget.method, widget.layer, widget.error
    (5, 'gradcam', 'block3_conv2', '')
    >>> len(widget.colorbars)  # two methods: two numbered scales, in their units
    2
    >>> widget.compare = "Bag"; widget.wait()
    >>> widget.colorbars[0]["note"]  # two classes: one scale, so the colours compare
    'A and B on one scale · Grad-CAM: logit per position: activation times mean gradient'
    """

    _esm = bundled("gradcam.js")
    _css = bundled("gradcam.css")

    title = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)  # what the background thread is computing

    predictions = traitlets.List().tag(sync=True)  # top 5: [{index, name, probability}, ...]
    class_options = traitlets.List().tag(sync=True)  # every class name, by index
    target_index = traitlets.Int(0).tag(sync=True)

    method = traitlets.Unicode("gradcam").tag(sync=True)
    method_options = traitlets.List(
        [{"name": m.name, "label": m.label, "uses_layer": m.uses_layer} for m in METHODS.values()]
    ).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    layer_options = traitlets.List().tag(sync=True)
    colormap = traitlets.Unicode("inferno").tag(sync=True)
    colormap_options = traitlets.List(list(render.COLORMAPS)).tag(sync=True)
    opacity = traitlets.Float(0.5).tag(sync=True)
    compare = traitlets.Unicode("").tag(sync=True)  # "", a method name or a class name
    scale = traitlets.Unicode("shared").tag(sync=True)  # the image's classes on one scale, or each map on its own
    scale_options = traitlets.List([dict(name=name, label=label) for name, label in SCALES.items()]).tag(sync=True)

    sample = traitlets.Unicode("").tag(sync=True)  # the shipped sample shown, "" for the user's own image
    sample_options = traitlets.List().tag(sync=True)  # [{"name", "label"}]: samples like the model's pictures first
    image_png = Picture().tag(sync=True)  # thumbnail of the model's input
    image_name = traitlets.Unicode("").tag(sync=True)

    overlay_png = Picture().tag(sync=True)
    overlay_caption = traitlets.Unicode("").tag(sync=True)
    compare_png = Picture().tag(sync=True)  # b"" when not comparing
    compare_caption = traitlets.Unicode("").tag(sync=True)
    colorbars = traitlets.List().tag(sync=True)  # render.colorbar_scale dicts: one shared, or one per map
    # What one cell of the layer's map is in the picture: the pixels it covers and the window it is
    # computed from (its receptive field); "" for the methods that explain pixels directly.
    layer_note = traitlets.Unicode("").tag(sync=True)
    # The view the picture shows (the menus' values when it was painted, and each map's class and
    # probability); the page marks the picture as the previous choice while it differs from the menus.
    shown = traitlets.Dict({}).tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)  # what happened that is no error (a Stop), "" for nothing

    # How far to trust the first map (check_trust): {} until asked; see _trust_summary.
    trust = traitlets.Dict({}).tag(sync=True)
    trust_png = Picture().tag(sync=True)  # the map of the model with its output layer randomized

    _VIEW_TRAITS = ("target_index", "method", "layer", "compare")
    _LOOK_TRAITS = ("colormap", "opacity", "scale")

    def __init__(self, model, image=None, method: str = "gradcam", layer=None, target=None, **kwargs) -> None:
        self.model: Model = as_model(model)
        self._lock = threading.RLock()  # the cache and painting
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._peaks: OrderedDict[tuple, float] = OrderedDict()  # every computed map's peak, by its key
        self._failed: dict[tuple, str] = {}
        self._stopped: set[tuple] = set()  # maps Stop ended where the menus could not go back (a new image)
        self._worker = Worker("GradCAM")
        self._inputs = self._picture = self._seen = None
        self._probabilities: list[float] = []
        self._image_version = 0
        self._shown: list[np.ndarray] = []
        self._shown_scales: list[dict] = []
        self._quiet = True  # no redraws while the constructor sets things up
        super().__init__(
            layer_options=self._layer_options(raw=True),  # each conv, and its own output before its activation
            class_options=list(self.model.classes),
            sample_options=self._sample_options(),
            method=method,
            layer=self.model.last_stage.name if layer is None else layer,
            **kwargs,
        )
        first_target = None if target is None else class_index(self.model, target)
        self.set_image(self._default_sample() if image is None else image)
        if first_target is not None:
            self.target_index = first_target
        self._quiet = False
        self.observe(self._on_view_change, names=list(self._VIEW_TRAITS))
        self.observe(self._on_look_change, names=list(self._LOOK_TRAITS))
        self.observe(self._on_sample, names=["sample"])
        self.observe(self._forget_trust, names=[*self._VIEW_TRAITS, "image_name"])
        for trait in ("busy", "status"):
            traitlets.dlink((self._worker, trait), (self, trait))
        self._refresh()
        self.wait()  # the first view is complete when the cell shows the widget

    # -- validation: bad values from Python raise with the valid choices ----------
    @traitlets.validate("method")
    def _check_method(self, proposal):
        return self._check_choice("method", proposal["value"], CAM_METHODS)

    @traitlets.validate("colormap")
    def _check_colormap(self, proposal):
        return self._check_choice("colormap", proposal["value"], render.COLORMAPS)

    @traitlets.validate("scale")
    def _check_scale(self, proposal):
        return self._check_choice("scale", proposal["value"], SCALES)

    @traitlets.validate("opacity")
    def _check_opacity(self, proposal):
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise traitlets.TraitError(f"opacity must be between 0 (only the image) and 1 (only the heatmap), got {value}")
        return value

    @traitlets.validate("target_index")
    def _check_target(self, proposal):
        value = proposal["value"]
        count = len(self.model.classes)
        if not 0 <= value < count:
            raise traitlets.TraitError(f"target_index {value} is out of range; the model has {count} classes (valid: 0-{count - 1})")
        return value

    @traitlets.validate("compare")
    def _check_compare(self, proposal):
        value = proposal["value"].strip()
        if value == "" or value in CAM_METHODS or value in self.model.classes:
            return value
        classes = self.model.classes
        close = difflib.get_close_matches(value, list(CAM_METHODS) + classes, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
        shown = classes[:20] + ([f"... ({len(classes) - 20} more)"] if len(classes) > 20 else [])
        raise traitlets.TraitError(
            f"unknown comparison {value!r}{hint} Use '' for no comparison, another method "
            f"({', '.join(CAM_METHODS)}) or another class ({', '.join(shown)})"
        )


    # -- the image ------------------------------------------------------------------
    @property
    def image(self):
        """The PIL image being explained (as given, before resizing to the model's input).

        >>> import cnn_widgets as cw
        >>> cw.GradCAM(cw.load_model("fashion-cnn"), "bag").image.size
        (28, 28)
        """
        return self._picture

    def set_image(self, image, name: str | None = None) -> None:
        """Explain another image (anything :func:`cnn_widgets.load_image` takes, or a sample name);
        the view starts at the new image's top prediction. A bad image raises and changes nothing.

        >>> import cnn_widgets as cw
        >>> widget = cw.GradCAM(cw.load_model("fashion-cnn"))
        >>> widget.set_image("trouser")
        >>> widget.sample, widget.target_index == widget.predictions[0]["index"]
        ('trouser', True)
        """
        picture, name = self._open_image(image, name)
        inputs = self.model.preprocess(picture)  # fails here, before anything shown changes
        ranked = engine.predict(self.model, inputs, k=len(self.model.classes))
        probabilities = [0.0] * len(self.model.classes)
        for prediction in ranked:
            if prediction.index < len(probabilities):
                probabilities[prediction.index] = prediction.probability
        shown = render.to_uint8_image(self.model.deprocess(inputs)[0].detach().cpu())
        quiet, self._quiet = self._quiet, True
        try:
            with self._lock:
                self._inputs, self._picture, self._probabilities = inputs, picture, probabilities
                self._seen = shown
                self._failed.clear()
                self._stopped.clear()
                with self.hold_sync():
                    self.image_png = render.enlarge(shown, THUMBNAIL_SIZE)
                    label = self._name_image(name)
                    self.predictions = [
                        {"index": p.index, "name": p.name, "probability": p.probability} for p in ranked[:TOP_K]
                    ]
                    self.title = f"{self.model.label} · {label}"
                    self.target_index = ranked[0].index
                    self.notice = ""
        finally:
            self._quiet = quiet
        if not quiet:  # the constructor draws once, when everything is set
            self._refresh()

    # -- which maps the view needs ----------------------------------------------------
    @property
    def compare_kind(self) -> str:
        """What :attr:`compare` compares with: ``""`` (nothing), ``"method"`` or ``"class"``.

        >>> import cnn_widgets as cw
        >>> cw.GradCAM(cw.load_model("fashion-cnn"), compare="Bag").compare_kind
        'class'
        """
        if not self.compare:
            return ""
        return "method" if self.compare in CAM_METHODS else "class"

    @traitlets.validate("layer")
    def _check_layer(self, proposal):
        """A layer as :func:`engine.cam` takes it: a conv layer by any name the model
        resolves, shown by its display name (``"features.7"`` -> ``"block2_conv2"``), the
        same with ``":raw"``, or any module path whose output is a feature map (a
        ResNet's ``"layer4"``), which then joins the layer choices."""
        path = proposal["value"]
        if isinstance(path, str) and path.endswith(RAW):
            try:
                return self.model.layer_output(path).name
            except ValueError as error:
                raise traitlets.TraitError(str(error)) from None
        try:
            return super()._check_layer(proposal)
        except traitlets.TraitError as error:
            shape = self._feature_map_shape(path)
            if shape is None:
                raise traitlets.TraitError(f"{error}; any module path of the network whose output is a feature map (such as a ResNet's 'layer4') also works") from None
            if all(option["name"] != path for option in self.layer_options):
                self.layer_options = [*self.layer_options, {"name": path, "path": path, "channels": shape[0], "shape": list(shape)}]
            return path

    def _feature_map_shape(self, path) -> tuple[int, ...] | None:
        """(C, H, W) of the module at ``path`` for one input; None when there is no such module."""
        if not isinstance(path, str) or not path:
            return None
        try:
            shape = self.model.output_shape(path)
        except ValueError:
            return None
        if len(shape) != 3:
            raise traitlets.TraitError(f"{path} outputs {shape or 'nothing'} per image; a heatmap layer must output (N, C, H, W) feature maps")
        return shape

    def _panel(self, method: str, class_index: int, layer: str | None = None) -> _Panel:
        used = (layer or self.layer) if METHODS[method].uses_layer else None
        key = (self._image_version, method, used, class_index, weights_version(self.model))
        return _Panel(method, used, class_index, key)

    def _panels(self) -> list[_Panel]:
        panels = [self._panel(self.method, self.target_index)]
        kind = self.compare_kind
        if kind == "method":
            panels.append(self._panel(self.compare, self.target_index))
        elif kind == "class":
            panels.append(self._panel(self.method, self.model.classes.index(self.compare)))
        return panels

    def _reference(self) -> _Panel | None:
        """The top predicted class's map (same method and layer) whose peak the single view's
        shared scale reaches up to; None when comparing, on ``per_map``, or when the top class is shown."""
        if self.compare_kind or self.scale != "shared" or not self.predictions:
            return None
        top = self.predictions[0]["index"]
        return None if top == self.target_index else self._panel(self.method, top)

    def _needed(self, panels: list[_Panel]) -> list[_Panel]:
        """The view's panels and the shared scale's reference, if any."""
        reference = self._reference()
        return panels if reference is None else [*panels, reference]

    def _missing(self, panels: list[_Panel]) -> list[_Panel]:
        """What painting ``panels`` still waits for: their maps, then the reference's peak
        (only its peak is needed, and kept even after its map leaves the cache)."""
        missing = [p for p in panels if p.key not in self._cache]
        reference = self._reference()
        if reference is not None and reference.key not in self._peaks and reference not in missing:
            missing.append(reference)
        return missing

    def heatmap(self, method: str | None = None, layer=None, target=None) -> torch.Tensor:
        """The map for ``method``, ``layer`` and class ``target`` (index or name), each by
        default what the widget shows, as :func:`cnn_widgets.engine.cam` returns it: (H, W)
        of the model's input, not normalized. Cached, like every map the widget computes.

        >>> import cnn_widgets as cw
        >>> widget = cw.GradCAM(cw.load_model("fashion-cnn"), "sneaker")
        >>> widget.heatmap().shape, widget.heatmap("saliency", target="Bag").shape
        (torch.Size([28, 28]), torch.Size([28, 28]))
        """
        method = self.method if method is None else method
        if method not in CAM_METHODS:
            raise invalid_choice("method", method, CAM_METHODS)
        index = self.target_index if target is None else class_index(self.model, target)
        layer_name = self.layer if layer is None else self._check_layer({"value": layer})
        with self._lock:
            panel, inputs = self._panel(method, index, layer_name), self._inputs
        return self._compute(panel, inputs)

    def stop(self) -> None:
        """Stop the heatmap being computed (Score-CAM and SmoothGrad run the network many
        times): the picture stays, the menus go back to what it shows, and :attr:`notice`
        (not the error line: nothing failed) says what was stopped. Choosing the stopped
        view again starts it over. Returns at once."""
        self._worker.stop()
        # A request that had not started yet was dropped without a word: say so once the worker is free.
        self._worker.submit(self._after_stop)

    def _after_stop(self, _cancel, _report) -> str:
        with self._lock:
            panels = self._panels()
            if self._shows_current_view() or self.notice or any(p.key in self._failed for p in self._needed(panels)):
                return ""  # nothing was stopped, or the stopped job said so itself
            missing = self._missing(panels)
            if not missing:
                self._refresh()
                return ""
        self._stopped_by_request(f"stopped {self._describe(missing[0])} before it started")
        return ""

    def _shows_current_view(self) -> bool:
        """True when the picture is of the view the menus choose (``shown`` equals them)."""
        shown = self.shown
        return bool(shown) and shown.get("image_name") == self.image_name and all(
            shown.get(trait) == getattr(self, trait) for trait in self._VIEW_TRAITS)

    @handles("stop")
    def _on_stop(self, _content, _buffers) -> None:
        self.stop()

    @handles("trust")
    def _on_trust(self, _content, _buffers) -> None:
        self.check_trust()

    def _compute(self, panel: _Panel, inputs, wanted=lambda: True, progress=None, cancel=None) -> torch.Tensor | None:
        """The panel's map, from the cache or the engine; None when ``wanted()`` says, once
        the model is free, that the view has moved on meanwhile. ``cancel()`` ends the
        computation (with :class:`engine.Cancelled`)."""
        with self._lock:
            if panel.key in self._cache:
                self._cache.move_to_end(panel.key)
                self._keep_peak(panel.key, self._cache[panel.key])
                return self._cache[panel.key]
        with model_lock(self.model.module):  # reentrant: engine.cam takes it again inside
            if not wanted():
                return None
            heat = engine.cam(
                self.model, inputs, method=panel.method, layer=panel.layer, target=panel.class_index,
                progress=progress, cancel=lambda: (cancel is not None and cancel()) or not wanted(),
            )[0]
        with self._lock:
            self._cache[panel.key] = heat
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            self._keep_peak(panel.key, heat)
        return heat

    def _keep_peak(self, key: tuple, heat: torch.Tensor) -> None:
        """Remember a map's peak (the largest finite value, 0 for none), which outlives the map in the cache."""
        finite = heat[torch.isfinite(heat)]
        self._peaks[key] = float(finite.max()) if finite.numel() else 0.0
        self._peaks.move_to_end(key)
        while len(self._peaks) > PEAKS_SIZE:
            self._peaks.popitem(last=False)

    # -- the background thread ----------------------------------------------------------
    def _on_view_change(self, _change) -> None:
        if self._quiet:
            return
        with self._lock:
            self._failed.clear()  # a changed view tries again what failed before
            self._stopped.clear()  # ... and what was stopped
        self.notice = ""
        self._refresh()

    def _on_look_change(self, _change) -> None:
        if not self._quiet:
            self._refresh()

    def refresh(self) -> None:
        """Explain the image again with the model as it is now, after its weights changed in
        place: new predictions, the view at the new top class (as for a new image), and maps
        computed afresh (they are cached by the weights' version, so none is reused).

        >>> import cnn_widgets as cw, torch
        >>> model = cw.load_model("fashion-cnn")
        >>> view = cw.GradCAM(model, "bag"); view.wait(); before = view.heatmap()
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        >>> view.refresh(); view.wait(); torch.equal(view.heatmap(), before)
        False
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        """
        if self._picture is not None:
            self.set_image(self._picture, self.image_name.split("#")[0] or None)

    def _refresh(self) -> None:
        """Paint now when every map the view needs is cached; otherwise let the worker compute them."""
        with self._lock:
            if self._inputs is None:
                return
            panels = self._panels()
            failed = [self._failed[p.key] for p in self._needed(panels) if p.key in self._failed]
            if failed:
                self.error = failed[0]
                return
            missing = self._missing(panels)
            if not missing:
                self._paint(panels)
                return
            if any(p.key in self._stopped for p in self._needed(panels)):
                return  # stopped on request: computed again when the view changes
            # The status names the newest request at once, not a job it replaces that waits for the model.
            computing = f"computing {self._describe(missing[0])}…"
            self._worker.submit(self._work, status=computing)
            self._worker.report(None, computing)  # after submit: a job the worker picked meanwhile set its own

    def _work(self, cancel, report) -> str:
        """In the worker: compute the view's missing maps one by one, always for the latest
        view, then paint. A change while a map is computed submits a newer request, which
        takes over once that map is done (it stays cached) or, if the new view does not
        need it, at once. Stop ends the map being computed (:meth:`_stopped_by_request`)."""
        while True:
            self._layer_field(self._panel(self.method, self.target_index).layer)  # once per layer, before the lock
            with self._lock:
                if cancel.superseded:  # the newer request paints the view
                    return ""
                panels = self._panels()
                missing = [p for p in self._missing(panels) if p.key not in self._failed]
                if not missing:
                    failed = [self._failed[p.key] for p in self._needed(panels) if p.key in self._failed]
                    if failed:
                        self.error = failed[0]
                    else:
                        self._paint(panels)
                    return ""  # the status line is empty when nothing is computed
                panel, inputs = missing[0], self._inputs
                computing = f"computing {self._describe(panel)}…"
                report(0.0, computing)  # under the lock, so a newer request's status (_refresh) is never overwritten
            passes = METHODS[panel.method].progress_unit

            reached = [0, 0]

            def progress(done: int, total: int) -> None:
                reached[:] = done, total
                report(done / total, f"{computing} {done}/{total} {passes}")

            try:
                self._compute(
                    panel, inputs, wanted=lambda: panel.key in {p.key for p in self._needed(self._panels())},
                    progress=progress if passes else None, cancel=lambda: cancel.is_set() and not cancel.superseded,
                )
            except engine.Cancelled:
                if cancel.is_set() and not cancel.superseded:  # Stop pressed; otherwise the view moved on
                    done = f" after {reached[0]} of {reached[1]} {passes}" if reached[1] else ""
                    self._stopped_by_request(f"stopped {self._describe(panel)}{done}")
                    return ""
            except Exception as error:  # shown in the widget; the kernel and the widget stay usable
                with self._lock:
                    self._failed[panel.key] = f"{type(error).__name__}: {error}"

    def _stopped_by_request(self, what: str) -> None:
        """After Stop: the menus go back to the view the picture shows, so the two agree, and
        :attr:`notice` says what was stopped (no error: nothing went wrong). When the picture is
        of an earlier image, the menus stay and the page keeps marking the picture as the
        previous one; the stopped maps are computed again when the view changes."""
        with self._lock:
            shown = dict(self.shown)
            if shown.get("image_name") == self.image_name:
                quiet, self._quiet = self._quiet, True
                try:
                    with self.hold_sync():
                        for trait in self._VIEW_TRAITS:
                            setattr(self, trait, shown[trait])
                finally:
                    self._quiet = quiet
                self.notice = f"{what}; the menus are back to the map shown (choose it again to start over)"
                self._refresh()
            else:
                self._stopped.update(p.key for p in self._missing(self._panels()))
                self.notice = f"{what}; the faded picture is of the previous image (change the class, method or layer to compute again)"

    def wait(self, timeout: float | None = None) -> None:
        """Block until the heatmaps of the current view are computed and shown (or
        ``timeout`` seconds have passed).

        >>> import cnn_widgets as cw
        >>> widget = cw.GradCAM(cw.load_model("fashion-cnn"), "coat", method="scorecam")
        >>> widget.wait()
        >>> widget.busy
        False
        """
        self._worker.wait(timeout)

    # -- painting -------------------------------------------------------------------------
    def _paint(self, panels: list[_Panel]) -> None:
        """Overlay the cached maps on the image, each on its scale (:meth:`_scales`), and
        record the view they show; called with the lock held."""
        heats = []
        for panel in panels:
            self._cache.move_to_end(panel.key)
            heats.append(self._cache[panel.key].numpy())
        scales = self._scales(panels, heats)
        shared = len(scales) == 1
        pictures, captions = [], []
        for i, (panel, heat) in enumerate(zip(panels, heats)):
            scale = scales[0 if shared else i]
            pictures.append(render.heatmap_overlay(self._seen, heat, DISPLAY_SIZE, self.colormap, self.opacity,
                                                   vrange=(scale["low"], scale["high"])))
            captions.append(self._caption(panel, heat))
        self._shown, self._shown_scales = pictures, scales
        with self.hold_sync():
            self.overlay_png = pictures[0]
            self.overlay_caption = captions[0]
            self.compare_png = pictures[1] if len(pictures) > 1 else b""
            self.compare_caption = captions[1] if len(captions) > 1 else ""
            self.colorbars = scales
            self.layer_note = self._layer_note(panels[0].layer)
            self.shown = {
                "image_name": self.image_name,
                **{trait: getattr(self, trait) for trait in self._VIEW_TRAITS},
                "panels": [self._panel_summary(panel) for panel in panels],
            }
            self.error = ""

    def _scales(self, panels: list[_Panel], heats: list[np.ndarray]) -> list[dict]:
        """The colorbars of the painted maps (:func:`render.colorbar_scale`, from zero to the
        peak, in the method's units): one for two classes on one scale, else one per map. A single
        map on the shared scale reaches up to the top class's peak too (:meth:`_reference`)."""
        def note(method: str, who: str = "") -> str:
            return who + METHODS[method].scale_note

        if len(panels) == 1:
            return [self._single_scale(panels[0], heats[0])]
        if self.compare_kind == "class" and self.scale == "shared":
            low, high = render.value_range(np.stack(heats))
            return [render.colorbar_scale(low, high, self.colormap, note=note(panels[0].method, "A and B on one scale · "))]
        own = " (its own peak: do not compare colours with the other map)" if self.compare_kind == "class" else ""
        return [render.colorbar_scale(*render.value_range(heat), self.colormap, note=note(panel.method, f"{letter}{own} · "))
                for letter, panel, heat in zip("AB", panels, heats)]

    def _single_scale(self, panel: _Panel, heat: np.ndarray) -> dict:
        """The colorbar of the single view: on ``shared``, from zero to the larger of the map's
        peak and the top class's (so a class the network barely sees looks weak), else its own peak."""
        top = self.predictions[0] if self.predictions else None
        own_peak = self.scale == "per_map"
        reference = None if own_peak or top is None else self._reference()
        return render.class_map_scale(
            heat, self.colormap, METHODS[panel.method].scale_note,
            top_class=f"{top['name']} ({100 * top['probability']:.1f}%)" if top else None,
            top_peak=None if reference is None else self._peaks[reference.key], own_peak=own_peak)

    def _panel_summary(self, panel: _Panel) -> dict:
        probability = self._probabilities[panel.class_index] if self._probabilities else 0.0
        return {"class_name": self.model.classes[panel.class_index], "probability": probability,
                "method": METHODS[panel.method].label, "layer": panel.layer or ""}

    def _describe(self, panel: _Panel) -> str:
        where = f" at {panel.layer}" if panel.layer else ""
        why = " (the top class: the shared scale's reference)" if panel == self._reference() else ""
        return f"{METHODS[panel.method].label} for {self.model.classes[panel.class_index]}{where}{why}"

    def _caption(self, panel: _Panel, heat) -> str:
        probability = self._probabilities[panel.class_index] if self._probabilities else 0.0
        text = f"{METHODS[panel.method].label} · {self.model.classes[panel.class_index]} ({100 * probability:.1f}%)"
        if panel.layer:
            text += f" · {panel.layer}"
        peak = float(heat.max())
        if peak > 0:
            text += f" · peak {peak:.3g}"
        elif panel.layer:
            text += " · flat map: no positive evidence at this layer (try another layer, Layer-CAM or Grad-CAM++)"
        else:
            text += " · flat map: the score does not depend on these pixels"
        return text

    def _layer_field(self, layer: str | None):
        """The receptive field of ``layer`` (:func:`engine.receptive_fields`, a probe of a
        fraction of a second on fashion-cnn, seconds on VGG16), kept per network and layer;
        None for the pixel methods and for module paths that are not conv layers."""
        if layer is None:
            return None
        fields = _FIELDS.setdefault(self.model.module, {})
        key = (layer.removesuffix(RAW), tuple(self.model.input_size))
        if key not in fields:
            try:
                name = self.model.layer(key[0]).name
            except (ValueError, KeyError, TypeError):
                fields[key] = None  # a module path (a ResNet's "layer4"): its size is still told
            else:
                try:
                    fields[key] = engine.receptive_fields(self.model, [name])[name]
                except Exception:  # noqa: BLE001  the note is a courtesy: the map is shown without its window
                    fields[key] = None
        return fields[key]

    def _layer_note(self, layer: str | None) -> str:
        """What a cell of ``layer``'s map is in the picture, in pixels (see :attr:`layer_note`).

        >>> import cnn_widgets as cw
        >>> print(cw.GradCAM(cw.load_model("fashion-cnn"), "sneaker").layer_note)
        block3_conv2 is a 7 x 7 map: each cell covers 4 x 4 pixels of the 28 x 28 picture but is computed from a 32 x 32 window around it (its receptive field), more than the whole picture, so a bright cell on the background can stand for evidence anywhere in the picture
        """
        if layer is None or self._inputs is None:
            return ""
        shape = self.model.output_shape(self.model.layer_output(layer).path)  # (C, h, w), kept by the model
        height, width = (int(n) for n in self._inputs.shape[-2:])
        rows, cols = shape[1], shape[2]
        size = lambda a, b: f"{a:.3g} x {b:.3g}"  # noqa: E731  (x, not ×: the saved picture's font has no ×)
        cell = "is one pixel" if (rows, cols) == (height, width) else f"covers {size(height / rows, width / cols)} pixels"
        text = f"{layer} is a {rows} x {cols} map: each cell {cell} of the {height} x {width} picture"
        field = self._layer_field(layer)
        if field is None:
            return text
        anywhere = "so a bright cell on the background can stand for evidence anywhere in the picture"
        if field.size is None:  # the probe found every pixel in every cell's field
            return f"{text} but is computed from the whole picture (its receptive field), {anywhere}"
        window = size(*field.size)
        if field.size[0] >= height and field.size[1] >= width:
            return f"{text} but is computed from a {window} window around it (its receptive field), more than the whole picture, {anywhere}"
        return f"{text} and is computed from the {window} window around it (its receptive field)"

    # -- saving -----------------------------------------------------------------------------
    def picture(self) -> np.ndarray:
        """What the widget shows, saying what the live view says (uint8 RGB): the title; the
        top predictions with their probabilities in %; beside them the overlay, or both
        overlays side by side when comparing, with the numbered colorbar under them (one
        shared, or one under each), each map's caption and what a cell of the layer is.

        >>> import cnn_widgets as cw
        >>> picture = cw.GradCAM(cw.load_model("fashion-cnn"), "sandal").picture()
        >>> picture.shape[1] > 252 + PREDICTIONS_WIDTH
        True
        """
        self.wait()
        with self._lock:
            if not self._shown:
                raise RuntimeError(f"the widget has no heatmap to show yet: {self.error or 'nothing was computed'}")
            pictures, scales, colormap = list(self._shown), list(self._shown_scales), self.colormap
            shown, title, note = dict(self.shown), self.title, self.layer_note
            captions = [self.overlay_caption] + ([self.compare_caption] if len(pictures) > 1 else [])
        if len(scales) == len(pictures):
            pictures = [render.with_colorbar(picture, scale, colormap) for picture, scale in zip(pictures, scales)]
            maps = pictures[0] if len(pictures) == 1 else render.side_by_side(pictures, gap=GAP)
        else:
            maps = render.with_colorbar(render.side_by_side(pictures, gap=GAP), scales[0], colormap)
        if len(captions) > 1:
            captions = [f"{letter} · {text}" for letter, text in zip("AB", captions)]
        width = max(maps.shape[1], 252)
        maps_column = render.stacked([maps, *(render.caption(text, width) for text in captions), render.caption(note, width)])
        views = render.side_by_side([self._predictions_picture(shown), maps_column], gap=GAP)
        return render.stacked([render.caption(title, views.shape[1], ink=(0, 0, 0)), views], gap=8)

    def _predictions_picture(self, shown: dict) -> np.ndarray:
        """The top predictions as the live view lists them, in %, the explained classes marked."""
        panels = shown.get("panels", [])
        marks = {}
        for letter, panel in zip("AB" if len(panels) > 1 else ["shown"], panels):
            marks.setdefault(panel["class_name"], []).append(f"map {letter}" if len(panels) > 1 else letter)
        lines = ["Top predictions (probability, %)"]
        for rank, p in enumerate(self.predictions, 1):
            mark = f"  ({', '.join(marks[p['name']])})" if p["name"] in marks else ""
            lines.append(f"{rank}. {p['name']}: {percent(p['probability'])}{mark}")
        heading, *rows = lines
        return render.stacked([render.caption(heading, PREDICTIONS_WIDTH, ink=(0, 0, 0)),
                               *(render.caption(line, PREDICTIONS_WIDTH) for line in rows)], gap=2)

    def save_png(self, path) -> None:
        """Write what the widget shows (the overlay, or both overlays when comparing) to a PNG file.

        >>> import cnn_widgets as cw, tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     cw.GradCAM(cw.load_model("fashion-cnn"), "bag").save_png(pathlib.Path(folder) / "bag.png")
        """
        render.save_png(self.picture(), path)

    # -- how far to trust the shown map (issue 13) ---------------------------------------------
    def check_trust(self) -> None:
        """Check the first map in the worker: the sanity check of Adebayo et al. (2018)
        (:func:`cnn_widgets.engine.sanity_check`, the first :data:`TRUST_STEPS` layers from
        the output down) and ROAD against a random map (:func:`cnn_widgets.engine.faithfulness`).
        :attr:`trust` holds the numbers and :attr:`trust_png` the randomized model's map;
        both are cleared when the view changes. Returns at once; :meth:`wait` waits.

        >>> import cnn_widgets as cw
        >>> widget = cw.GradCAM(cw.load_model("fashion-cnn"), "sneaker")
        >>> widget.check_trust(); widget.wait()
        >>> widget.trust["state"], widget.trust["sanity"]["randomized"][0], len(widget.trust["road"]["removed"])
        ('done', 'classifier.5', 9)
        """
        with self._lock:
            panel, inputs = self._panel(self.method, self.target_index), self._inputs
        if inputs is None:
            return
        self.trust, self.trust_png = {"state": "computing", "about": self._describe(panel)}, b""
        self._worker.submit(lambda cancel, report: self._trust_work(panel, inputs, cancel, report))

    def _forget_trust(self, _change) -> None:
        if self.trust:
            self.trust, self.trust_png = {}, b""

    def _trust_work(self, panel: _Panel, inputs, cancel, report) -> str:
        self._work(cancel, report)  # this request replaced any map being computed: show the view first
        about = self._describe(panel)
        if cancel.is_set() and not cancel.superseded and self.trust.get("state") == "computing":
            self.trust = {"state": "stopped", "about": about}
        if cancel.is_set() or panel.key != self._panel(self.method, self.target_index).key:
            return ""
        stopped = lambda: cancel.is_set()  # noqa: E731
        try:
            report(0.0, f"sanity check of {about}…")
            steps = min(TRUST_STEPS, len(engine.randomizable_modules(self.model.module)))
            check = engine.sanity_check(self.model, inputs[0], panel.method, panel.layer, panel.class_index, steps=steps, cancel=stopped)
            report(0.5, f"ROAD of {about} and of a random map…")
            score = engine.faithfulness(self.model, inputs[0], panel.method, panel.layer, panel.class_index, cancel=stopped)
        except engine.Cancelled:
            if not cancel.superseded:
                self.trust = {"state": "stopped", "about": about}
            return ""
        except Exception as error:  # shown in the panel; the widget stays usable
            self.trust = {"state": "failed", "about": about, "error": f"{type(error).__name__}: {error}"}
            return ""
        if panel.key != self._panel(self.method, self.target_index).key:
            return ""
        randomized = render.heatmap_overlay(self._seen, check.maps[0].numpy(), DISPLAY_SIZE, self.colormap, self.opacity)
        with self.hold_sync():
            self.trust_png = randomized
            self.trust = _trust_summary(about, check, score)
        return ""


TRUST_STEPS = 4  # layers randomized, from the output down, by the widget's sanity check
PREDICTIONS_WIDTH = 220  # the saved picture's column of top predictions, in pixels
# Receptive fields depend on the architecture only: kept per network, shared by its widgets.
_FIELDS: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def percent(probability: float) -> str:
    """A probability as the live view writes it (``percent`` in js/gradcam.js): one decimal,
    none at 99.5 % and above or under 0.05 %.

    >>> percent(0.9762), percent(0.0123), percent(0.9999), percent(0.0001)
    ('97.6%', '1.2%', '100%', '0%')
    """
    return f"{100 * probability:.{0 if probability >= 0.995 or probability < 0.0005 else 1}f}%"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _trust_summary(about: str, check, score) -> dict:
    """The numbers the trust panel draws (JSON: NaN becomes None)."""
    return {
        "state": "done",
        "about": about,
        "sanity": {
            "randomized": list(check.randomized),
            "rho": [_finite(r) for r in check.rho],
            "threshold": check.threshold,
            "flagged": check.flagged,
            "warning": check.warning or "",
        },
        "road": {
            "removed": list(score.removed),
            "probability": round(score.probability, 4),
            "map": [round(p, 4) for p in score.most_relevant_first],
            "random": [round(p, 4) for p in score.random_most_relevant_first],
            "road": round(score.road, 4),
            "random_road": round(score.random_road, 4),
            "beats_chance": score.beats_chance,
        },
    }
