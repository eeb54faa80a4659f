"""ConvolutionExplainer: one convolution with its numbers, step by step.

A filter of the model's first conv layer (or a small kernel of your own) slides
over an image. At each position the view shows the input patch under the kernel
(with the padding around the image), the kernel, their element-wise products,
the sum of each input channel, the channel sums plus the bias, and the output
pixel that this makes in the feature map; then ReLU and max-pooling of that map.
The numbers come from :func:`cnn_widgets.engine.convolution_at`, so they are the
model's own. Python computes and paints; the JS view (``js/convolution.js``)
shows the traits, and moves the position from the keyboard, a click on the map,
or a play timer.
"""
from __future__ import annotations

import re

import numpy as np
import traitlets

from .. import engine, render
from ..engine.convolution import CUSTOM_KERNEL_RULE, check_kernel, check_position
from ..models import Model, as_model
from ..render import convolution as pictures
from ..frontend import bundled
from .base import BaseWidget
from .image_input import ImageInput
from .messages import handles
from .pictures import Picture

MAP_SIZE = 200  # pictures are enlarged by a whole factor to about this many pixels
KERNEL_PRESETS = {
    "vertical edges": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "horizontal edges": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "blur": [[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}
CHANNEL_NAMES = {1: ["gray"], 3: ["red", "green", "blue"]}
GAP = 12


def parse_kernel(text: str) -> list[list[float]] | None:
    """A kernel typed as text: rows separated by ``;`` or new lines, numbers by spaces or
    commas (brackets are ignored). Empty text means "no custom kernel" (None).

    >>> parse_kernel("0 -1 0; -1 4 -1; 0 -1 0")
    [[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]
    >>> parse_kernel("[[1, 2], [3, 4]]")
    [[1.0, 2.0], [3.0, 4.0]]
    >>> parse_kernel("  ") is None
    True
    """
    cleaned = text.strip()
    if not cleaned:
        return None
    if cleaned.startswith("[["):  # a Python-style list: one row per inner bracket
        rows = re.findall(r"\[([^\[\]]*)\]", cleaned)
    else:
        rows = re.split(r"[;\n]+", cleaned.strip("[] "))
    kernel = []
    for row in rows:
        cells = [cell for cell in re.split(r"[\s,]+", row.strip()) if cell]
        if not cells:
            continue
        try:
            kernel.append([float(cell) for cell in cells])
        except ValueError:
            raise ValueError(
                f"could not read the kernel {text!r}: write rows of numbers separated by ';' "
                "(numbers by spaces), such as '0 -1 0; -1 4 -1; 0 -1 0'"
            ) from None
    return kernel


def _enlargement(height: int, width: int) -> int:
    """The whole factor that brings a picture closest to MAP_SIZE pixels (at least 1)."""
    return max(1, round(MAP_SIZE / max(height, width, 1)))


class ConvolutionExplainer(ImageInput, BaseWidget):
    """One convolution with its numbers: a filter of the first conv layer (or a kernel of
    your own) slides over an image, and every step shows the patch, the kernel, their
    products, the sums, the bias, the output pixel, then ReLU and max-pooling.

    ``image`` is anything :func:`cnn_widgets.load_image` takes, or a sample name;
    ``filter`` a filter of the model's first conv layer; ``kernel`` a small 2-D list of
    numbers used instead of the filter (the same kernel on every input channel, bias 0,
    stride 1, zero padding that keeps the size); ``position`` the (row, column) of the
    output map. Move with :meth:`move_to`, the arrow keys, or a click on the map; Play
    slides the kernel along by itself. Positions after the current one, in reading
    order, are shown as not yet computed.

    >>> import cnn_widgets as cw
    >>> widget = cw.ConvolutionExplainer(cw.load_model("fashion-cnn"), "sneaker", filter=3, position=(14, 9))
    >>> widget.step["row"], widget.step["col"], len(widget.step["channels"]), widget.error
    (14, 9, 1, '')
    >>> widget.move_to(15, 9)
    >>> widget.position
    [15, 9]
    """

    _esm = bundled("convolution.js")
    _css = bundled("convolution.css")

    title = traitlets.Unicode("").tag(sync=True)
    units = traitlets.Unicode("").tag(sync=True)  # what the input numbers are
    kernel_rule = traitlets.Unicode(CUSTOM_KERNEL_RULE).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)  # the first conv layer (fixed)
    filter_index = traitlets.Int(0).tag(sync=True)
    filter_count = traitlets.Int(1).tag(sync=True)
    kernel = traitlets.List([]).tag(sync=True)  # [] = the layer's filter; else rows of numbers
    kernel_presets = traitlets.Dict(KERNEL_PRESETS).tag(sync=True)
    position = traitlets.List([0, 0]).tag(sync=True)  # (row, column) of the output map
    playing = traitlets.Bool(False).tag(sync=True)  # the view's timer moves the position while True
    step = traitlets.Dict().tag(sync=True)  # the numbers of the current position (see _step_numbers)

    sample = traitlets.Unicode("").tag(sync=True)
    sample_options = traitlets.List().tag(sync=True)  # [{"name", "label"}]: samples like the model's pictures first
    image_name = traitlets.Unicode("").tag(sync=True)

    input_png = Picture().tag(sync=True)  # the input with its padding border
    output_png = Picture().tag(sync=True)  # the feature map, computed part only
    relu_png = Picture().tag(sync=True)
    pooled_png = Picture().tag(sync=True)
    colorbar_png = Picture().tag(sync=True)

    def __init__(self, model, image=None, filter: int = 0, kernel=None, position=(0, 0), **kwargs) -> None:
        self.model: Model = as_model(model)
        self._info = self.model.layers[0]
        self._inputs = self._picture = None
        self._image_version = 0
        self._map_shape: tuple[int, int] | None = None
        self._current: engine.ConvolutionStep | None = None
        self._quiet = True  # no computing while the constructor sets things up
        layer = kwargs.pop("layer", None)
        super().__init__(layer=self._info.name, filter_count=self._info.out_channels, units=self._units(),
                         sample_options=self._sample_options(), **kwargs)
        try:  # from the constructor, bad values raise ValueError like the engine's
            if layer is not None:
                self.layer = layer
            self.filter_index = filter
            if kernel is not None:
                self.kernel = kernel
        except traitlets.TraitError as error:
            raise ValueError(str(error)) from None
        self.colorbar_png = pictures.signed_map(np.linspace(-1, 1, 160)[np.newaxis].repeat(10, axis=0), 1.0, None, 1)
        self.set_image(self._default_sample() if image is None else image)
        self._map_shape = self._shape_now()
        try:
            self.position = list(position)  # checked against the map
        except traitlets.TraitError as error:
            raise ValueError(str(error)) from None
        self._quiet = False
        self._update()
        self.observe(self._on_change, names=["filter_index", "kernel", "position"])
        self.observe(self._on_sample, names=["sample"])

    # -- validation: bad values from Python raise with the valid range --------------------
    @traitlets.validate("layer")
    def _check_layer(self, proposal):
        if proposal["value"] != self._info.name:
            raise traitlets.TraitError(
                f"ConvolutionExplainer shows the first conv layer, {self._info.name}, whose input is the image itself; "
                f"got layer {proposal['value']!r} (valid: {self._info.name}; engine.convolution_at(model, image, layer=...) computes any layer)"
            )
        return proposal["value"]

    @traitlets.validate("filter_index")
    def _check_filter(self, proposal):
        value = proposal["value"]
        count = self._info.out_channels
        if not 0 <= value < count:
            raise traitlets.TraitError(f"filter index {value} is out of range for layer {self._info.name}, which has {count} filters (valid: 0-{count - 1})")
        return value

    @traitlets.validate("kernel")
    def _check_kernel(self, proposal):
        value = proposal["value"]
        if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
            return []
        try:
            return [[float(v) for v in row] for row in check_kernel(value).tolist()]
        except (TypeError, ValueError) as error:
            raise traitlets.TraitError(f"{error} (or [] for the layer's own filter)") from None

    @traitlets.validate("position")
    def _check_position(self, proposal):
        if self._map_shape is None:
            return list(proposal["value"])
        try:
            return list(check_position(proposal["value"], self._map_shape))
        except (TypeError, ValueError) as error:
            raise traitlets.TraitError(str(error)) from None

    # -- the image ------------------------------------------------------------------------
    @property
    def image(self):
        """The PIL image being convolved (as given, before resizing to the model's input)."""
        return self._picture

    def set_image(self, image, name: str | None = None) -> None:
        """Convolve another image (anything :func:`cnn_widgets.load_image` takes, or a sample name).
        A bad image raises and changes nothing.

        >>> import cnn_widgets as cw
        >>> widget = cw.ConvolutionExplainer(cw.load_model("fashion-cnn"))
        >>> widget.set_image("bag")
        >>> widget.sample
        'bag'
        """
        picture, name = self._open_image(image, name)
        inputs = self.model.preprocess(picture)  # fails here, before anything shown changes
        self._inputs, self._picture = inputs, picture
        with self.hold_sync():
            self._name_image(name)
        if not self._quiet:
            self._update()

    # -- moving ---------------------------------------------------------------------------
    def move_to(self, row: int, col: int) -> None:
        """Put the kernel at output position (``row``, ``col``); outside the map raises with the valid range."""
        self.position = [row, col]

    @property
    def result(self) -> engine.ConvolutionStep:
        """The numbers of the current position, as :func:`cnn_widgets.engine.convolution_at` returns them."""
        if self._current is None:
            raise RuntimeError(f"nothing was computed: {self.error or 'no image yet'}")
        return self._current

    # -- computing and painting ---------------------------------------------------------------
    def _on_change(self, change) -> None:
        if change["name"] == "kernel":
            self._map_shape = None  # a custom kernel can change the map's size
            shape = self._shape_now()
            row, col = self.position
            self._map_shape = shape
            clamped = [min(row, shape[0] - 1), min(col, shape[1] - 1)]
            if clamped != list(self.position):
                self.position = clamped  # triggers its own update
                return
        self._update()

    def _compute(self, position) -> engine.ConvolutionStep:
        return engine.convolution_at(
            self.model, self._inputs, layer=self._info, filter=self.filter_index,
            position=tuple(position), kernel=self.kernel or None,
        )

    def _shape_now(self) -> tuple[int, int]:
        return tuple(self._compute((0, 0)).output_map.shape)

    def refresh(self) -> None:
        """Compute the shown convolution again from the model as it is now, after its
        weights changed in place (the engine's cache is keyed by the weights' version).

        >>> import cnn_widgets as cw, torch
        >>> model = cw.load_model("fashion-cnn")
        >>> view = cw.ConvolutionExplainer(model, "bag"); before = view.result.output
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        >>> view.refresh(); view.result.output == before
        False
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        """
        self._update()

    def _update(self) -> None:
        if self._quiet:
            return
        step = self._show_errors(self._compute, self.position)
        if step is None:
            return
        self._current = step
        self._map_shape = tuple(step.output_map.shape)
        with self.hold_sync():
            self.step = self._step_numbers(step)
            self.title = self._title(step)
            self._paint(step)

    def _title(self, step) -> str:
        what = f"filter {self.filter_index} of {self._info.name}" if step.filter is not None else f"your kernel on the input of {self._info.name}"
        return f"{self.model.label} · {what} · {self.image_name.split('#')[0]}"

    def _units(self) -> str:
        mean = ", ".join(f"{m:.3g}" for m in self.model.mean)
        std = ", ".join(f"{s:.3g}" for s in self.model.std)
        if len(self.model.mean) > 1:
            mean, std = f"({mean}) per channel", f"({std})"
        black = [(0 - m) / s for m, s in zip(self.model.mean, self.model.std)]
        white = [(1 - m) / s for m, s in zip(self.model.mean, self.model.std)]
        ends = lambda values: f"{values[0]:.2f}" if len(values) == 1 else "(" + ", ".join(f"{v:.2f}" for v in values) + ")"
        return (
            f"Input numbers are the image after the model's normalization: (pixel - mean) / std, "
            f"with pixels from 0 (black) to 1 (white), mean {mean} and std {std}; "
            f"so black is {ends(black)} and white is {ends(white)}."
        )

    def _channel_names(self, step) -> list[str]:
        names = CHANNEL_NAMES.get(step.inputs.shape[0])
        return [names[c] if names else f"channel {c}" for c in step.channels]

    def _step_numbers(self, step) -> dict:
        """The small, JSON-ready numbers of one position that the view shows."""
        height, width = step.output_map.shape
        row, col = step.position
        kernel_height, kernel_width = step.kernel.shape[1:]
        span = [step.dilation[0] * (kernel_height - 1) + 1, step.dilation[1] * (kernel_width - 1) + 1]
        channels = [
            {
                "name": name,
                "patch": step.patch[i].tolist(),
                "kernel": step.kernel[i].tolist(),
                "products": step.products[i].tolist(),
                "sum": float(step.channel_sums[i]),
            }
            for i, name in enumerate(self._channel_names(step))
        ]
        pool = None
        if step.pool_position is not None:
            pool_row, pool_col = step.pool_position
            top, left = pool_row * step.pool, pool_col * step.pool
            done = self._computed_mask(step)
            window = step.relu_map[top : top + step.pool, left : left + step.pool]
            values = [
                [float(window[i, j]) if done[top + i, left + j] else None for j in range(window.shape[1])]
                for i in range(window.shape[0])
            ]
            complete = bool(done[top : top + step.pool, left : left + step.pool].all())
            pool = {
                "row": pool_row, "col": pool_col, "top": top, "left": left, "size": step.pool,
                "values": values, "value": float(step.pooled_map[pool_row, pool_col]) if complete else None,
            }
        return {
            "row": row, "col": col, "map_height": height, "map_width": width,
            "input_height": int(step.inputs.shape[1]), "input_width": int(step.inputs.shape[2]),
            "padding": list(step.padding), "padding_mode": step.padding_mode,
            "stride": list(step.stride), "dilation": list(step.dilation),
            "window": list(step.window), "span": span,
            "padding_mask": step.padding_mask.tolist(),
            "channels": channels,
            "bias": step.bias, "output": step.output, "relu": step.relu_output,
            "limit": self._limit(step),
            "pool": pool, "pool_size": step.pool,
            "pooled_height": int(step.pooled_map.shape[0]), "pooled_width": int(step.pooled_map.shape[1]),
            "custom": step.filter is None,
            "source": f"filter {step.filter} of {self._info.name}" if step.filter is not None else "your kernel",
        }

    @staticmethod
    def _limit(step) -> float:
        """The colour scale of the maps: ±the largest |value| of the whole output map."""
        return float(step.output_map.abs().max()) or 1.0

    @staticmethod
    def _computed_mask(step) -> np.ndarray:
        """True for the output pixels the kernel has already visited: those before and at
        the current position, in reading order (row by row, left to right)."""
        height, width = step.output_map.shape
        order = np.arange(height * width).reshape(height, width)
        return order <= step.position[0] * width + step.position[1]

    def _pictures(self, step) -> dict[str, np.ndarray]:
        limit = self._limit(step)
        done = self._computed_mask(step)
        height, width = done.shape
        pool = step.pool
        pooled_height, pooled_width = step.pooled_map.shape
        # A pooled pixel is known once its whole window is computed (its bottom-right pixel).
        pooled_done = done[pool - 1 :: pool, pool - 1 :: pool][:pooled_height, :pooled_width]
        scale = _enlargement(height, width)
        pooled_scale = _enlargement(pooled_height, pooled_width)
        pixels = render.to_uint8_image(self.model.deprocess(self._inputs)[0].detach().cpu())
        if step.inputs.shape[0] != self.model.input_size[0] or step.inputs.shape[1:] != self._inputs.shape[2:]:
            pixels = render.to_uint8_image(render.normalize(step.inputs.mean(0).numpy()))  # not the image itself
        padded_height = pixels.shape[0] + step.padding[0] + step.padding[1]
        padded_width = pixels.shape[1] + step.padding[2] + step.padding[3]
        input_scale = _enlargement(padded_height, padded_width)
        return {
            "input": pictures.padded_picture(pixels, step.padding, input_scale),
            "output": pictures.signed_map(step.output_map.numpy(), limit, done, scale),
            "relu": pictures.signed_map(step.relu_map.numpy(), limit, done, scale),
            "pooled": pictures.signed_map(step.pooled_map.numpy(), limit, pooled_done, pooled_scale)
            if pooled_height and pooled_width else np.full((MAP_SIZE // 2, MAP_SIZE // 2, 3), 255, np.uint8),
        }

    def _paint(self, step) -> None:
        shown = self._pictures(step)
        self.input_png = shown["input"]
        self.output_png = shown["output"]
        self.relu_png = shown["relu"]
        self.pooled_png = shown["pooled"]

    # -- messages from the view ------------------------------------------------------------------
    @handles("kernel")
    def _on_kernel_text(self, content, _buffers) -> None:
        """``{"type": "kernel", "text": "0 -1 0; -1 4 -1; 0 -1 0"}``; empty text goes back to the filter."""

        def use(text) -> bool:
            kernel = parse_kernel(str(text))
            unchanged = (kernel or []) == self.kernel
            self.kernel = kernel or []
            return unchanged

        if self._show_errors(use, content.get("text", "")):
            self._update()  # the same kernel again: clear the error a bad one left

    def _picture_pending(self) -> bool:
        return bool(self.playing) or super()._picture_pending()

    # -- saving ------------------------------------------------------------------------------------
    def picture(self) -> np.ndarray:
        """What the widget shows: the input with the kernel's window, the output map with the
        current pixel, ReLU and max-pooling over their numbered colour scale (zero marked), a
        caption saying what each panel is, and the step's arithmetic (uint8 RGB).

        >>> import cnn_widgets as cw
        >>> cw.ConvolutionExplainer(cw.load_model("fashion-cnn"), "bag").picture().shape[2]
        3
        """
        step = self.result
        shown = self._pictures(step)
        numbers = self.step
        row, col = step.position
        # The input: outline the kernel's window (in padded, enlarged pixels).
        input_scale = shown["input"].shape[0] // (step.inputs.shape[1] + step.padding[0] + step.padding[1])
        span = numbers["span"]
        top, left = step.window[0] + step.padding[0], step.window[1] + step.padding[2]
        panels = [pictures.outline(shown["input"], top * input_scale, left * input_scale, span[0] * input_scale, span[1] * input_scale)]
        scale = shown["output"].shape[0] // step.output_map.shape[0]
        panels.append(pictures.outline(shown["output"], row * scale, col * scale, scale, scale))
        panels.append(pictures.outline(shown["relu"], row * scale, col * scale, scale, scale))
        pooled = shown["pooled"]
        if numbers["pool"] is not None and step.pooled_map.shape[0]:
            pooled_scale = pooled.shape[0] // step.pooled_map.shape[0]
            p = numbers["pool"]
            pooled = pictures.outline(pooled, p["row"] * pooled_scale, p["col"] * pooled_scale, pooled_scale, pooled_scale)
        panels.append(pooled)
        size = max(max(p.shape[0] for p in panels), max(p.shape[1] for p in panels))
        tiles = np.full((len(panels), size, size, 3), 255, np.uint8)
        for index, panel in enumerate(panels):
            tiles[index, : panel.shape[0], : panel.shape[1]] = panel
        padding_label = "zeros" if step.padding_mode == "zeros" else step.padding_mode
        labels = [f"input, padding ({padding_label}) around", f"conv output [{row}, {col}]", "after ReLU", f"max-pool {step.pool}x{step.pool}"]
        top_row = render.grid(tiles, columns=len(panels), padding=GAP, labels=labels)
        # The three maps' one scale, numbered, under them (the live view's colour scale).
        limit = self._limit(step)
        maps_left, maps_width = GAP + size + GAP, 3 * size + 2 * GAP
        bar = render.colorbar(render.colorbar_scale(
            -limit, limit, "diverging",
            note="conv output, after ReLU and max-pool share this scale: ± the largest |value| of the conv output"),
            length=maps_width)
        bar_row = np.full((bar.shape[0], top_row.shape[1], 3), 255, np.uint8)
        bar_row[:, maps_left : maps_left + bar.shape[1]] = bar[:, : top_row.shape[1] - maps_left]
        channel_text = ", ".join(f"'{name}'" for name in self._channel_names(step))
        lines = [
            f"input: the image the kernel slides over (input channel{'s' if len(step.channels) > 1 else ''} {channel_text}), "
            f"its padding the blue-gray border, the blue box the kernel's window at this step.",
            f"conv output: the kernel's sum + bias at each position, the box at row {row}, column {col}; "
            "light gray with a dot: not computed yet.  after ReLU: negatives set to 0.  "
            f"max-pool: the largest value of each {step.pool}x{step.pool} block.",
        ]
        if step.kernel.shape[1] * step.kernel.shape[2] <= 9:  # small enough to write out
            matrix = lambda rows: "[" + "; ".join(" ".join(f"{v:.2f}" for v in row) for row in rows) + "]"
            for c in numbers["channels"][:3]:
                lines.append(f"input channel '{c['name']}': patch {matrix(c['patch'])} x kernel {matrix(c['kernel'])}, summed = {c['sum']:.3f}")
        channels = numbers["channels"]
        sums = " + ".join(f"{c['name']} {c['sum']:.3f}" if len(channels) > 1 else f"{c['sum']:.3f}" for c in channels)
        lines += [
            f"{numbers['source']} at row {row}, column {col}: {sums} + bias {step.bias:.3f} = {step.output:.3f}; "
            f"after ReLU: {step.relu_output:.3f}",
            self.units,
        ]
        return np.concatenate([top_row, bar_row, pictures.text_band(lines, top_row.shape[1])], axis=0)

    def save_png(self, path) -> None:
        """Write what the widget shows (see :meth:`picture`) to a PNG file.

        >>> import cnn_widgets as cw, tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     cw.ConvolutionExplainer(cw.load_model("fashion-cnn"), "bag").save_png(pathlib.Path(folder) / "conv.png")
        """
        render.save_png(self.picture(), path)
