"""The Explorer on an atlas store (issue 18) and what its tabs tell a student (issue 12 item 7):
the store's examples shown as stored, a store of another model refused with what differs,
tab lines, the heatmaps following the shared layer, dataset-example controls and labels,
and the unit view's four pictures."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import cnn_widgets as cw
from cnn_widgets.atlas import open_atlas
from cnn_widgets.cli import main
from cnn_widgets.models.datasets import load_fashion_mnist

COUNT = 48
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """``cnn-widgets atlas`` over 48 Fashion-MNIST images in class folders: two layers, k=4,
    with feature visualizations (few steps: this is about storing and showing them)."""
    root = tmp_path_factory.mktemp("atlas")
    images, labels = load_fashion_mnist("test")
    classes = cw.load_model("fashion-cnn").classes
    for i in range(COUNT):
        folder = root / "images" / classes[int(labels[i])].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i].numpy()).save(folder / f"{i:03d}.png")
    assert main(["atlas", "fashion-cnn", "--data", str(root / "images"), "--out", str(root / "store"), "--layers", "block1_conv2,block2_conv1",
                 "--k", "4", "--batch-size", "16", "--workers", "1", "--device", "cpu", "--no-progress",
                 "--visualizations", "--visualization-steps", "24"]) == 0
    return root / "store"


def test_the_explorer_shows_the_stores_examples_without_scanning(fashion, store):
    explorer = cw.Explorer(fashion, "sneaker", atlas=store)
    examples = explorer.examples
    assert examples._examples is None and not examples._worker.busy, "nothing is scanned"
    explorer.layer, explorer.filter_index = "block2_conv1", 9
    stored = open_atlas(store).examples("block2_conv1", 9)
    assert examples.examples("block2_conv1", 9) == stored
    assert "the 4 of 48 images that excite it most, from the atlas" in examples.caption
    # The list names each stored image, its true label, the model's prediction and the value, as for a
    # scanned dataset; the picture holds the stored crops.
    for example in stored:
        predicted, probability = example["predicted"]
        assert any(line.startswith(f"image #{example['image']} ({example['id']}) · true: {example['label']} · model: {predicted} {probability:.0%} · "
                                   f"response {example['value']:.3g}") for line in examples.example_lines)
    strip = np.asarray(open_atlas(store).crops("block2_conv1", 9).convert("RGB"))
    picture = np.asarray(Image.open(__import__("io").BytesIO(examples.examples_png)).convert("RGB"))
    size = strip.shape[0]
    scale = 112 // size
    first = strip[:, :size].repeat(scale, axis=0).repeat(scale, axis=1)
    assert np.array_equal(picture[2 : 2 + size * scale, 2 : 2 + size * scale], first), "the first tile is the store's first crop, enlarged"


def test_a_layer_missing_from_the_store_is_said_so(fashion, store):
    explorer = cw.Explorer(fashion, "sneaker", atlas=store, layer="block3_conv1")
    # (the view's own layer menu sets its layer trait, as here)
    assert "block3_conv1 is not in this atlas; its layers: block1_conv2, block2_conv1" in explorer.examples.caption
    assert explorer.examples.examples_png == b"", "no picture"
    explorer.examples.layer = "block1_conv2"
    assert explorer.layer == "block1_conv2" and explorer.examples.examples_png


def test_a_store_of_other_weights_a_model_or_layers_is_refused_naming_what_differs(fashion, store, tmp_path):
    with pytest.raises(ValueError, match=r"does not match this model: weights: the atlas has fashion-cnn with weights 'shipped'.*this model has weights 'none'"):
        cw.Explorer(cw.load_model("fashion-cnn", weights=None, device="cpu"), "sneaker", atlas=store)
    with pytest.raises(ValueError, match=r"model: the atlas is of 'fashion-cnn', this model is 'resnet18'.*input size"):
        cw.DatasetExamples(cw.load_model("resnet18", weights=None, device="cpu"), atlas=store)
    edited = tmp_path / "edited"
    shutil.copytree(store, edited)
    manifest = json.loads((edited / "atlas.json").read_text())
    manifest["layers"][1]["units"] = 32
    (edited / "atlas.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"layer 'block2_conv1': the atlas has module features.5, 32 units.*this model has module features.5, 64 units"):
        cw.Explorer(fashion, "sneaker", atlas=edited)
    with pytest.raises(ValueError, match="either dataset= .* or atlas="):
        cw.Explorer(fashion, "sneaker", atlas=store, dataset=None)


def test_the_unit_view_shows_the_stores_feature_visualization(fashion, store):
    explorer = cw.Explorer(fashion, "sneaker", atlas=store, layer="block2_conv1")
    explorer.filter_index = 5
    explorer.selected_index = explorer.titles.index("Unit")
    assert explorer.unit.active
    stored = np.asarray(open_atlas(store).visualization("block2_conv1", 5).convert("RGB"))
    assert "from the atlas" in explorer.unit.captions[1]
    shown = explorer.unit._shown[1]
    scale = shown.shape[0] // stored.shape[0]
    assert np.array_equal(shown, stored.repeat(scale, 0).repeat(scale, 1))
    # The stored picture is what engine.maximize makes of that unit (WebP at quality 90).
    made = cw.engine.maximize(fashion, "block2_conv1", [5], steps=24, seed=0, param="fourier", transforms="standard")[0]
    made = (made.clamp(0, 1) * 255).round().squeeze(0).numpy()
    assert np.abs(stored[..., 0].astype(float) - made).mean() < 6


def test_every_tab_says_what_it_shows_and_the_heatmaps_follow_the_shared_layer(fashion):
    explorer = cw.Explorer(fashion, "sneaker", dataset=None)
    assert explorer.titles == ["Filter weights", "Feature maps", "Maximization", "DeepDream", "Heatmaps", "Unit"]
    assert all(len(explorer.about[title]) > 40 for title in explorer.titles)
    explorer.layer = "block2_conv2"
    assert explorer.heatmaps.layer == "block2_conv2"
    assert "Grad-CAM at the shared layer, block2_conv2 (the last conv layer, block3_conv2" in explorer.about["Heatmaps"]
    explorer.heatmaps.layer = "block3_conv2"  # chosen in the heatmaps tab: shared
    assert explorer.layer == "block3_conv2" and explorer.maps.layer == "block3_conv2"
    explorer.heatmaps.layer = "block3_conv2:raw"  # not a layer of the strip: said so
    assert explorer.layer == "block3_conv2"
    assert "at block3_conv2:raw, chosen here: not the shared layer block3_conv2" in explorer.about["Heatmaps"]
    explorer.heatmaps.method = "saliency"
    assert "Saliency (gradient) uses no layer" in explorer.about["Heatmaps"]


def test_dataset_examples_have_their_own_controls_labels_and_units(fashion):
    images, labels = load_fashion_mnist("test")
    explorer = cw.Explorer(fashion, "sneaker", dataset=images[:300], labels=labels[:300])
    examples = explorer.examples
    examples.wait()
    # Its own controls (js/examples.js) set its layer and filter_index traits; filter_count is the slider's range.
    examples.layer = "block3_conv1"
    assert explorer.layer == "block3_conv1" and examples.filter_count == 128
    examples.filter_index = 100
    assert explorer.filter_index == 100 and explorer.maps.filter_index == 100
    examples.layer = "block1_conv1"
    assert examples.filter_count == 32 and explorer.filter_index == 31
    assert "Under each: its true label and the filter's strongest response in that image: the input of its ReLU, which is the conv's own output" in examples.caption
    top = examples._examples.top("block1_conv1", 31)
    classes = fashion.classes
    for index, value, (row, column) in top:
        line = next(line for line in examples.example_lines if line.startswith(f"image #{index} "))
        assert f"image #{index} · true: {classes[int(labels[index])]} · model: " in line
        assert f"response {value:.3g} at row {row}, column {column} of 28×28" in line
    with pytest.raises(ValueError, match="class index 10 is out of range"):
        cw.DatasetExamples(fashion, images[:3], labels=[0, 1, 10])


def test_the_unit_view_shows_the_filter_its_visualization_examples_and_map(fashion):
    images, labels = load_fashion_mnist("test")
    explorer = cw.Explorer(fashion, "sneaker", dataset=images[:200], labels=labels[:200], layer="block1_conv2")
    explorer.examples.wait()
    explorer.filter_index = 4
    assert explorer.unit._shown[1] is None and "made when this view is shown" in explorer.unit.captions[1], \
        "the feature visualization is not made while the tab is hidden"
    assert all(picture is not None for i, picture in enumerate(explorer.unit._shown) if i != 1), "the quick pictures follow the selection"
    explorer.selected_index = explorer.titles.index("Unit")
    explorer.unit.wait()
    unit = explorer.unit
    assert all(picture is not None for picture in unit._shown)
    assert unit.heading.startswith("block1_conv2, filter 4 of 32")
    assert "3×3 weights, its kernel's mean over its 32 input channels" in unit.captions[0]
    # The numbers said are those of the picture (the mean over the input channels), then those of the weights.
    weights = cw.engine.filter_weights(fashion, "block1_conv2")[4]
    mean = weights.mean(0)
    assert (f"the mean from {float(mean.min()):.3g} to {float(mean.max()):.3g} "
            f"(the weights themselves from {float(weights.min()):.3g} to {float(weights.max()):.3g})") in unit.captions[0]
    assert "activation maximization, 128 steps" in unit.captions[1]
    assert unit.captions[2].startswith("the 9 images that excite it most")
    maps = cw.engine.feature_maps(fashion, cw.sample_image("sneaker"), "block1_conv2")["block1_conv2"][4]
    assert f"its map for sneaker (after its ReLU; black = 0, brightest = {float(maps.max()):.3g}" in unit.captions[3]
    explorer.maps.sample = "bag"
    assert "its map for bag" in unit.captions[3]
    explorer.filter_index = 5
    unit.wait()
    assert (("block1_conv2", 4) in unit._visualizations) and (("block1_conv2", 5) in unit._visualizations)
    assert not np.array_equal(unit._visualizations[("block1_conv2", 4)], unit._visualizations[("block1_conv2", 5)])


def test_a_bad_file_in_a_shared_store_shows_its_error_and_nothing_of_the_filter_before(fashion, store, tmp_path):
    # A store is downloaded and shared: its texts are shown as text, and a bad layer file is named with its
    # bad field while the view shows nothing of the layer it showed before (tests/test_bad_input_sweep.py
    # has every kind of bad file; this is what the widget does with one).
    shared = tmp_path / "shared"
    shutil.copytree(store, shared)
    paths = {layer["name"]: shared / layer["examples"] for layer in json.loads((shared / "atlas.json").read_text())["layers"]}
    good = json.loads(paths["block1_conv2"].read_text())
    good["units"][0][0]["label"] = '<img src=x onerror=alert("label")>'
    paths["block1_conv2"].write_text(json.dumps(good))
    bad = json.loads(paths["block2_conv1"].read_text())
    bad["units"][0][0]["row"] = -1
    paths["block2_conv1"].write_text(json.dumps(bad))

    view = cw.DatasetExamples(fashion, atlas=shared, layer="block1_conv2")
    assert view.error == "" and view.examples_png
    assert 'true: <img src=x onerror=alert("label")> · ' in view.example_lines[0], "the label as it is, for the page to set as text"
    view.layer = "block2_conv1"
    assert f"the atlas file {paths['block2_conv1']}: units[0][0].row must be an integer from 0 to 13, got -1" in view.error
    assert view.examples_png == b"" and view.example_lines == [], "nothing of block1_conv2's filter is left on show"
    assert view.caption.startswith("block2_conv1, filter 0: nothing to show")
    view.layer = "block1_conv2"
    assert view.error == "" and view.examples_png and view.example_lines


def test_a_filter_that_never_fires_on_the_stored_images_says_so(fashion, store, tmp_path):
    # A filter whose strongest response is below 0 on every stored image: its examples are the images that come
    # closest, not ones that excite it, and the examples' and the unit view's captions say so.
    edited = tmp_path / "edited"
    shutil.copytree(store, edited)
    path = edited / "layers" / "features.5.json"
    content = json.loads(path.read_text())
    for rank, example in enumerate(content["units"][3]):
        example["value"] = -0.25 - rank / 10
    path.write_text(json.dumps(content))
    explorer = cw.Explorer(fashion, "sneaker", atlas=edited, layer="block2_conv1")
    explorer.filter_index = 3
    assert "None of the 48 images makes its output positive anywhere (its strongest response is -0.25)" in explorer.examples.caption
    explorer.selected_index = explorer.titles.index("Unit")
    assert explorer.unit.captions[2].endswith("-0.25, -0.35, -0.45, -0.55; none is above 0: it does not fire on any of them, these come closest")
    explorer.filter_index = 2
    assert "None of the" not in explorer.examples.caption and "none is above 0" not in explorer.unit.captions[2]
