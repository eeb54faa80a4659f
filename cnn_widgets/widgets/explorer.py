"""Explorer: every view of one model in tabs, sharing one image and one
selected layer and filter.

Pick filter 12 of block3_conv1 in the feature maps, switch to activation
maximization, and it is filter 12 of block3_conv1 there too. A strip of the
network's conv layers (name, channels, output size) sits above the tabs; each
tab starts with one line on what it shows. The "Unit" tab shows the selected
filter as OpenAI Microscope does: its weights, its feature visualization, its
dataset examples and its map for the current image, side by side.

An anywidget (``js/explorer.js``) whose synced ``views`` trait holds its views (each an
anywidget, sent as ipywidgets' ``IPY_MODEL_<id>`` references): its script draws the
strip and the tabs, gets each view's model with ``model.widget_manager.get_model(id)``
and draws the view with that view's own render function (from the same bundle). So it
needs nothing but anywidget's model API, which JupyterLab, Notebook 7 and marimo all
have (marimo has ``get_model`` but not ``create_view``, hence no ipywidgets Tab).
"""
from __future__ import annotations

import ipywidgets
import traitlets

from .._choices import check_keywords
from ..engine import METHODS
from ..frontend import bundled
from ..models import as_model
from .base import BaseWidget
from .deepdream import DeepDream
from .examples import DatasetExamples
from .feature_maps import FeatureMaps
from .filter_weights import FilterWeights
from .gradcam import GradCAM
from .maximization import ActivationMaximization
from .unit import UnitView

# Tab titles are short (cut at about 20 characters); the line under the tab bar says what each shows.
ABOUT = {
    "Filter weights": "What each filter of the layer multiplies its input by: the learned weights of its kernel.",
    "Feature maps": "Where each filter of the layer responds in the current image: one map per filter, bright where it fires.",
    "Maximization": "Images made to excite each filter most (activation maximization): what the filter looks for, with no dataset.",
    "DeepDream": "The current image changed to excite the layer (or one filter) more: what the layer sees, exaggerated.",
    "Heatmaps": "",  # says which layer it uses: set by _describe_heatmaps
    "Dataset examples": "The images of a dataset that excite the selected filter most, and where: what the filter responds to in real pictures.",
    "Unit": "The selected filter alone, as OpenAI Microscope shows a unit: its weights, its feature visualization, its dataset examples and its map for the current image.",
}


