"""Explorer: one model, one image, one selected layer and filter across tabs."""
from __future__ import annotations

import pytest
import traitlets

import cnn_widgets as cw


@pytest.fixture
def explorer(fashion):
    return cw.Explorer(fashion, cw.sample_image("sneaker"), dataset=None)


def test_dataset_examples_follow_the_selection(fashion):
    from cnn_widgets.models.datasets import load_fashion_mnist

    images, _ = load_fashion_mnist("test")
    explorer = cw.Explorer(fashion, "sneaker", dataset=images[:400])
    explorer.examples.wait()
    explorer.maps.layer = "block3_conv1"
    explorer.maps.filter_index = 12
    assert explorer.examples.caption.startswith("block3_conv1, filter 12: the 9 of 400 images")
    assert explorer.titles[-2:] == ["Dataset examples", "Unit"] and len(explorer.examples.examples_png) > 1000


def test_the_shipped_model_gets_the_fashion_mnist_test_set_by_default(fashion):
    explorer = cw.Explorer(fashion, "sneaker")
    explorer.examples.wait()
    assert len(explorer.examples._examples.pixels) == 10_000


def test_selection_is_shared_across_tabs(explorer):
    explorer.maps.layer = "block3_conv1"
    explorer.maps.filter_index = 12
    for view in (explorer.weights, explorer.maximization):
        assert (view.layer, view.filter_index) == ("block3_conv1", 12)
    assert explorer.dream.layer == "block3_conv1" and explorer.layer == "block3_conv1"
    explorer.maximization.filter_index = 3
    assert explorer.maps.filter_index == 3 and explorer.weights.filter_index == 3


def test_the_layer_strip_selects_the_layer_everywhere(explorer):
    explorer.layer = "block2_conv2"  # what a click on the strip (js/explorer.js) sets
    assert {v.layer for v in (explorer.weights, explorer.maps, explorer.maximization, explorer.dream)} == {"block2_conv2"}
    assert [layer["name"] for layer in explorer.layer_strip] == explorer.model.layer_names


def test_a_new_image_reaches_every_view_that_uses_one(explorer):
    explorer.maps.sample = "bag"
    assert explorer.dream.image_name.startswith("bag") and explorer.heatmaps.image_name.startswith("bag")


def test_a_bad_selection_raises_and_changes_nothing(explorer):
    with pytest.raises(traitlets.TraitError, match="valid: 0-31"):
        explorer.maps.filter_index = 40
    assert explorer.weights.filter_index == 0


def test_save_png_writes_the_selected_tab(explorer, tmp_path):
    explorer.selected_index = 1
    path = tmp_path / "tab.png"
    explorer.save_png(path)
    assert path.stat().st_size > 1000
