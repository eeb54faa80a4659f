"""ActivationMaximization: what input makes each filter fire, optimized live.

Press Run and the chosen filters are optimized together in a background
thread; the grid sharpens as previews arrive, Stop keeps what is there, and
every finished image is cached per (layer, filter, settings), so coming back
to a layer or a filter is instant.
"""
from __future__ import annotations

import numpy as np
import traitlets

from .. import render
from .._choices import check_int
from .._bounded import BoundedCache
from ..engine.activations import weights_version
from ..engine.optvis import MAX_SIDE, MAX_STEPS, QUALITY_PRESETS, maximize
from ..models import as_model
from ..models.layers import parse_filters
from ..frontend import bundled
from .tile_viewer import TileViewer, enlarge
from .worker import RunControls

RESULTS_BYTES = 64_000_000  # optimized images kept per widget (a 128 px image: 49 kB)
PLACEHOLDER = 200  # light gray for filters not optimized yet


class ActivationMaximization(TileViewer, RunControls):
    """Images that maximize each filter of a layer, computed in the background.

    ``filters``: which filters to optimize, as text (``"0-15"``, ``"3, 7, 12"``);
    by default the first 16, or all of a layer with fewer.

    >>> import cnn_widgets as cw
    >>> widget = cw.ActivationMaximization(cw.load_model("fashion-cnn"), layer="block2_conv1", filters="0-3", steps=8)
    >>> widget.run(wait=True)
    >>> widget.status.startswith("done"), len(widget.tile_order)
    (True, 4)
    """

    _esm = bundled("maximization.js")
    _css = bundled("maximization.css")

    filters = traitlets.Unicode("0-15").tag(sync=True)
    steps = traitlets.Int(128).tag(sync=True)
    size = traitlets.Int(0).tag(sync=True)
    preset = traitlets.Unicode("high").tag(sync=True)
    preset_options = traitlets.List(list(QUALITY_PRESETS)).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    normalization_options = traitlets.List([]).tag(sync=True)  # images are shown as they are
    colormap_options = traitlets.List([]).tag(sync=True)

    _GRID_TRAITS = ("layer", "filters", "steps", "size", "preset", "seed")

    def __init__(self, model, layer=None, filters: str | None = None, steps: int = 128, size: int | None = None, **kwargs) -> None:
        self._results = BoundedCache(max_bytes=RESULTS_BYTES)  # finished images, per _key
        self._previews = BoundedCache(max_bytes=RESULTS_BYTES)  # images of a run in progress
        self._version = 0
        self._history: list[np.ndarray] = []  # the grid at each preview of the last run
        self._stopped_at: dict[tuple, int] = {}  # filters whose run was stopped: the last step reached
        model = as_model(model)
        if size is None:  # small models at their own size, ImageNet-sized ones at 128 px
            size = model.input_size[1] if model.input_size[1] <= 64 else 128
        if filters is None:  # the first 16 filters, or all of a layer that has fewer
            count = model.layer(layer if layer is not None else 0).out_channels
            filters = f"0-{min(16, count) - 1}"
        super().__init__(model, layer=layer, filters=str(filters), steps=steps, size=size, **kwargs)

    @traitlets.validate("filters")
    def _check_filters(self, proposal):
        if self.layer:
            try:
                parse_filters(proposal["value"], self.model.layer(self.layer).out_channels)
            except ValueError as error:
                raise traitlets.TraitError(str(error)) from None
        return proposal["value"]

    @traitlets.validate("steps", "size", "seed")
    def _check_counts(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        low, high = {"steps": (1, MAX_STEPS), "size": (1, MAX_SIDE), "seed": (0, None)}[name]
        try:
            return check_int(name if name != "size" else "size (pixels)", value, low=low, high=high)
        except (TypeError, ValueError) as error:
            raise traitlets.TraitError(str(error)) from None

    @traitlets.validate("preset")
    def _check_preset(self, proposal):
        return self._check_choice("preset", proposal["value"], self.preset_options)

    # -- what to compute ----------------------------------------------------------------
    def chosen_filters(self) -> list[int]:
        """The filters the grid shows (parsed from the ``filters`` text)."""
        count = self.model.layer(self.layer).out_channels
        try:
            return parse_filters(self.filters, count)
        except ValueError:  # a spec that fit the previous layer: show the first filters
            return list(range(min(16, count)))

    def _key(self, filter_index: int) -> tuple:
        # The weights' version: images optimized before the weights changed are not shown as current.
        return (self.model.layer(self.layer).path, filter_index, self.steps, self.size, self.preset, self.seed, weights_version(self.model))

    def image(self, filter_index: int) -> np.ndarray | None:
        """The optimized image (H, W, 3) uint8 of a filter with the current settings, if computed."""
        key = self._key(filter_index)
        return self._results.get(key, self._previews.get(key))

    def _job(self, cancel, report) -> None:
        filters = [f for f in self.chosen_filters() if self._key(f) not in self._results]
        if not filters:
            report(1.0, "all chosen filters are already computed")
            return
        keys = [self._key(f) for f in filters]
        steps = self.steps
        self._history = []
        reached = 0
        for key in keys:
            self._stopped_at.pop(key, None)
        report(0.0, f"optimizing {len(filters)} filters")

        def progress(step, values, images):
            nonlocal reached
            reached = step
            report(step / steps, f"step {step}/{steps} · mean activation {float(values.mean()):.3g}")
            if images is not None:
                for key, picture in zip(keys, images):
                    self._previews[key] = render.to_uint8_image(picture)
                self._refresh()

        images = maximize(
            self.model, self.layer, filters, steps=steps, size=self.size, seed=self.seed,
            progress=progress, preview_every=max(1, steps // 16), cancel=cancel, **QUALITY_PRESETS[self.preset],
        )
        if not cancel.is_set():
            for key, picture in zip(keys, images):
                self._results[key] = render.to_uint8_image(picture)
                self._previews.pop(key, None)
        else:
            for key, picture in zip(keys, images):
                self._previews[key] = render.to_uint8_image(picture)
                self._stopped_at[key] = reached
        self._refresh()

    def _refresh(self) -> None:
        self._version += 1
        self._redraw_grid()
        cached = self._grid_cache.get(self._grid_key())
        if self.running and cached is not None:
            self._history.append(cached[4])

    def save_gif(self, path, duration_ms: int = 150) -> None:
        """Write the optimization of the last run as an animated GIF: the grid at every preview.

        >>> import cnn_widgets as cw, tempfile, os
        >>> widget = cw.ActivationMaximization(cw.load_model("fashion-cnn"), layer="block1_conv2", filters="0-3", steps=32)
        >>> widget.run(wait=True)
        >>> path = os.path.join(tempfile.mkdtemp(), "progress.gif"); widget.save_gif(path); os.path.getsize(path) > 0
        True
        """
        if not self._history:
            raise RuntimeError("nothing to animate yet: press Run (or call run()) first")
        render.save_gif(self._history, path, duration_ms=duration_ms)

    # -- drawing --------------------------------------------------------------------------
    def _grid_key(self) -> tuple:
        return super()._grid_key() + (self._version,)

    def _blank(self) -> np.ndarray:
        return np.full((self.size, self.size, 3), PLACEHOLDER, np.uint8)

    def _grid_tiles(self):
        self._grid_cache.clear()  # results change underneath; keep only the current picture
        order = self.chosen_filters()
        tiles = np.stack([self._tile(f) for f in order])
        titles = [f"filter {f}" + (f" · {state}" if (state := self._state(f)) else "") for f in order]
        return tiles, titles, order

    def _state(self, filter_index: int) -> str:
        """How far the filter's image is: "" when finished, else in progress, stopped or not computed yet."""
        key = self._key(filter_index)
        if key in self._results:
            return ""
        if key in self._stopped_at:
            return f"stopped at step {self._stopped_at[key]} of {self.steps}: press Run to start again"
        if key in self._previews:
            return "in progress"
        return "not computed yet: press Run"

    def _tile(self, filter_index: int) -> np.ndarray:
        picture = self.image(filter_index)
        if picture is None or picture.shape[:2] != (self.size, self.size):
            return self._blank()
        return picture

    def _enlarged(self, filter_index: int):
        picture = self.image(filter_index)
        state = self._state(filter_index) or "finished"
        shown = picture if picture is not None else self._blank()
        caption = f"filter {filter_index} of {self.model.layer(self.layer).out_channels} · {self.size}x{self.size} px, {self.steps} steps, {self.preset} · {state}"
        return enlarge(shown), caption
