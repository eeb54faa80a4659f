"""UnitView: one unit (a conv filter) as OpenAI Microscope shows it, side by side:
its weights, its feature visualization, its top dataset examples, and its
activation map for the current image.

The feature visualization comes from an atlas store when it has them; else it
is made here (activation maximization, in the background) when the view is
shown, and kept for the next visit.

An anywidget (its view is ``js/unit.js``), so the Explorer can show it in marimo too.
"""
from __future__ import annotations

import threading

import numpy as np
import traitlets

from .. import render
from ..engine import Cancelled, feature_maps, filter_weights
from ..engine.activations import layer_stage
from ..engine.optvis import QUALITY_PRESETS, maximize
from .._choices import check_keywords
from ..frontend import bundled
from ..models import as_model
from .base import BaseWidget, UnitChoice
from .examples import DatasetExamples
from .pictures import Picture
from .worker import Worker

PANEL_SIZE = 168  # pixels: the longer side of each small picture
EXAMPLES_WIDTH = 280  # pixels: the dataset examples' grid, shown smaller so that the four fit in a row
VISUALIZATION_STEPS = 128
PANELS = ("Filter", "Feature visualization", "Dataset examples", "On this image")  # the four panels, in order
PICTURE_TRAITS = ("filter_png", "visualization_png", "examples_png", "map_png")  # ... and their pictures


