"""FilterWeights: the kernels of a conv layer, in color for the first layer,
per input channel or summarized for deeper ones, with a legend saying what each
view shows, a numbered colorbar and, for small kernels, the numbers themselves."""
from __future__ import annotations

import math

import torch
import traitlets

from .. import engine, render
from ..engine.activations import weights_version
from ..frontend import bundled
from .tile_viewer import TileViewer, enlarge

MAX_CHANNEL_TILES = 16_384  # a filters-by-channels grid beyond this is unreadable and slow


class FilterWeights(TileViewer):
    """The kernels of a conv layer; click a tile to see that filter per input channel.

    Views: ``"auto"`` (color for 3-channel inputs, else ``"summary"``), ``"color"``,
    ``"summary"`` (mean over input channels) and ``"channels"`` (one tile per
    filter and input channel). Signed weights use a diverging colormap centered at
    zero; the color view shows zero as gray. ``normalization``: ``"layer"`` (the
    default) puts every filter on one scale, so a weak filter looks faint; ``"tile"``
    stretches each filter to its own range. The colorbars give the numbers, and the
    enlarged view of a kernel of 5x5 or smaller writes out every weight.

    >>> import cnn_widgets as cw
    >>> widget = cw.FilterWeights(cw.load_model("fashion-cnn"), layer="block2_conv1")
    >>> widget.filter_count, widget.view, widget.normalization
    (64, 'auto', 'layer')
    >>> widget.tile_numbers[0]["label"]
    'mean over the 32 input channels'
    """

    _esm = bundled("filter_weights.js")
    _css = bundled("filter_weights.css")

    view = traitlets.Unicode("auto").tag(sync=True)
    view_options = traitlets.List(list(render.WEIGHT_VIEWS)).tag(sync=True)
    colormap = traitlets.Unicode("diverging").tag(sync=True)
    normalization = traitlets.Unicode("layer").tag(sync=True)
    normalization_options = traitlets.List(["layer", "tile"]).tag(sync=True)

    _GRID_TRAITS = ("layer", "normalization", "colormap", "view")

    def __init__(self, model, layer=None, **kwargs) -> None:
        super().__init__(model, layer=layer, **kwargs)

    @traitlets.validate("view")
    def _check_view(self, proposal):
        return self._check_choice("view", proposal["value"], self.view_options)

    def weights(self, layer=None) -> torch.Tensor:
        """The layer's kernels (out, in, kh, kw)."""
        return engine.filter_weights(self.model, layer or self.layer)

    def _shown_weights(self) -> torch.Tensor:
        """The current layer's kernels, copied once per layer and weights version (a filter
        change reads them several times); never handed to the user, who gets :meth:`weights`."""
        key = (self.layer, weights_version(self.model))
        if getattr(self, "_weights_key", None) != key:
            self._weights, self._weights_key = self.weights(), key
        return self._weights

    # -- what is shown, and on which scale ----------------------------------------------
    @property
    def shown_view(self) -> str:
        """The view drawn ("auto" resolved): "color", "summary" or "channels"."""
        return render.shown_view(self.view, self.model.layer(self.layer).in_channels)

    @property
    def _symmetric(self) -> bool:
        # Zero in the middle: the diverging colormap's white, the color view's gray.
        return self.shown_view == "color" or self.colormap in render.DIVERGING

    @property
    def _bar_colormap(self) -> str:
        return "gray" if self.shown_view == "color" else self.colormap

    def _layer_range(self) -> tuple[float, float]:
        key = (self.layer, self.shown_view, self._symmetric, weights_version(self.model))
        if getattr(self, "_range_key", None) != key:
            self._range, self._range_key = render.weight_range(self._shown_weights(), self.view, symmetric=self._symmetric), key
        return self._range

    def _filter_range(self, kernel) -> tuple[float, float]:
        """The range one filter is stretched to under the "tile" scale, as its grid tile is."""
        if self.shown_view == "color":
            low, high = float(kernel.min()), float(kernel.max())
            return (low, high) if high > low else (low, low + 1.0)
        return render.weight_range(kernel, "channels", symmetric=self._symmetric)

    def _what(self) -> str:
        """What a number on the colorbar is."""
        in_channels = self.model.layer(self.layer).in_channels
        if self.shown_view == "color":
            return "weight (a pixel's red, green, blue: its weights on the image's red, green, blue; gray = 0)"
        meaning = " · blue negative, white 0, red positive" if self.colormap in render.DIVERGING else ""
        if self.shown_view == "summary" and in_channels > 1:
            return f"mean weight over {in_channels} input channels{meaning}"
        return f"weight{meaning}"

    def _grid_caption(self) -> str:
        weights = self._shown_weights()
        count, in_channels, h, w = weights.shape
        if self.shown_view == "color":
            return (f"{count} filters, one tile each: its {h}x{w} kernel as an RGB picture, the weights on the image's "
                    "red, green and blue channels as the pixel's red, green and blue (gray = 0)")
        if self.shown_view == "channels":
            return (f"rows: the {count} filters (0-{count - 1}, top to bottom) · columns: their {in_channels} input "
                    f"channels (0-{in_channels - 1}, left to right) · each tile one {h}x{w} kernel")
        if in_channels == 1:
            return f"{count} filters, one tile each: its {h}x{w} kernel on the single input channel"
        return (f"{count} filters, one tile each: its {h}x{w} kernels averaged over its {in_channels} input channels "
                "(click a tile to see them all, or choose view: channels)")

    # -- drawing --------------------------------------------------------------------------
    def _columns(self) -> int | None:
        return self._shown_weights().shape[1] if self.shown_view == "channels" else None

    def _grid_tiles(self):
        weights = self._shown_weights()
        if self.shown_view == "channels" and weights.shape[0] * weights.shape[1] > MAX_CHANNEL_TILES:
            raise ValueError(
                f"the channels view of {self.layer} would need {weights.shape[0]} x {weights.shape[1]} = "
                f"{weights.shape[0] * weights.shape[1]:,} tiles (at most {MAX_CHANNEL_TILES:,}); "
                "use the summary view and click a filter to see its input channels"
            )
        if self.normalization == "layer":
            scale = {"normalization": "fixed", "vrange": self._layer_range()}
        else:
            scale = {"normalization": "tile"}
        tiles, _ = render.weight_tiles(weights, view=self.view, colormap=self.colormap, symmetric=self._symmetric, **scale)
        flat = weights.reshape(weights.shape[0], -1)
        per_filter = [
            f"filter {i} · mean {flat[i].mean():.3g} · min {flat[i].min():.3g} · max {flat[i].max():.3g} · norm {flat[i].norm():.3g}"
            for i in range(weights.shape[0])
        ]
        if len(tiles) == weights.shape[0]:
            return tiles, per_filter, list(range(weights.shape[0]))
        channels = weights.shape[1]  # the "channels" view: one tile per (filter, input channel)
        titles = [f"{per_filter[k // channels]} · input channel {k % channels}" for k in range(len(tiles))]
        return tiles, titles, [k // channels for k in range(len(tiles))]

    def _grid_colorbar(self) -> dict:
        if self.normalization == "layer":
            return render.colorbar_scale(*self._layer_range(), self._bar_colormap, mark_zero=self._symmetric,
                                         note=f"{self._what()} · one scale for all filters")
        # Each filter has its own numbers: the ends say which, and zero stays in the middle where symmetric.
        symmetric = self._symmetric and self.shown_view != "color"
        scale = render.colorbar_scale(-1.0 if symmetric else 0.0, 1.0, self._bar_colormap, mark_zero=symmetric,
                                      note=f"{self._what()} · each filter stretched to its own range")
        low, high = ("-max |weight|", "+max |weight|") if symmetric else ("filter min", "filter max")
        ends = [tick for tick in scale["ticks"] if tick["at"] in (0.0, 1.0)]
        ends[0]["label"], ends[-1]["label"] = low, high
        zero = [{"value": 0.0, "label": "0", "at": scale["zero"]}] if scale["zero"] is not None else []
        scale["ticks"] = sorted(ends + zero, key=lambda tick: tick["at"])
        return scale

    def _enlarged_range(self, filter_index: int) -> tuple[float, float]:
        if self.normalization == "layer":
            return self._layer_range()
        return self._filter_range(self._shown_weights()[filter_index : filter_index + 1])

    def _tile_colorbar(self, filter_index: int) -> dict:
        note = "same scale as the grid" if self.normalization == "layer" else "this filter's own range"
        return render.colorbar_scale(*self._enlarged_range(filter_index), self._bar_colormap, mark_zero=self._symmetric,
                                     note=f"{self._what()} · {note}")

    def _tile_numbers(self, filter_index: int) -> list:
        kernel = self._shown_weights()[filter_index]
        return render.kernel_cells(kernel, self.view, self._enlarged_range(filter_index), self.colormap)

    def _enlarged(self, filter_index: int):
        weights = self._shown_weights()
        kernel = weights[filter_index : filter_index + 1]
        in_channels = weights.shape[1]
        vrange = self._enlarged_range(filter_index)
        if self.shown_view == "color":
            tiles, _ = render.weight_tiles(kernel, view="color", normalization="fixed", vrange=vrange)
            picture = enlarge(tiles[0])
            detail = "its red, green and blue weights as one RGB picture (gray = 0) · RGB kernel"
        else:
            tiles, _ = render.weight_tiles(kernel, view="channels", normalization="fixed", vrange=vrange,
                                           colormap=self.colormap, symmetric=self._symmetric)
            columns = math.ceil(math.sqrt(in_channels))
            scale = max(1, 256 // (columns * max(kernel.shape[2:]) + columns))
            picture = enlarge(render.grid(tiles, columns=columns, padding=1, scale=scale))
            if in_channels == 1:
                detail = "1 input channel"
            else:
                detail = f"{in_channels} input channels, one tile each (input channel 0 top left, row by row)"
        h, w = kernel.shape[2:]
        caption = f"filter {filter_index} of {weights.shape[0]} · {h}x{w} kernel · {detail}"
        return picture, caption
