"""DatasetExamples: the images of a dataset that excite the selected filter most,
as in OpenAI Microscope, with the strongest response highlighted.

Either the whole dataset is scanned once (batched, with a progress bar) and
cached, or the examples are read from an atlas store written by ``cnn-widgets
atlas`` (instantly, whatever the dataset's size); then moving between layers
and filters only redraws. A scanned example shows the image with the filter's
activation map over it and a box where it peaks; an atlas example shows the
part of the image the strongest response sees (its receptive field). Under each:
the true label and the strongest response. Responses are those of the input of the
layer's ReLU (after its BatchNorm, where it has one; the conv's own output where no
activation follows): the images are ranked by it.

An anywidget (its view is ``js/examples.js``), so it shows wherever the other widgets
do: JupyterLab, Notebook 7, VS Code, Colab and marimo (``mo.ui.anywidget``). Its own
layer menu and filter slider take the arrow keys in its own script (left/right: filter,
up/down: layer).
"""
from __future__ import annotations

import numpy as np
import traitlets

from .. import render
from ..engine import Cancelled
from ..engine.examples import check_dataset, dataset_examples, example_maps, example_predictions, image_labels, ranked_by
from .._choices import check_keywords
from ..models import as_model
from ..models.layers import RAW
from ..render.examples import crops_picture, examples_picture
from ..frontend import bundled
from .base import BaseWidget, UnitChoice
from .pictures import Picture
from .worker import Worker

EXAMPLE_SIZE = 112  # pixels per example in the picture


def _response(words: str, raw: bool, boxed: bool = True) -> str:
    """What the number under an example is: the strongest value of the tensor the examples
    are ranked by, said in ``words`` (``raw``: it is the conv's own output, the feature maps' "before").

    >>> print(_response("the input of its ReLU, which is the conv's own output", raw=True))
    the filter's strongest response in that image: the input of its ReLU, which is the conv's own output (the feature maps' "before" choice), at the boxed place
    """
    before = ' (the feature maps\' "before" choice)' if raw else ""
    return f"the filter's strongest response in that image: {words}{before}" + (", at the boxed place" if boxed else "")


# What stores written before the ranking followed the BatchNorm say they hold (their manifest's "response").
_OLD_STORE_RESPONSE = "the conv layer's own output (before its activation), strongest over positions"


def _stored_ranking(manifest: dict, info) -> str:
    """What an atlas store ranks the layer ``info`` by, in words: as :func:`ranked_by`, except
    for a store written before the ranking followed the BatchNorm, which holds the conv's own
    output (different from the ReLU's input only where a BatchNorm sits between them)."""
    if manifest.get("response") == _OLD_STORE_RESPONSE and info.activation_input().module is not info.module:
        return ("the conv's own output, before its BatchNorm and its activation (this store was written by an older "
                "cnn-widgets; write it again to rank by the input of the activation)")
    return ranked_by(info)


def _never_fires(values, count: int, activation: str | None = "ReLU") -> str:
    """A caption's note when no image makes the filter's response positive: the examples are then
    the images that come closest, not ones that excite it (a ReLU passes on 0 for all of them).

    >>> _never_fires([-0.31, -0.4], 2000)
    ' None of the 2,000 images makes its output positive anywhere (its strongest response is -0.31): these come closest; its ReLU passes on 0 for every one of them.'
    >>> _never_fires([1.2, -0.4], 2000)
    ''
    """
    best = max((value for value in values if value is not None), default=None)
    if best is None or best > 0:
        return ""
    zero = f"; its {activation} passes on 0 for every one of them" if activation in ("ReLU", "ReLU6") else ""
    return f" None of the {count:,} images makes its output positive anywhere (its strongest response is {best:.3g}): these come closest{zero}."


