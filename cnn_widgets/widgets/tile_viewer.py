"""The grid-of-tiles view that FilterWeights and FeatureMaps share: a layer
dropdown, a filter slider, a grid where every tile is a filter, an enlarged
view of the selected one, and normalization and colormap pickers.

Subclasses define ``_grid_tiles()`` -> (tiles (N, h, w, 3) uint8, tooltip per
tile, filter index per tile) and ``_enlarged(filter_index)`` -> (picture,
caption), and may define ``_grid_colorbar()`` and ``_tile_colorbar(filter_index)``
-> a :func:`cnn_widgets.render.colorbar_scale` dict (``{}`` for none), shown under
the grid and the enlarged view with their numbers, ``_grid_caption()`` -> a line
saying what the grid's tiles, rows and columns are, and ``_tile_numbers(filter_index)``
-> :func:`cnn_widgets.render.kernel_cells` tables written out beside the enlarged
view (``[]`` for none); this class keeps the traits in sync, caches what was
drawn, and turns failures into the widget's error line.
"""
from __future__ import annotations

import numpy as np
import traitlets

from .. import render
from .._bounded import BoundedCache
from .._choices import invalid_choice
from ..engine.activations import weights_version
from ..models import Model, as_model
from .base import BaseWidget, LayerChoice
from .pictures import Picture, encode_picture

GRID_WIDTH = 720  # pixels the grid aims to fill, whatever the number of tiles
MIN_TILE, MAX_TILE = 12, 96
ENLARGED = 256
GRID_CACHE_BYTES = 64_000_000  # drawn grids kept per widget, for going back to a layer or setting
LABEL_MIN_WIDTH = 28  # narrower tiles go without a printed filter number (the tooltip has it)  # the enlarged view is at least this many pixels on its longer side


