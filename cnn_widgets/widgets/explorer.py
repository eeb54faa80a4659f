"""Explorer: every view of one model in tabs, sharing one image and one
selected layer and filter.

Pick filter 12 of block3_conv1 in the feature maps, switch to activation
maximization, and it is filter 12 of block3_conv1 there too. A strip of the
network's conv layers (name, channels, output size) sits above the tabs.
"""
from __future__ import annotations

import html

import ipywidgets
import traitlets

from .._choices import check_keywords
from ..models import as_model
from .static import StaticPicture
from .deepdream import DeepDream
from .examples import DatasetExamples
from .feature_maps import FeatureMaps
from .filter_weights import FilterWeights
from .gradcam import GradCAM
from .maximization import ActivationMaximization

TABS = ("Filter weights", "Feature maps", "Maximization", "DeepDream", "Heatmaps")  # short: tab titles are cut at about 20 characters


class Explorer(StaticPicture, ipywidgets.VBox):
    """All views of a model in one widget, with a shared layer, filter and image.

    The views are attributes: ``weights``, ``maps``, ``maximization``, ``dream``,
    ``heatmaps`` and ``examples`` (dataset examples, when there is a ``dataset``: a
    folder or a tensor of images; "auto" is the Fashion-MNIST test set for the
    shipped model); ``layer`` and ``filter_index`` are the shared selection.

    >>> import cnn_widgets as cw
    >>> explorer = cw.Explorer(cw.load_model("fashion-cnn"), cw.sample_image("sneaker"), dataset=None)
    >>> explorer.maps.layer = "block3_conv1"; explorer.maps.filter_index = 12
    >>> explorer.maximization.layer, explorer.maximization.filter_index
    ('block3_conv1', 12)
    """

    layer = traitlets.Unicode("")
    filter_index = traitlets.Int(0)

    def __init__(self, model, image=None, layer=None, dataset="auto", **kwargs) -> None:
        check_keywords(type(self), kwargs)
        model = as_model(model)
        start = model.layer(layer if layer is not None else 0).name
        self.model = model
        self.weights = FilterWeights(model, layer=start)
        self.maps = FeatureMaps(model, image, layer=start)
        self.maximization = ActivationMaximization(model, layer=start)
        self.dream = DeepDream(model, self.maps.image, layer=start)
        self.heatmaps = GradCAM(model, self.maps.image)
        self.overview = ipywidgets.ToggleButtons(
            options=[(f"{info.name} · {info.out_channels} · {'×'.join(map(str, info.output_shape[1:]))}", info.name) for info in model.layers],
            tooltips=[f"{info.path}: {info.in_channels}->{info.out_channels} channels, {'x'.join(map(str, info.kernel_size))} kernel" for info in model.layers],
            value=start,
            style={"button_width": "auto"},
            layout=ipywidgets.Layout(margin="0 0 6px 0"),
        )
        views, titles = [self.weights, self.maps, self.maximization, self.dream, self.heatmaps], list(TABS)
        dataset = _default_dataset(model) if isinstance(dataset, str) and dataset == "auto" else dataset
        self.examples = None
        if dataset is not None:
            self.examples = DatasetExamples(model, dataset, layer=start)
            views.append(self.examples)
            titles.append("Dataset examples")
        self.tabs = ipywidgets.Tab(children=views, titles=titles)
        super().__init__(children=[ipywidgets.HTML(f"<b>{html.escape(model.name)}</b> · conv layers (click to select)"), self.overview, self.tabs], **kwargs)
        self.add_class("cw-explorer")  # its views report leaving the whole Explorer, not one tab
        self.layer = start
        # One selection for every view: the links keep each pair in step both ways.
        self._links = [traitlets.link((self, "layer"), (self.overview, "value"))]
        for view in (self.weights, self.maps, self.maximization, self.dream):
            self._links.append(traitlets.link((self, "layer"), (view, "layer")))
        for view in (self.weights, self.maps, self.maximization, self.examples):
            if view is not None:
                self._links.append(traitlets.link((self, "filter_index"), (view, "filter_index")))
        if self.examples is not None:
            self._links.append(traitlets.link((self, "layer"), (self.examples, "layer")))
        self.maps.observe(self._share_image, names="image_name")

    def _share_image(self, _change) -> None:
        image, name = self.maps.image, self.maps.image_name.split("#")[0]
        for view in (self.dream, self.heatmaps):
            view._show_errors(view.set_image, image, name)

    def refresh(self) -> None:
        """Every view draws again from the model as it is now (after an in-place change of
        its weights); see the views' own ``refresh``."""
        for view in self.tabs.children:
            view.refresh()

    def _selected(self):
        return self.tabs.children[self.tabs.selected_index or 0]

    def picture(self):
        """What the selected tab shows (uint8 RGB)."""
        return self._selected().picture()

    def _picture_pending(self) -> bool:
        return self._selected()._picture_pending()

    def _picture_sources(self) -> list:
        return [self, self.tabs, *(source for view in self.tabs.children for source in view._picture_sources())]

    def _static_parts(self) -> list:
        """Each tab's view with its title, for :func:`cnn_widgets.save_html`."""
        return [(self.tabs.get_title(i) or f"tab {i}", view) for i, view in enumerate(self.tabs.children)]

    def save_png(self, path) -> None:
        """Write what the selected tab shows."""
        self._selected().save_png(path)


def _default_dataset(model):
    """The Fashion-MNIST test set for the shipped model, when Debian's package is installed."""
    if model.name != "fashion-cnn":
        return None
    from ..models.datasets import load_fashion_mnist

    try:
        return load_fashion_mnist("test")[0]
    except FileNotFoundError:
        return None
