"""DatasetExamples: the images of a dataset that excite the selected filter most,
as in OpenAI Microscope, with the strongest response highlighted.

The whole dataset is scanned once (batched, with a progress bar) and cached;
then moving between layers and filters only redraws. Each example shows the
image with the filter's activation map over it and a box where it peaks.
"""
from __future__ import annotations

import html

import ipywidgets
import numpy as np
import traitlets

from .. import render
from ..engine import Cancelled
from ..engine.examples import dataset_examples, example_maps
from .._choices import check_keywords
from ..models import as_model
from ..render.examples import examples_picture
from .static import StaticPicture
from .worker import Worker

EXAMPLE_SIZE = 112  # pixels per example in the picture


def _error_html(error: Exception) -> str:
    """An error for the caption, as text (a module name or a message may hold any characters)."""
    return f"<span style='color:#8b1a1a'>{html.escape(f'{type(error).__name__}: {error}')}</span>"


class DatasetExamples(StaticPicture, ipywidgets.VBox):
    """Top dataset images for the selected ``layer`` and ``filter_index``.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.models.datasets import load_fashion_mnist
    >>> images, _ = load_fashion_mnist("test")
    >>> view = cw.DatasetExamples(cw.load_model("fashion-cnn"), images[:500], layer="block2_conv1", k=4)
    >>> view.wait(); view.filter_index = 3
    >>> view.caption.value.startswith("<b>block2_conv1</b>, filter 3")
    True
    """

    layer = traitlets.Unicode("")
    filter_index = traitlets.Int(0)

    def __init__(self, model, dataset, layer=None, k: int = 9, **kwargs) -> None:
        check_keywords(type(self), kwargs)
        self.model = as_model(model)
        self.dataset, self.k = dataset, k
        self._examples = None
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="scanning", layout=ipywidgets.Layout(width="420px"))
        self.caption = ipywidgets.HTML("")
        self.picture_widget = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="480px"))
        super().__init__(children=[self.progress, self.caption, self.picture_widget], **kwargs)
        self.layer = self.model.layer(layer if layer is not None else 0).name
        self.observe(lambda _: self._draw(), names=["layer", "filter_index"])
        self._worker = Worker("DatasetExamples")
        self._worker.submit(self._scan)

    def refresh(self) -> None:
        """Scan the dataset again with the model as it is now (after its weights changed:
        the scan is cached by the weights' version), then draw."""
        self._examples = None
        self.progress.layout.display = None
        self._worker.submit(self._scan)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the dataset has been scanned."""
        self._worker.wait(timeout)

    def _picture_pending(self) -> bool:
        return self._worker.busy

    def _picture_sources(self) -> list:
        return [self, self.picture_widget]

    def _scan(self, cancel, _report) -> None:
        """In the worker: scan the dataset once (stopped when Python exits), then draw."""

        def progress(done: int, total: int) -> None:
            self.progress.max, self.progress.value = total, done
            self.progress.description = f"{done:,}/{total:,}"

        try:
            self._examples = dataset_examples(self.model, self.dataset, k=self.k, progress=progress, cancel=cancel)
            self.progress.layout.display = "none"
            self._draw()
        except Cancelled:
            raise
        except Exception as error:  # shown in the widget
            self.caption.value = _error_html(error)

    def _draw(self) -> None:
        if self._examples is None:
            return
        try:
            picture, text = self.render(self.layer, self.filter_index)
        except Exception as error:  # shown in the widget
            self.caption.value = _error_html(error)
            return
        self.picture_widget.value = render.encode_png(picture)
        self.caption.value = text

    def render(self, layer, filter_index: int) -> tuple[np.ndarray, str]:
        """The examples of one filter as a picture (uint8 RGB) and its caption."""
        info = self.model.layer(layer)
        top = self._examples.top(info.name, filter_index)
        pixels = self._examples.pixels[[index for index, _, _ in top]]
        maps = example_maps(self.model, self._examples, info, filter_index)
        labels = [f"#{index} · {value:.2g}" for index, value, _ in top]
        picture = examples_picture(pixels, maps, [peak for _, _, peak in top], labels, size=EXAMPLE_SIZE)
        caption = (
            f"<b>{html.escape(info.name)}</b>, filter {filter_index}: the {len(top)} of {len(self._examples.pixels):,} images that excite it most "
            "(strongest response boxed; its activation map in color)"
        )
        return picture, caption

    def picture(self) -> np.ndarray:
        """What the view shows (after the scan)."""
        self.wait()
        return self.render(self.layer, self.filter_index)[0]

    def save_png(self, path) -> None:
        """Write the current examples to a PNG file."""
        render.save_png(self.picture(), path)