class TileViewer(LayerChoice, BaseWidget):
    layer = traitlets.Unicode("").tag(sync=True)
    layer_options = traitlets.List().tag(sync=True)
    filter_index = traitlets.Int(0).tag(sync=True)
    filter_count = traitlets.Int(0).tag(sync=True)
    normalization = traitlets.Unicode("tile").tag(sync=True)
    normalization_options = traitlets.List(list(render.NORMALIZATIONS[:2])).tag(sync=True)
    colormap = traitlets.Unicode("viridis").tag(sync=True)
    colormap_options = traitlets.List(list(render.COLORMAPS)).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    grid_png = Picture().tag(sync=True)
    grid_layout = traitlets.Dict().tag(sync=True)
    tile_order = traitlets.List().tag(sync=True)  # filter index at each grid position
    tile_titles = traitlets.List().tag(sync=True)  # tooltip text at each grid position
    tile_png = Picture().tag(sync=True)
    tile_caption = traitlets.Unicode("").tag(sync=True)
    grid_colorbar = traitlets.Dict().tag(sync=True)  # render.colorbar_scale of the grid, {} for none
    tile_colorbar = traitlets.Dict().tag(sync=True)  # ... and of the enlarged view
    grid_caption = traitlets.Unicode("").tag(sync=True)  # what the tiles, rows and columns are
    tile_numbers = traitlets.List().tag(sync=True)  # render.kernel_cells of the enlarged filter, [] for none

    _GRID_TRAITS = ("layer", "normalization", "colormap")

    def __init__(self, model, layer=None, **kwargs) -> None:
        self.model: Model = as_model(model)
        info = self.model.layer(layer if layer is not None else 0)
        self._grid_cache = BoundedCache(max_bytes=GRID_CACHE_BYTES)
        super().__init__(layer=info.name, layer_options=self._layer_options(), filter_count=info.out_channels, **kwargs)
        self._prepare()
        self._redraw_grid()
        self.observe(self._on_grid_change, names=list(self._GRID_TRAITS))
        self.observe(self._on_filter_change, names=["filter_index"])

    # -- validation: bad values from Python raise with the valid choices ----------
    @traitlets.validate("filter_index")
    def _check_filter(self, proposal):
        value = proposal["value"]
        count = self.model.layer(self.layer).out_channels if self.layer else 0
        if count and not 0 <= value < count:
            raise traitlets.TraitError(f"filter_index {value} is out of range for layer {self.layer} (valid: 0-{count - 1})")
        return value

    @traitlets.validate("normalization")
    def _check_normalization(self, proposal):
        return self._check_choice("normalization", proposal["value"], self.normalization_options)

    @traitlets.validate("colormap")
    def _check_colormap(self, proposal):
        return self._check_choice("colormap", proposal["value"], self.colormap_options)

    def _prepare(self) -> None:
        """Load what the first drawing needs (subclasses: an image, say)."""

    # -- drawing --------------------------------------------------------------------
    def _on_grid_change(self, change) -> None:
        if change["name"] == "layer":
            count = self.model.layer(self.layer).out_channels
            self.filter_count = count
            if self.filter_index >= count:
                self.filter_index = count - 1
        self._redraw_grid()

    def _on_filter_change(self, _change) -> None:
        self._show_errors(self._draw_enlarged)

    def _grid_key(self) -> tuple:
        # The weights' version: a grid drawn before training or an in-place change is not reused.
        return (*(getattr(self, name) for name in self._GRID_TRAITS), weights_version(self.model))

    def refresh(self) -> None:
        """Draw again from the model as it is now, after its weights changed (a
        training step, ``conv.weight.mul_(-1)``, a loaded state_dict).

        >>> import cnn_widgets as cw, torch
        >>> model = cw.load_model("fashion-cnn")
        >>> view = cw.FilterWeights(model, layer="block1_conv1")
        >>> before = view.grid_png
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        >>> view.refresh(); view.grid_png != before
        True
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        """
        self._redraw_grid()

    def _redraw_grid(self) -> None:
        self._show_errors(self._draw_grid)

    def _draw_grid(self) -> None:
        key = self._grid_key()
        drawn = self._grid_cache.get(key)
        if drawn is None:
            tiles, titles, order = self._grid_tiles()
            picture, layout = self._stitch(tiles, self._columns(), [f"#{f}" for f in order])
            drawn = self._grid_cache[key] = (encode_picture(picture), layout, titles, order, picture, self._grid_colorbar(),
                                             self._grid_caption())
        png, layout, titles, order, self._grid_picture, scale, grid_caption = drawn
        self.title = self._title()
        with self.hold_sync():
            self.grid_png, self.grid_layout, self.tile_titles, self.tile_order = png, layout, titles, order
            self.grid_colorbar, self.grid_caption = scale, grid_caption
            self._draw_enlarged()

    def _draw_enlarged(self) -> None:
        picture, caption = self._enlarged(self.filter_index)
        self._enlarged_picture = picture
        with self.hold_sync():  # the picture, its caption, colorbar and numbers arrive together
            self.tile_png = picture
            self.tile_caption = caption
            self.tile_colorbar = self._tile_colorbar(self.filter_index)
            self.tile_numbers = self._tile_numbers(self.filter_index)

    def _grid_colorbar(self) -> dict:
        """The grid's colorbar scale ({} for none)."""
        return {}

    def _grid_caption(self) -> str:
        """A line saying what the grid's tiles, rows and columns are ("" for none)."""
        return ""

    def _tile_numbers(self, filter_index: int) -> list:
        """The enlarged filter's numbers as render.kernel_cells tables ([] for none)."""
        return []

    def _tile_colorbar(self, filter_index: int) -> dict:
        """The enlarged view's colorbar scale ({} for none)."""
        return {}

    def _columns(self) -> int | None:
        """Columns of the grid; None for a square-ish grid."""
        return None

    @staticmethod
    def _stitch(tiles: np.ndarray, columns: int | None = None, labels: list[str] | None = None) -> tuple[np.ndarray, dict]:
        """Tiles (N, h, w, 3) to a grid about GRID_WIDTH wide; tiles are resized to fit.
        Tiles wide enough to read get their filter number under them."""
        count = tiles.shape[0]
        columns = columns or int(np.ceil(np.sqrt(count)))
        target = _tile_side(columns)
        tiles = fit_tiles(tiles, columns)
        scale = max(1, target // max(tiles.shape[1:3]))  # 1 for tiles fit_tiles shrank
        if labels is not None and (count > 256 or tiles.shape[2] * scale < LABEL_MIN_WIDTH):
            labels = None
        layout = render.grid_layout(count, tiles.shape[1], tiles.shape[2], columns=columns, padding=1, scale=scale, labels=labels is not None)
        return render.grid(tiles, columns=columns, padding=1, scale=scale, labels=labels), layout

    def _title(self) -> str:
        info = self.model.layer(self.layer)
        path = f" ({info.path})" if info.path != info.name else ""
        return f"{self.model.label} · {info.name}{path} · {info.out_channels} filters"

    # -- saving -------------------------------------------------------------------------
    def picture(self) -> np.ndarray:
        """What the widget shows, saying what the live view says (uint8 RGB): the title
        over all; the grid's caption, the grid and its colorbar; beside it the enlarged
        tile, its colorbar, its caption and, for a kernel of 5x5 or smaller, its numbers."""
        grid, tile = self._grid_picture, self._enlarged_picture
        grid_column = render.stacked([
            render.caption(self.grid_caption, max(grid.shape[1], 320)),
            self._with_colorbar(grid, self.grid_colorbar),
        ])
        width = max(tile.shape[1], 320)
        tile_column = render.stacked([
            self._with_colorbar(tile, self.tile_colorbar, length=width),
            render.caption(self.tile_caption, width),
            render.kernel_tables(self.tile_numbers, width),
        ])
        views = render.side_by_side([grid_column, tile_column], gap=16)
        return render.stacked([render.caption(self.title, views.shape[1], ink=(0, 0, 0)), views], gap=8)

    def _with_colorbar(self, picture: np.ndarray, scale: dict, length: int | None = None) -> np.ndarray:
        if not scale:
            return picture
        bar = render.colorbar(scale, length=length or max(160, min(picture.shape[1], 320)))
        width = max(picture.shape[1], bar.shape[1])
        canvas = np.full((picture.shape[0] + 6 + bar.shape[0], width, 3), 255, np.uint8)
        canvas[: picture.shape[0], : picture.shape[1]] = picture
        canvas[picture.shape[0] + 6 :, : bar.shape[1]] = bar
        return canvas

    def save_png(self, path) -> None:
        """Write what the widget shows (grid and enlarged tile) to a PNG file."""
        render.save_png(self.picture(), path)


def _tile_side(columns: int) -> int:
    """The longer side, in pixels, of a tile in a grid of ``columns`` about GRID_WIDTH wide."""
    return int(np.clip(GRID_WIDTH // columns - 1, MIN_TILE, MAX_TILE))


def fit_tiles(tiles: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tiles (N, h, w, 3) no larger than a grid of ``columns`` (default: square-ish) draws them:
    area-downscaled when larger, as they are otherwise. Stitching them gives the same grid.

    >>> fit_tiles(np.zeros((4, 224, 224, 3), np.uint8)).shape, fit_tiles(np.zeros((4, 28, 28, 3), np.uint8)).shape
    ((4, 96, 96, 3), (4, 28, 28, 3))
    """
    target = _tile_side(columns or int(np.ceil(np.sqrt(tiles.shape[0]))))
    return shrink(tiles, target) if max(tiles.shape[1:3]) > target else tiles


def shrink(tiles: np.ndarray, target: int) -> np.ndarray:
    """Area-downscale uint8 tiles (N, h, w, 3) so the longer side is ``target``."""
    from PIL import Image

    count, height, width = tiles.shape[:3]
    factor = target / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.stack([np.asarray(Image.fromarray(tile).resize(size, Image.BOX)) for tile in tiles])


def enlarge(picture: np.ndarray, target: int = ENLARGED) -> np.ndarray:
    """Nearest-neighbour upscale so a tiny map or kernel is big enough to read (:func:`render.enlarge`)."""
    return render.enlarge(picture, target)