class Explorer(BaseWidget):
    """All views of a model in one widget, with a shared layer, filter and image.

    The views are attributes: ``weights``, ``maps``, ``maximization``, ``dream``,
    ``heatmaps`` (which follow the shared layer), ``examples`` (dataset examples, when
    there is a ``dataset``: a folder or a tensor of images, with ``labels`` for a tensor;
    "auto" is the Fashion-MNIST test set for the shipped model; or ``atlas``: a store
    written by ``cnn-widgets atlas`` for this model, read instead of scanning, which
    raises ValueError naming what differs when it is of another model, other weights or
    other layers) and ``unit`` (the selected filter's weights, feature visualization,
    dataset examples and map, side by side); ``layer`` and ``filter_index`` are the
    shared selection, ``selected_index`` the tab shown (of ``titles``), ``about`` each
    tab's line on what it shows.

    >>> import cnn_widgets as cw
    >>> explorer = cw.Explorer(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"), dataset=None)
    >>> explorer.maps.layer = "block3_conv1"; explorer.maps.filter_index = 12
    >>> explorer.maximization.layer, explorer.maximization.filter_index
    ('block3_conv1', 12)
    """

    _esm = bundled("explorer.js")
    _css = bundled("explorer.css")

    layer = traitlets.Unicode("").tag(sync=True)
    filter_index = traitlets.Int(0).tag(sync=True)
    heading = traitlets.Unicode("").tag(sync=True)  # the model's name, as text
    layer_strip = traitlets.List().tag(sync=True)  # the conv layers: name, channels, output shape, module path, kernel
    views = traitlets.List(traitlets.Instance(ipywidgets.Widget)).tag(sync=True, **ipywidgets.widget_serialization)
    view_kinds = traitlets.List().tag(sync=True)  # which render function draws each view (js/explorer.js)
    titles = traitlets.List().tag(sync=True)  # each tab's title
    about = traitlets.Dict().tag(sync=True)  # title -> one line on what the tab shows
    selected_index = traitlets.Int(0).tag(sync=True)  # the tab shown

    def __init__(self, model, image=None, layer=None, dataset="auto", labels=None, atlas=None, **kwargs) -> None:
        check_keywords(type(self), kwargs)
        model = as_model(model)
        start = model.layer(layer if layer is not None else 0).name
        self.model = model
        self.weights = FilterWeights(model, layer=start)
        self.maps = FeatureMaps(model, image, layer=start)
        self.maximization = ActivationMaximization(model, layer=start)
        self.dream = DeepDream(model, self.maps.image, layer=start)
        self.heatmaps = GradCAM(model, self.maps.image, layer=start)
        strip = [{"name": info.name, "label": f"{info.name} · {info.out_channels} · {'×'.join(map(str, info.output_shape[1:]))}",
                  "tooltip": f"{info.path}: {info.in_channels}->{info.out_channels} channels, {'x'.join(map(str, info.kernel_size))} kernel"}
                 for info in model.layers]
        views = [self.weights, self.maps, self.maximization, self.dream, self.heatmaps]
        kinds = ["filter_weights", "feature_maps", "maximization", "deepdream", "gradcam"]
        titles = ["Filter weights", "Feature maps", "Maximization", "DeepDream", "Heatmaps"]
        self.examples = None
        if atlas is not None:
            if not (isinstance(dataset, str) and dataset == "auto"):
                raise ValueError("give the Explorer either dataset= (images to scan) or atlas= (a store written by `cnn-widgets atlas`), not both")
            self.examples = DatasetExamples(model, atlas=atlas, layer=start)
        else:
            if isinstance(dataset, str) and dataset == "auto":
                dataset, labels = _default_dataset(model)
            if dataset is not None:
                self.examples = DatasetExamples(model, dataset, layer=start, labels=labels)
        if self.examples is not None:
            views.append(self.examples)
            kinds.append("examples")
            titles.append("Dataset examples")
        self.unit = UnitView(model, self.maps.image, layer=start, examples=self.examples, image_label=self.maps.image_name.split("#")[0] or "this image")
        views.append(self.unit)
        kinds.append("unit")
        titles.append("Unit")
        super().__init__(heading=f"{model.name} · conv layers (click to select)", layer_strip=strip, views=views, view_kinds=kinds,
                         titles=titles, about={title: ABOUT[title] for title in titles}, **kwargs)
        self.layer = start
        # One selection for every view: the links keep each pair in step both ways.
        self._links = []
        for view in (self.weights, self.maps, self.maximization, self.dream, self.examples, self.unit):
            if view is not None:
                self._links.append(traitlets.link((self, "layer"), (view, "layer")))
        for view in (self.weights, self.maps, self.maximization, self.examples, self.unit):
            if view is not None:
                self._links.append(traitlets.link((self, "filter_index"), (view, "filter_index")))
        # The heatmaps follow the shared layer; a layer picked there is shared when it is a conv
        # layer of the strip (not a conv's raw output or a block such as a ResNet's "layer4").
        self.observe(self._layer_to_heatmaps, names="layer")
        self.heatmaps.observe(self._layer_from_heatmaps, names="layer")
        self.heatmaps.observe(lambda _: self._describe_heatmaps(), names=["layer", "method"])
        self._describe_heatmaps()
        self.observe(self._on_tab, names="selected_index")
        self.maps.observe(self._share_image, names="image_name")

    def _layer_to_heatmaps(self, change) -> None:
        if self.heatmaps.layer != change["new"]:
            self.heatmaps.layer = change["new"]

    def _layer_from_heatmaps(self, change) -> None:
        if change["new"] in self.model.layer_names and change["new"] != self.layer:
            self.layer = change["new"]
        else:
            self._describe_heatmaps()

    def _describe_heatmaps(self) -> None:
        method = METHODS[self.heatmaps.method]
        what = "Where the model looks to decide on a class: a heatmap over the current image"
        last = self.model.last_stage.name
        if not method.uses_layer:
            note = f"{method.label} uses no layer (it follows the gradient down to the pixels), so the shared layer {self.layer} does not change it."
        elif self.heatmaps.layer == self.layer:
            note = f"{method.label} at the shared layer, {self.layer}" + (
                "." if self.layer == last else f" (the last conv layer, {last}, gives the coarsest and most class-specific map).")
        else:
            note = f"{method.label} at {self.heatmaps.layer}, chosen here: not the shared layer {self.layer}, which the other tabs show."
        self.about = {**self.about, "Heatmaps": f"{what}. {note}"}

    def _on_tab(self, _change) -> None:
        self.unit.active = self._selected() is self.unit

    @traitlets.validate("layer")
    def _check_layer(self, proposal):
        model = self._selection_model()
        if model is None:  # still being built
            return proposal["value"]
        try:
            return model.layer(proposal["value"]).name
        except (ValueError, TypeError) as error:
            raise traitlets.TraitError(str(error)) from None

    @traitlets.validate("filter_index")
    def _check_filter_index(self, proposal):
        model, value = self._selection_model(), proposal["value"]
        count = model.layer(self.layer).out_channels if model is not None and self.layer else 0
        if count and not 0 <= value < count:
            raise traitlets.TraitError(f"filter_index {value} is out of range for layer {self.layer} (valid: 0-{count - 1})")
        return value

    def _selection_model(self):
        weights = getattr(self, "weights", None)
        return weights.model if weights is not None else None

    def _share_image(self, _change) -> None:
        image, name = self.maps.image, self.maps.image_name.split("#")[0]
        for view in (self.dream, self.heatmaps):
            view._show_errors(view.set_image, image, name)
        self.unit.set_image(image, name or "this image")

    def refresh(self) -> None:
        """Every view draws again from the model as it is now (after an in-place change of
        its weights); see the views' own ``refresh``."""
        for view in self.views:
            view.refresh()

    @traitlets.validate("selected_index")
    def _check_selected_index(self, proposal):
        titles = getattr(self, "titles", None) or []
        if titles and not 0 <= proposal["value"] < len(titles):
            raise traitlets.TraitError(f"selected_index {proposal['value']} is out of range: the tabs are {titles} (valid: 0-{len(titles) - 1})")
        return proposal["value"]

    def _selected(self):
        return self.views[self.selected_index or 0]

    def picture(self):
        """What the selected tab shows (uint8 RGB)."""
        return self._selected().picture()

    def _picture_pending(self) -> bool:
        return self._selected()._picture_pending()

    def _picture_sources(self) -> list:
        return [self, *(source for view in self.views for source in view._picture_sources())]

    def _static_parts(self) -> list:
        """Each tab's view with its title, for :func:`cnn_widgets.save_html`."""
        return list(zip(self.titles, self.views))

    def save_png(self, path) -> None:
        """Write what the selected tab shows."""
        self._selected().save_png(path)


def _default_dataset(model):
    """The Fashion-MNIST test set and its labels for the shipped model, when Debian's package is installed."""
    if model.name != "fashion-cnn":
        return None, None
    from ..models.datasets import load_fashion_mnist

    try:
        return load_fashion_mnist("test")
    except FileNotFoundError:
        return None, None