class UnitView(UnitChoice, BaseWidget):
    """The selected ``layer`` and ``filter_index`` of ``model`` in four pictures: the filter's
    weights, its feature visualization, its top dataset examples (from ``examples``, a
    :class:`DatasetExamples`, when given) and its map for ``image`` (called ``image_label``).

    The pictures follow the selection as it changes; the feature visualization, which
    takes a while, is made (in the background) only while ``active`` is True (the Explorer
    sets it while its "Unit" tab is selected), unless the examples come from an atlas
    that stores it.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.widgets import UnitView
    >>> unit = UnitView(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"), layer="block2_conv1")
    >>> unit.filter_index = 5; unit.active = True; unit.wait()
    >>> "3×3 weights, its kernel's mean over its 32 input channels; red positive, blue negative, white zero" in unit.captions[0]
    True
    """

    _esm = bundled("unit.js")
    _css = bundled("unit.css")

    layer = traitlets.Unicode("").tag(sync=True)
    filter_index = traitlets.Int(0).tag(sync=True)
    active = traitlets.Bool(False)
    heading = traitlets.Unicode("").tag(sync=True)  # which filter, in words
    panels = traitlets.List(list(PANELS)).tag(sync=True)  # the panels' titles
    captions = traitlets.List(["", "", "", ""]).tag(sync=True)  # text under each panel's picture
    filter_png = Picture().tag(sync=True)
    visualization_png = Picture().tag(sync=True)
    examples_png = Picture().tag(sync=True)
    map_png = Picture().tag(sync=True)

    def __init__(self, model, image, layer=None, examples: DatasetExamples | None = None, image_label: str = "this image", **kwargs) -> None:
        check_keywords(type(self), kwargs)
        self.model = as_model(model)
        self.image = image
        self.image_label = image_label
        self.examples = examples
        self._visualizations: dict[tuple, np.ndarray] = {}
        self._shown: list[np.ndarray | None] = [None] * 4
        self._showing = threading.Lock()
        self._worker = Worker("UnitView")
        super().__init__(**kwargs)
        self.layer = self.model.layer(layer if layer is not None else 0).name
        self.observe(self._on_selection, names=["layer", "filter_index", "active"])
        if examples is not None:  # a scan that ends shows its examples here too
            examples.observe(lambda _: self._draw_part(2, self._draw_examples), names="examples_png")
        self._on_selection(None)

    def set_image(self, image, label: str = "this image") -> None:
        """Show the unit's map for another image."""
        self.image, self.image_label = image, label
        self._draw_part(3, self._draw_map)

    def refresh(self) -> None:
        """Draw the unit again from the model as it is now (after an in-place change of its
        weights): its filter, its map, and a feature visualization made anew (the ones made
        before were of the old weights)."""
        self._worker.stop()  # a visualization of the old weights in progress is dropped
        self._visualizations.clear()
        self._on_selection(None)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the feature visualization is drawn."""
        self._worker.wait(timeout)

    def _picture_pending(self) -> bool:
        return self._worker.busy

    # -- drawing ------------------------------------------------------------------------------
    def _on_selection(self, _change) -> None:
        info = self.model.layer(self.layer)
        if self.filter_index >= info.out_channels:
            return  # the Explorer moves the filter into range next
        self.heading = (
            f"{info.name}, filter {self.filter_index} of {info.out_channels} "
            f"({info.path}): what it looks for, made (feature visualization) and found (dataset examples)"
        )
        for slot, draw in ((0, self._draw_filter), (1, self._draw_visualization), (2, self._draw_examples), (3, self._draw_map)):
            self._draw_part(slot, draw)

    def _draw_part(self, slot: int, draw) -> None:
        try:
            draw()
        except Exception as error:  # shown in the widget
            self._show(slot, None, _error(error))

    def _show(self, slot: int, picture: np.ndarray | None, caption: str) -> None:
        self._shown[slot] = picture
        with self._showing, self.hold_sync():  # the picture and its caption in one message (the worker draws too)
            setattr(self, PICTURE_TRAITS[slot], picture if picture is not None else b"")
            self.captions = [caption if i == slot else text for i, text in enumerate(self.captions)]

    def _draw_filter(self) -> None:
        weights = filter_weights(self.model, self.layer)[self.filter_index : self.filter_index + 1]
        tiles, _ = render.weight_tiles(weights, view="auto", normalization="tile")
        channels, height, width = weights.shape[1:]
        low, high = float(weights.min()), float(weights.max())
        if channels == 3:
            what = f"its RGB kernel (the color each position responds to); from {low:.3g} to {high:.3g}"
        else:  # the numbers of what is drawn (the mean), then of the weights themselves: a mean all below 0 shows no red
            mean = weights[0].mean(0)
            what = (f"its kernel's mean over its {channels} input channels; red positive, blue negative, white zero; "
                    f"the mean from {float(mean.min()):.3g} to {float(mean.max()):.3g}"
                    + (f" (the weights themselves from {low:.3g} to {high:.3g})" if channels > 1 else ""))
        self._show(0, render.enlarge(tiles[0], PANEL_SIZE), f"{height}×{width} weights, {what}")

    def _draw_examples(self) -> None:
        if self.examples is None:
            self._show(2, None, "no dataset: give the Explorer dataset= (images to scan) or atlas= (a store written by `cnn-widgets atlas`)")
            return
        if self.examples.atlas is None and self.examples._examples is None:
            self._show(2, None, "the dataset is still being scanned (see the Dataset examples tab); come back in a moment")
            return
        picture, _ = self.examples.render(self.layer, self.filter_index)
        top = self.examples.examples(self.layer, self.filter_index)
        if picture is None:
            self._show(2, None, f"{self.layer} is not in the atlas")
            return
        numbers = [example["value"] for example in top if example["value"] is not None]
        values = ", ".join(f"{value:.3g}" for value in numbers)
        never = "; none is above 0: it does not fire on any of them, these come closest" if numbers and max(numbers) <= 0 else ""
        self._show(2, picture, f"the {len(top)} images that excite it most, with their true label and strongest response "
                               f"({self.examples.ranked_by(self.layer)}): {values}{never}")

    def _draw_map(self) -> None:
        info = self.model.layer(self.layer)
        stage = layer_stage(info)
        values = feature_maps(self.model, self.image, info.name)[info.name][self.filter_index].numpy()
        high = float(values.max())
        scaled = render.normalize(values[None], mode="fixed", vrange=(min(0.0, float(values.min())), max(high, 1e-12)))[0]
        picture = render.enlarge(render.colorize(scaled, "inferno"), PANEL_SIZE)
        row, column = np.unravel_index(int(values.argmax()), values.shape)
        after = f"after its {stage.after}" if stage.after else "the conv's output"
        self._show(3, picture, f"its map for {self.image_label} ({after}; black = 0, brightest = {high:.3g} at row {row}, column {column})")

    def _draw_visualization(self) -> None:
        key = (self.layer, self.filter_index)
        atlas = None if self.examples is None else self.examples.atlas
        if atlas is not None and self.layer in atlas.layer_names:
            stored = atlas.visualization(self.layer, self.filter_index)
            if stored is not None:
                steps = atlas.manifest["visualization"]["steps"]
                self._show(1, render.enlarge(np.asarray(stored.convert("RGB")), PANEL_SIZE),
                           f"an image made to excite it most (activation maximization, {steps} steps), from the atlas")
                return
        if key in self._visualizations:
            self._show_visualization(self._visualizations[key])
            return
        if not self.active:
            self._show(1, None, "made when this view is shown (activation maximization takes a while)")
            return
        self._show(1, None, "making an image that excites it most (activation maximization)...")
        self._worker.submit(lambda cancel, report: self._visualize(key, cancel))

    def _visualize(self, key: tuple, cancel) -> None:
        """In the worker: the feature visualization of one unit (kept for the next visit)."""
        layer, filter_index = key
        height, width = self.model.input_size[1:]
        scale = min(1.0, 128 / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        try:
            # The mean response, as the atlas stores it (cnn_widgets/atlas.py), on the first conv too.
            image = maximize(self.model, layer, [filter_index], steps=VISUALIZATION_STEPS, size=size, seed=0, cancel=cancel,
                             objective="channel", **QUALITY_PRESETS["high"])[0]
        except Cancelled:
            raise
        except Exception as error:  # shown in the widget
            self._show(1, None, _error(error))
            return
        if cancel.is_set():
            return  # another unit was chosen: its own job draws
        self._visualizations[key] = render.to_uint8_image(image)
        if (self.layer, self.filter_index) == key:
            self._show_visualization(self._visualizations[key])

    def _show_visualization(self, picture: np.ndarray) -> None:
        self._show(1, render.enlarge(picture, PANEL_SIZE),
                   f"an image made to excite it most (activation maximization, {VISUALIZATION_STEPS} steps, seed 0)")

    def picture(self) -> np.ndarray:
        """The four pictures side by side (uint8 RGB), as far as they are drawn."""
        shown = [picture for picture in self._shown if picture is not None]
        return render.side_by_side(shown) if shown else np.full((8, 8, 3), 255, dtype=np.uint8)

    def save_png(self, path) -> None:
        """Write the four pictures side by side to a PNG file."""
        render.save_png(self.picture(), path)


def _error(error: Exception) -> str:
    """An error in place of a panel's caption (text: a name or a message may hold any characters)."""
    return f"{type(error).__name__}: {error}"
