"""FeatureMaps: every channel of a conv layer for one image, from one forward pass."""
from __future__ import annotations

import numpy as np
import traitlets

from .. import engine, render
from ..engine.activations import STAGES, STATISTICS, layer_stage, weights_version
from ..frontend import bundled
from .image_input import ImageInput
from .pictures import Picture
from .tile_viewer import TileViewer, enlarge

SORT_CHOICES = ("index",) + STATISTICS


class FeatureMaps(ImageInput, TileViewer):
    """Activations of every filter of a layer for an image; click a tile to enlarge it.

    ``image`` is anything :func:`cnn_widgets.load_image` takes, or a sample name;
    by default a shipped sample that suits the model. ``stage``: ``"activation"``
    (the default) shows what the layer passes on, after the activation that follows
    the conv ("after ReLU"); ``"conv"`` the conv's own output ("before ReLU"), as in
    :func:`cnn_widgets.engine.feature_maps`. ``normalization``: ``"layer"`` (the
    default) puts the whole layer on one scale, so a weak or dead map looks dark;
    ``"tile"`` stretches every map to its own range. Colorbars give the numbers.

    >>> import cnn_widgets as cw
    >>> widget = cw.FeatureMaps(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"), layer="block1_conv2")
    >>> widget.filter_count, len(widget.tile_order)
    (32, 32)
    """

    _esm = bundled("feature_maps.js")
    _css = bundled("feature_maps.css")

    stage = traitlets.Unicode("activation").tag(sync=True)
    stage_options = traitlets.List().tag(sync=True)  # [{"name": "activation", "label": "after ReLU"}, ...] for the layer
    normalization = traitlets.Unicode("layer").tag(sync=True)
    normalization_options = traitlets.List(["layer", "tile"]).tag(sync=True)
    sort_by = traitlets.Unicode("index").tag(sync=True)
    sort_options = traitlets.List(list(SORT_CHOICES)).tag(sync=True)
    sample = traitlets.Unicode("").tag(sync=True)  # the shipped sample shown, "" for the user's own image
    sample_options = traitlets.List().tag(sync=True)  # [{"name", "label"}]: samples like the model's pictures first
    image_png = Picture().tag(sync=True)
    image_name = traitlets.Unicode("").tag(sync=True)
    input_caption = traitlets.Unicode("").tag(sync=True)  # the input's size and channels, and where it came from
    expects = traitlets.Unicode("").tag(sync=True)  # what the model takes, in words (Model.expects)

    _GRID_TRAITS = ("layer", "stage", "normalization", "colormap", "sort_by", "image_name")

    @traitlets.validate("sort_by")
    def _check_sort_by(self, proposal):
        return self._check_choice("sort_by", proposal["value"], self.sort_options)

    def __init__(self, model, image=None, layer=None, **kwargs) -> None:
        if kwargs.get("stage", "activation") not in STAGES:
            raise ValueError(f"unknown stage {kwargs['stage']!r}; valid choices: {', '.join(STAGES)}")
        self._picture = None
        self._inputs = None
        self._image_version = 0
        self._start_image = image
        super().__init__(model, layer=layer, **kwargs)
        self.sample_options = self._sample_options()
        self.expects = f"{self.model.name} expects {self.model.expects}"
        self.observe(self._on_sample, names=["sample"])
        self.observe(self._sync_stage_options, names=["layer"])
        self._sync_stage_options()

    # -- the image ------------------------------------------------------------------
    @property
    def image(self):
        """The PIL image being looked at."""
        self._ensure_image()
        return self._picture

    def set_image(self, image, name: str | None = None) -> None:
        """Look at another image (anything :func:`cnn_widgets.load_image` takes, or a sample name).

        The view shows the input the model receives (resized, in its channels), with its
        size and what the model expects.

        >>> import cnn_widgets as cw
        >>> widget = cw.FeatureMaps(cw.load_model("fashion-cnn"), cw.sample_image("ankle_boot"))
        >>> widget.image_name.split("#")[0], widget.input_caption
        ('ankle_boot', 'what the model receives: 28x28 gray, from the 28x28 gray picture ankle_boot')
        """
        picture, name = self._open_image(image, name)
        inputs = self.model.preprocess(picture)  # fails here, before anything shown changes
        self._picture, self._inputs = picture, inputs
        shown = render.to_uint8_image(self.model.deprocess(inputs)[0].cpu())
        channels, height, width = inputs.shape[1:]
        kind = {1: "gray", 3: "RGB"}.get(channels, f"{channels} channels")
        own = {"L": "gray", "RGB": "RGB", "RGBA": "RGBA"}.get(picture.mode, picture.mode)
        with self.hold_sync():
            self.image_png = enlarge(shown, 128)
            label = self._name_image(name)
            self.input_caption = (f"what the model receives: {width}x{height} {kind}, from the "
                                  f"{picture.width}x{picture.height} {own} picture {label}")

    def _prepare(self) -> None:
        self._ensure_image()

    def _ensure_image(self) -> None:
        if self._inputs is None:
            image = self._start_image
            if image is None:
                image = self._default_sample()
            self.set_image(image)

    @traitlets.validate("stage")
    def _check_stage(self, proposal):
        return self._check_choice("stage", proposal["value"], list(STAGES))

    def stage_label(self, layer=None, stage=None) -> str:
        """What the maps of ``layer`` show at ``stage`` (the current ones by default), in
        words: "after ReLU", "before ReLU (conv output)", or "conv output" when no
        activation follows the conv."""
        output = layer_stage(self.model.layer(layer or self.layer), stage or self.stage)
        if output.after:
            return f"after {output.after}"
        if output.before:
            return f"before {output.before} (conv output)"
        return "conv output (no activation follows it)"

    def _sync_stage_options(self, _change=None) -> None:
        # No choice to offer where no activation follows the conv (the control hides).
        follows = self.model.layer(self.layer).activation is not None
        self.stage_options = [{"name": stage, "label": self.stage_label(stage=stage)} for stage in STAGES] if follows else []

    # -- maps -------------------------------------------------------------------------
    def maps(self, layer=None):
        """The layer's feature maps (C, H, W) for the current image at the current
        ``stage`` (cached; one forward pass for all layers)."""
        self._ensure_image()
        name = self.model.layer(layer or self.layer).name
        key = (self.image_name, weights_version(self.model), self.stage)
        if getattr(self, "_maps_key", None) != key:  # skips hashing the input on every filter change
            self._all_maps, self._maps_key = engine.feature_maps(self.model, self._inputs, layers=None, stage=self.stage), key
        return self._all_maps[name]

    @property
    def _symmetric(self) -> bool:
        return self.colormap in render.DIVERGING

    def _normalized(self, maps) -> np.ndarray:
        """Display values of the whole layer, kept until the layer, image or mode changes."""
        key = (self.layer, self.normalization, self._symmetric, self._maps_key)  # _maps_key: image, weights, stage
        if getattr(self, "_values_key", None) != key:
            if self.normalization == "layer":
                self._range = render.value_range(maps, symmetric=self._symmetric)
                values = render.normalize(maps, mode="fixed", vrange=self._range)
            else:
                values = render.normalize(maps, mode=self.normalization, symmetric=self._symmetric)
            self._values, self._values_key = values, key
        return self._values

    def _grid_colorbar(self) -> dict:
        self._normalized(self.maps())
        if self.normalization == "layer":
            return render.colorbar_scale(*self._range, self.colormap, note=f"{self.stage_label()} · one scale for the whole layer")
        scale = render.colorbar_scale(-1.0 if self._symmetric else 0.0, 1.0, self.colormap,
                                      note=f"{self.stage_label()} · each tile stretched to its own range")
        low, high = ("-max |value|", "+max |value|") if self._symmetric else ("tile min", "tile max")
        ends = [tick for tick in scale["ticks"] if tick["at"] in (0.0, 1.0)]
        ends[0]["label"], ends[-1]["label"] = low, high
        scale["ticks"] = ends + ([{"value": 0.0, "label": "0", "at": scale["zero"]}] if scale["zero"] is not None else [])
        return scale

    def _tile_colorbar(self, filter_index: int) -> dict:
        maps = self.maps()
        self._normalized(maps)
        if self.normalization == "layer":
            low, high, note = *self._range, "same scale as the grid"
        else:
            tile = maps[filter_index]
            low, high = render.value_range(tile, symmetric=self._symmetric) if self._symmetric else (float(tile.min()), float(tile.max()))
            if high <= low:
                high = low + 1.0
            note = "this map's own range"
        return render.colorbar_scale(low, high, self.colormap, note=f"{self.stage_label()} · {note}")

    def _stats(self, maps) -> dict:
        """Per-channel statistics of the current layer, computed once per layer, stage and image."""
        key = (self.layer, self._maps_key)
        if getattr(self, "_stats_key", None) != key:
            self._layer_stats, self._stats_key = {k: v.tolist() for k, v in engine.channel_stats(maps).items()}, key
        return self._layer_stats

    def _order(self, maps) -> list[int]:
        if self.sort_by == "index":
            return list(range(maps.shape[0]))
        stats = self._stats(maps)[self.sort_by]
        return sorted(range(maps.shape[0]), key=lambda i: -stats[i])

    def _grid_tiles(self):
        maps = self.maps()
        order = self._order(maps)
        values = self._normalized(maps)
        tiles = render.colorize(values[order], self.colormap)
        stats = self._stats(maps)
        titles = [
            f"filter {i} · mean {stats['mean'][i]:.3g} · max {stats['max'][i]:.3g} · {100 * stats['positive'][i]:.0f}% positive"
            for i in order
        ]
        return tiles, titles, order

    def _enlarged(self, filter_index: int):
        maps = self.maps()
        values = self._normalized(maps)
        picture = enlarge(render.colorize(values[filter_index], self.colormap))
        stats = self._stats(maps)
        caption = (
            f"filter {filter_index} of {maps.shape[0]} · {self.stage_label()} · {maps.shape[1]}x{maps.shape[2]} · mean {stats['mean'][filter_index]:.3g} · "
            f"max {stats['max'][filter_index]:.3g} · {100 * stats['positive'][filter_index]:.0f}% positive"
        )
        return picture, caption

    def _title(self) -> str:
        return super()._title() + f" · {self.stage_label()} · {self.image_name.split('#')[0]}"
