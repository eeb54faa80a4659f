"""FilterWeights: the kernels of a conv layer, in color for the first layer,
per input channel or summarized for deeper ones."""
from __future__ import annotations

import numpy as np
import torch
import traitlets

from .. import engine, render
from ..frontend import bundled
from .tile_viewer import TileViewer, enlarge

MAX_CHANNEL_TILES = 16_384  # a filters-by-channels grid beyond this is unreadable and slow


class FilterWeights(TileViewer):
    """The kernels of a conv layer; click a tile to see that filter per input channel.

    Views: ``"auto"`` (color for 3-channel inputs, else ``"summary"``), ``"color"``,
    ``"summary"`` (mean over input channels) and ``"channels"`` (one tile per
    filter and input channel). Signed weights use a diverging colormap centered at zero.

    >>> import cnn_widgets as cw
    >>> widget = cw.FilterWeights(cw.load_model("fashion-cnn"), layer="block2_conv1")
    >>> widget.filter_count, widget.view
    (64, 'auto')
    """

    _esm = bundled("filter_weights.js")
    _css = bundled("filter_weights.css")

    view = traitlets.Unicode("auto").tag(sync=True)
    view_options = traitlets.List(list(render.WEIGHT_VIEWS)).tag(sync=True)
    colormap = traitlets.Unicode("diverging").tag(sync=True)

    _GRID_TRAITS = ("layer", "normalization", "colormap", "view")

    def __init__(self, model, layer=None, **kwargs) -> None:
        super().__init__(model, layer=layer, **kwargs)

    @traitlets.validate("view")
    def _check_view(self, proposal):
        return self._check_choice("view", proposal["value"], self.view_options)

    def weights(self, layer=None) -> torch.Tensor:
        """The layer's kernels (out, in, kh, kw)."""
        return engine.filter_weights(self.model, layer or self.layer)

    def _columns(self) -> int | None:
        return self.weights().shape[1] if self.view == "channels" else None

    def _grid_tiles(self):
        weights = self.weights()
        if self.view == "channels" and weights.shape[0] * weights.shape[1] > MAX_CHANNEL_TILES:
            raise ValueError(
                f"the channels view of {self.layer} would need {weights.shape[0]} x {weights.shape[1]} = "
                f"{weights.shape[0] * weights.shape[1]:,} tiles (at most {MAX_CHANNEL_TILES:,}); "
                "use the summary view and click a filter to see its input channels"
            )
        tiles, labels = render.weight_tiles(weights, view=self.view, normalization=self.normalization, colormap=self.colormap)
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

    def _enlarged(self, filter_index: int):
        weights = self.weights()
        kernel = weights[filter_index : filter_index + 1]
        in_channels = weights.shape[1]
        if self.view in ("auto", "color") and in_channels == 3:
            tiles, _ = render.weight_tiles(kernel, view="color", normalization="tile")
            picture = enlarge(tiles[0])
            detail = "RGB kernel"
        else:
            per_channel = kernel.reshape(in_channels, 1, *kernel.shape[2:]).transpose(0, 1)
            tiles, _ = render.weight_tiles(per_channel, view="channels", normalization="layer", colormap=self.colormap)
            columns = int(np.ceil(np.sqrt(in_channels)))
            scale = max(1, 256 // (columns * max(kernel.shape[2:]) + columns))
            picture = enlarge(render.grid(tiles, columns=columns, padding=1, scale=scale))
            detail = f"{in_channels} input channels, shared scale, zero = white"
        h, w = kernel.shape[2:]
        caption = f"filter {filter_index} of {weights.shape[0]} · {h}x{w} kernel · {detail}"
        return picture, caption