class DatasetExamples(UnitChoice, BaseWidget):
    """Top dataset images for the selected ``layer`` and ``filter_index``, with their own
    layer and filter controls (the filter slider takes the arrow keys).

    ``dataset``: a folder (the class of an image is its first folder below the root), a list
    of images or a tensor (see :func:`cnn_widgets.engine.examples.as_pixels`), scanned once;
    ``labels``: the true class of each image of a list or tensor (class indices or names).
    Or ``atlas``: a store written by ``cnn-widgets atlas`` (a path or an opened
    :class:`~cnn_widgets.atlas.Atlas`) of this very model, read instead of scanning; a
    store of another model, other weights or other layers raises ValueError naming what
    differs. Each example is labelled with its true label and its strongest response: the
    largest value, over positions, of the input of the layer's ReLU (after its BatchNorm,
    where it has one), the value the examples are ranked by.

    >>> import cnn_widgets as cw
    >>> from cnn_widgets.models.datasets import load_fashion_mnist
    >>> images, labels = load_fashion_mnist("test")
    >>> view = cw.DatasetExamples(cw.load_model("fashion-cnn"), images[:500], labels=labels[:500], layer="block2_conv1", k=4)
    >>> view.wait(); view.filter_index = 3
    >>> view.caption.startswith("block2_conv1, filter 3")
    True
    """

    _esm = bundled("examples.js")
    _css = bundled("examples.css")

    layer = traitlets.Unicode("").tag(sync=True)
    layer_options = traitlets.List().tag(sync=True)  # the model's conv layers (name, path, channels, shape)
    filter_index = traitlets.Int(0).tag(sync=True)
    filter_count = traitlets.Int(1).tag(sync=True)  # the selected layer's channels
    examples_png = Picture().tag(sync=True)  # the examples of the selected filter; b"" for none
    caption = traitlets.Unicode("").tag(sync=True)  # what the picture shows (text; lines split at "\n")
    example_lines = traitlets.List().tag(sync=True)  # one line of text per example, best first
    progress = traitlets.Float(0.0).tag(sync=True)  # of the scan, 0-1
    status = traitlets.Unicode("").tag(sync=True)  # the scan's progress in words

    def __init__(self, model, dataset=None, layer=None, k: int = 9, labels=None, atlas=None, **kwargs) -> None:
        check_keywords(type(self), kwargs)
        self.model = as_model(model)
        if (dataset is None) == (atlas is None):
            raise ValueError("DatasetExamples needs exactly one of dataset= (images to scan) or atlas= (a store written by `cnn-widgets atlas`), not both or neither")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:  # the scan runs in the background: ask first
            raise ValueError(f"k must be a positive int, got {k!r}")
        if dataset is not None:
            check_dataset(self.model, dataset)
        self.dataset, self.k = dataset, k
        self._examples = None
        self._rendered: dict[tuple, tuple] = {}  # the last filter drawn: the Explorer's unit view shows it too
        self.atlas = _opened_atlas(atlas, self.model) if atlas is not None else None
        self.labels = self._true_labels(dataset, labels) if dataset is not None else None
        super().__init__(**kwargs)
        self.layer_options = self._layer_options()
        self.layer = self.model.layer(layer if layer is not None else (self.atlas.layer_names[0] if self.atlas else 0)).name
        self._sync_controls()
        self.observe(self._on_layer, names="layer")
        self.observe(lambda _: self._draw(), names=["layer", "filter_index"])
        self._worker = Worker("DatasetExamples")
        if self.atlas is not None:
            self._draw()
        else:
            self.busy, self.status = True, "scanning the dataset…"
            self._worker.submit(self._scan)

    # -- selection ----------------------------------------------------------------------------
    def _on_layer(self, _change) -> None:
        count = self.model.layer(self.layer).out_channels
        if self.filter_index >= count:
            self.filter_index = count - 1
        self._sync_controls()

    def _sync_controls(self) -> None:
        self.filter_count = self.model.layer(self.layer).out_channels

    # -- data ---------------------------------------------------------------------------------
    def _true_labels(self, dataset, labels) -> list | None:
        """A class name (or None) per image: from ``labels``, else from a folder's class folders."""
        if labels is None:
            return image_labels(dataset)
        classes = list(self.model.classes)
        names = []
        for label in (labels.tolist() if hasattr(labels, "tolist") else list(labels)):
            if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
                if not 0 <= label < len(classes):
                    raise ValueError(f"labels: class index {label} is out of range; the model has {len(classes)} classes (valid: 0-{len(classes) - 1})")
                names.append(str(classes[label]))
            else:
                names.append(str(label))
        return names

    def refresh(self) -> None:
        """Scan the dataset again with the model as it is now (after its weights changed:
        the scan is cached by the weights' version), then draw."""
        self._examples = None
        self.busy, self.progress, self.status = True, 0.0, "scanning the dataset…"
        self._worker.submit(self._scan)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the dataset has been scanned (at once for an atlas)."""
        self._worker.wait(timeout)

    def _picture_pending(self) -> bool:
        return self._worker.busy

    def _scan(self, cancel, _report) -> None:
        """In the worker: scan the dataset once (stopped when Python exits), then draw."""

        def progress(done: int, total: int) -> None:
            self.progress, self.status = done / max(total, 1), f"scanning the dataset: {done:,} of {total:,} images"

        try:
            self._examples = dataset_examples(self.model, self.dataset, k=self.k, progress=progress, cancel=cancel)
            if self.labels is not None and len(self.labels) != len(self._examples.pixels):
                message = f"labels: got {len(self.labels):,} labels for {len(self._examples.pixels):,} images; give one per image"
                self.labels = None
                raise ValueError(message)
            self.status = ""
            self._draw()
        except Cancelled:
            raise
        except Exception as error:  # shown in the widget
            self.status = ""
            self._show_error(error)
        finally:
            self.busy = False

    def _draw(self) -> None:
        if self._examples is None and self.atlas is None:
            return
        try:
            picture, text = self.render(self.layer, self.filter_index)
            lines = self._details(self.layer, self.filter_index)
        except Exception as error:  # shown in the widget, with nothing of the filter shown before (a bad atlas file)
            with self.hold_sync():
                self.examples_png, self.example_lines = b"", []
                self.caption = f"{self.layer}, filter {self.filter_index}: nothing to show (see the error below)"
                self._show_error(error)
            return
        with self.hold_sync():  # one message: picture, caption and lines of the same filter
            self.examples_png = picture if picture is not None else b""
            self.caption = text
            self.example_lines = lines
            self.error = ""

    # -- what is shown ------------------------------------------------------------------------
    def _remembered(self, what: str, layer: str, filter_index: int, make):
        """The last ``what`` made for this filter (the view and the Explorer's unit view ask for the same)."""
        key = (what, layer, filter_index, id(self._examples), id(self.labels))
        if key not in self._rendered:
            self._rendered = {k: v for k, v in self._rendered.items() if k[0] != what}
            self._rendered[key] = make()
        return self._rendered[key]

    def examples(self, layer, filter_index: int) -> list[dict]:
        """The filter's top examples, best first: ``image`` (index in the dataset), ``label``
        (true class or None), ``value`` (strongest response), ``row`` and ``column`` (where,
        on the layer's output grid) and, for a scanned dataset, ``predicted`` (class, probability).
        For an atlas these are its records as stored (see docs/atlas.md)."""
        info = self.model.layer(layer)
        if self.atlas is not None:
            if info.name not in self.atlas.layer_names:
                return []
            return self.atlas.examples(info.name, filter_index)
        if self._examples is None:  # (the scan's own thread draws after it has them)
            self.wait()

        def make() -> list[dict]:
            predictions = example_predictions(self.model, self._examples, info, filter_index)
            return [
                {"image": index, "label": None if self.labels is None else self.labels[index], "value": value, "row": row, "column": column, "predicted": predicted}
                for (index, value, (row, column)), predicted in zip(self._examples.top(info.name, filter_index), predictions)
            ]

        return self._remembered("examples", info.name, filter_index, make)

    def ranked_by(self, layer) -> str:
        """In words, what the examples of ``layer`` are ranked by (and the numbers under them
        are): the input of the layer's ReLU, after its BatchNorm where it has one (see
        :func:`cnn_widgets.engine.examples.ranked_by`); for an atlas, what its store holds."""
        info = self.model.layer(layer)
        return _stored_ranking(self.atlas.manifest, info) if self.atlas is not None else ranked_by(info)

    def render(self, layer, filter_index: int) -> tuple[np.ndarray | None, str]:
        """The examples of one filter as a picture (uint8 RGB; None when an atlas lacks the
        layer) and its caption (text, lines split at "\\n")."""
        info = self.model.layer(layer)
        name = info.name
        if self.atlas is not None:
            if info.name not in self.atlas.layer_names:
                return None, (f"{name} is not in this atlas; its layers: {', '.join(self.atlas.layer_names)} "
                              "(choose one above, or write an atlas with that layer)")
            top = self.atlas.examples(info.name, filter_index)
            labels = [_tile_label(example["value"], example.get("label"), example["image"]) for example in top]
            picture = crops_picture(np.asarray(self.atlas.crops(info.name, filter_index).convert("RGB")), labels, size=EXAMPLE_SIZE)
            images = self.atlas.manifest["data"]["images"]
            return picture, (
                f"{name}, filter {filter_index}: the {len(top)} of {images:,} images that excite it most, from the atlas "
                f"{self.atlas.folder}; each shows the part of the image its strongest response sees (its receptive field)."
                + _never_fires([example["value"] for example in top], images, info.activation_input().before)
                + f"\nUnder each: its true label and {_response(self.ranked_by(info), info.activation_input().name.endswith(RAW), boxed=False)}."
            )
        return self._remembered("render", info.name, filter_index, lambda: self._scanned_picture(info, filter_index))

    def _scanned_picture(self, info, filter_index: int) -> tuple[np.ndarray, str]:
        top = self._examples.top(info.name, filter_index)
        pixels = self._examples.pixels[[index for index, _, _ in top]]
        maps = example_maps(self.model, self._examples, info, filter_index)
        labels = [_tile_label(value, None if self.labels is None else self.labels[index], index) for index, value, _ in top]
        picture = examples_picture(pixels, maps, [peak for _, _, peak in top], labels, size=EXAMPLE_SIZE)
        under = "its true label and " if self.labels is not None else "its image number and "
        caption = (
            f"{info.name}, filter {filter_index}: the {len(top)} of {len(self._examples.pixels):,} images that excite it most "
            "(strongest response boxed; in color where its output is above 0, on one scale for all of them)"
            + _never_fires([value for _, value, _ in top], len(self._examples.pixels), info.activation_input().before)
            + f"\nUnder each: {under}{_response(self.ranked_by(info), info.activation_input().name.endswith(RAW))}."
        )
        return picture, caption

    def _details(self, layer, filter_index: int) -> list[str]:
        """One line of text per example, best first: image, true label, prediction, response and where."""
        info = self.model.layer(layer)
        height, width = info.output_shape[1:]
        lines = []
        for rank, example in enumerate(self.examples(layer, filter_index), 1):
            parts = [f"image #{example['image']}" + (f" ({example['id']})" if example.get("id") else "")]
            parts.append(f"true: {example['label']}" if example.get("label") is not None else "true: unknown")
            if "predicted" in example:
                parts.append(f"model: {example['predicted'][0]} {example['predicted'][1]:.0%}")
            value = example["value"]
            parts.append(f"response {value:.3g} at row {example['row']}, column {example['column']} of {height}×{width}" if value is not None else "no response")
            lines.append(" · ".join(parts))
        return lines

    def picture(self) -> np.ndarray:
        """What the view shows (after the scan)."""
        self.wait()
        picture, _ = self.render(self.layer, self.filter_index)
        return picture if picture is not None else np.full((8, 8, 3), 255, dtype=np.uint8)

    def save_png(self, path) -> None:
        """Write the current examples to a PNG file."""
        render.save_png(self.picture(), path)


def _tile_label(value: float | None, label, index: int) -> str:
    """The line under an example: its true label (or image number) and its response, to three
    significant digits as the example lines write it (not 0.00 for a response of 0.0034, nor
    hundreds of digits for a huge one).

    >>> _tile_label(0.0034, "Sneaker", 3), _tile_label(12.3456, None, 7), _tile_label(1e308, "Bag", 0)
    ('Sneaker · 0.0034', '#7 · 12.3', 'Bag · 1.0e+308')
    """
    what = str(label) if label is not None else f"#{index}"
    return f"{what[:12]} · {render.format_weight(value)}" if value is not None else what[:12]


def _opened_atlas(atlas, model):
    from ..atlas import Atlas, open_atlas

    store = atlas if isinstance(atlas, Atlas) else open_atlas(atlas)
    store.check_model(model)
    return store
