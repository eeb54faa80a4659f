"""Tensors to pictures: normalization, colormaps, grids, overlays and PNG/WebP/JPEG/GIF encoding.

Pure NumPy and Pillow; torch tensors are accepted as inputs but torch is never
needed. Nothing here knows about widgets or the engine.

>>> import numpy as np
>>> from cnn_widgets import render
>>> maps = np.random.default_rng(0).normal(size=(16, 8, 8))
>>> picture = render.grid(render.colorize(render.normalize(maps), "viridis"), scale=4)
>>> render.encode_png(picture)[:4]
b'\\x89PNG'
"""
from cnn_widgets.render.charts import line_chart
from cnn_widgets.render.colorbar import DIVERGING, class_map_scale, colorbar, colorbar_scale, readable_ticks, value_range, with_colorbar
from cnn_widgets.render.colormaps import COLORMAPS, colorize, colormap_lut
from cnn_widgets.render.encode import IMAGE_FORMATS, encode, encode_gif, encode_png, save_gif, save_png
from cnn_widgets.render.grids import enlarge, grid, grid_layout, side_by_side, tile_scale, upscale
from cnn_widgets.render.images import heatmap_overlay, overlay, to_uint8_image
from cnn_widgets.render.normalize import NORMALIZATIONS, normalize
from cnn_widgets.render.text import caption, format_weight, kernel_tables, stacked
from cnn_widgets.render.weights import WEIGHT_VIEWS, kernel_cells, shown_view, weight_range, weight_tiles

__all__ = [
    "class_map_scale",
    "COLORMAPS",
    "DIVERGING",
    "IMAGE_FORMATS",
    "NORMALIZATIONS",
    "WEIGHT_VIEWS",
    "colorbar",
    "colorbar_scale",
    "colorize",
    "colormap_lut",
    "encode",
    "enlarge",
    "encode_gif",
    "encode_png",
    "grid",
    "grid_layout",
    "heatmap_overlay",
    "normalize",
    "overlay",
    "save_gif",
    "save_png",
    "side_by_side",
    "tile_scale",
    "to_uint8_image",
    "upscale",
    "value_range",
    "weight_tiles",
    "with_colorbar",
    "weight_range",
    "kernel_cells",
    "shown_view",
    "caption",
    "format_weight",
    "kernel_tables",
    "stacked",
    "line_chart",
    "readable_ticks",
]
