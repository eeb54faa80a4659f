"""Dataset examples: the images that excite each filter most, and where."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn

import cnn_widgets as cw
from cnn_widgets.engine.examples import as_pixels, dataset_examples, example_maps, ranked_by
from cnn_widgets.models.datasets import load_fashion_mnist
from cnn_widgets.widgets import UnitView


@pytest.fixture(scope="module")
def test_images():
    images, labels = load_fashion_mnist("test")
    return images[:300], labels[:300]


def test_top_images_are_the_strongest_responses(fashion, test_images):
    images, _ = test_images
    examples = dataset_examples(fashion, images, layers=["block2_conv1"], k=5, batch_size=64, cache=False)
    assert examples.indices["block2_conv1"].shape == (64, 5)
    # Independently: run the network by hand up to block2_conv1 (features.5, before its ReLU).
    with torch.no_grad():
        maps = fashion.module.features[:6](fashion.normalize(examples.pixels))[:, 3]
    expected = maps.flatten(1).max(1).values.topk(5)
    assert examples.indices["block2_conv1"][3].tolist() == expected.indices.tolist()
    assert torch.allclose(examples.values["block2_conv1"][3], expected.values, atol=1e-5)
    index, value, (row, col) = examples.top("block2_conv1", 3)[0]
    assert maps[index, row, col] == pytest.approx(value, abs=1e-5), "the position is where the response is strongest"


def test_batch_size_does_not_change_the_result(fashion, test_images):
    images, _ = test_images
    a = dataset_examples(fashion, images, k=3, batch_size=300, cache=False)
    b = dataset_examples(fashion, images, k=3, batch_size=37, cache=False)
    for name in a.indices:
        # Convolution kernels round differently for other batch sizes; near-ties may swap.
        assert torch.allclose(a.values[name], b.values[name], atol=1e-4)
        assert (a.indices[name] == b.indices[name]).float().mean() > 0.97


def test_results_are_cached_and_progress_is_reported(fashion, test_images):
    images, _ = test_images
    calls = []
    first = dataset_examples(fashion, images, k=2, batch_size=100, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(100, 300), (200, 300), (300, 300)]
    again = dataset_examples(fashion, images, k=2, progress=lambda done, total: calls.append(done))
    assert again is first and len(calls) == 3


def test_cancel_stops_the_scan_before_the_next_batch(fashion, test_images):
    images, _ = test_images
    calls, stop = [], threading.Event()

    def progress(done, total):
        calls.append(done)
        if done == 200:
            stop.set()

    with pytest.raises(cw.engine.Cancelled, match="scan was cancelled"):
        dataset_examples(fashion, images, k=2, batch_size=100, progress=progress, cancel=stop, cache=False)
    assert calls == [100, 200]  # the third batch never ran


def test_a_folder_of_images_works(fashion, tmp_path, test_images):
    images, _ = test_images
    for i in range(6):
        Image.fromarray(images[i].numpy()).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    examples = dataset_examples(fashion, tmp_path, layers="block1_conv1", k=2, cache=False)
    assert examples.pixels.shape == (6, 1, 28, 28)
    assert examples.indices["block1_conv1"].max() < 6


def test_color_datasets_are_converted_for_a_grayscale_model():
    color = np.zeros((4, 28, 28, 3), dtype=np.uint8)
    assert as_pixels(color, channels=1).shape == (4, 1, 28, 28)
    assert as_pixels(torch.rand(2, 1, 10, 10), channels=3, size=(20, 20)).shape == (2, 3, 20, 20)
    with pytest.raises(ValueError, match="must be"):
        as_pixels(torch.rand(5, 5), channels=1)


def test_bad_k_and_empty_folder(fashion, tmp_path):
    with pytest.raises(ValueError, match="k must be a positive int"):
        dataset_examples(fashion, torch.zeros(2, 28, 28, dtype=torch.uint8), k=0)
    with pytest.raises(ValueError, match="no images"):
        dataset_examples(fashion, tmp_path)


def test_the_examples_view_draws_one_tile_per_example(fashion, test_images):
    images, _ = test_images
    view = cw.DatasetExamples(fashion, images, layer="block2_conv1", k=4)
    view.wait()
    view.filter_index = 5
    picture = view.picture()
    assert picture.ndim == 3 and picture.shape[2] == 3
    assert "filter 5: the 4 of 300 images" in view.caption
    assert "in color where its output is above 0, on one scale for all of them" in view.caption, "the overlay's scale is said"


def test_the_conv_output_ranks_as_after_the_relu_and_a_filter_that_never_fires_says_so(fashion, test_images):
    # The scan ranks by the input of the ReLU (here the conv's own output), while a layer name elsewhere means after it.
    # On a conv followed directly by a ReLU (the shipped model, VGG) that gives the order and the numbers after
    # the ReLU wherever they are above 0; a filter whose best is <= 0 is all zeros after the ReLU (no order at
    # all), so the view says it never fires instead of calling its images the ones that excite it most.
    images, _ = test_images
    examples = dataset_examples(fashion, images, layers=["block2_conv2"], k=4, cache=False)
    with torch.no_grad():  # by hand, through block2_conv2 (features.7) and its ReLU (features.8)
        peaks = fashion.module.features[:9](fashion.normalize(examples.pixels)).flatten(2).amax(2)
    fired = [f for f in range(64) if examples.top("block2_conv2", f)[-1][1] > 0]
    dead = [f for f in range(64) if examples.top("block2_conv2", f)[0][1] <= 0]
    assert len(fired) > 50 and dead
    for f in fired:
        expected = peaks[:, f].topk(4)
        assert examples.indices["block2_conv2"][f].tolist() == expected.indices.tolist()
        assert torch.allclose(examples.values["block2_conv2"][f], expected.values, atol=1e-5)
    assert bool((peaks[:, dead] == 0).all()), "after the ReLU a filter that never fires is 0 on every image"

    view = cw.DatasetExamples(fashion, images, layer="block2_conv2", k=4)
    view.wait()
    view.filter_index = dead[0]
    best = examples.top("block2_conv2", dead[0])[0][1]
    assert f"None of the 300 images makes its output positive anywhere (its strongest response is {best:.3g})" in view.caption
    view.filter_index = fired[0]
    assert "None of the" not in view.caption and "that excite it most" in view.caption


# -- what the examples are ranked by: the input of the layer's ReLU, after its BatchNorm -------------------------


class BatchNormBlock(nn.Module):
    """conv -> BatchNorm -> ReLU, the activation a module (in place) or a function in the forward (GoogLeNet)."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        self.conv, self.bn, self.relu = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.functional else self.relu(x)


class BatchNormNet(nn.Module):
    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.block, self.head = BatchNormBlock(functional), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.block(x).mean(dim=(2, 3)))


def _peaks(maps: torch.Tensor) -> torch.Tensor:
    return maps.flatten(2).amax(2)  # (N, C)


def _batchnorm_model(functional: bool = False):
    torch.manual_seed(0)
    net = BatchNormNet(functional).eval()
    with torch.no_grad():
        net.block.bn.weight.copy_(torch.tensor([1.0, -2.0, 0.5, 1.0]))  # channel 1: its order is reversed by the BatchNorm
        net.block.bn.bias.copy_(torch.tensor([0.1, 0.3, -0.2, 0.0]))
        net.block.bn.running_mean.uniform_(-0.2, 0.2)
        net.block.bn.running_var.uniform_(0.5, 2.0)
    return cw.load_model(net, input_size=(1, 12, 12), classes=["a", "b"]), net.block


@pytest.mark.parametrize("functional", [False, True], ids=["module", "function"])
def test_a_negative_batchnorm_scale_reverses_the_ranking_and_the_examples_follow_it(functional):
    model, block = _batchnorm_model(functional)
    assert model.layer("block.conv").activation_input().path == "block.bn"
    images = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    examples = dataset_examples(model, images, k=5, batch_size=16, cache=False)
    with torch.no_grad():  # by hand: what the ReLU reads, and the conv's own output
        before_relu = block.bn(block.conv(model.normalize(images)))
        conv = block.conv(model.normalize(images))
    for channel in range(4):
        expected = _peaks(before_relu)[:, channel].topk(5)
        assert examples.indices["block.conv"][channel].tolist() == expected.indices.tolist()
        torch.testing.assert_close(examples.values["block.conv"][channel], expected.values)
        index, value, (row, column) = examples.top("block.conv", channel)[0]
        assert before_relu[index, channel, row, column] == pytest.approx(value, abs=1e-6), "boxed where the value is"
    # The conv's own output would order channel 1 the other way round (what the scan did before).
    assert examples.indices["block.conv"][1].tolist() != _peaks(conv)[:, 1].topk(5).indices.tolist()
    # The maps drawn over the examples are the same tensor the ranking read.
    maps = example_maps(model, examples, "block.conv", 1)
    torch.testing.assert_close(maps, before_relu[examples.indices["block.conv"][1], 1])
    assert ranked_by(model.layer("block.conv")) == "the input of its ReLU, after its BatchNorm2d (block.bn)"
    # The words a user reads say so: under the examples, and in the unit view.
    view = cw.DatasetExamples(model, images, layer="block.conv", k=3)
    view.wait()
    view.filter_index = 1
    assert "strongest response in that image: the input of its ReLU, after its BatchNorm2d (block.bn), at the boxed place" in view.caption
    unit = UnitView(model, images[0], layer="block.conv", examples=view)
    unit.filter_index = 1
    assert "(the input of its ReLU, after its BatchNorm2d (block.bn)): " in unit.captions[2]


def test_a_resnet_ranks_by_its_batchnorm_and_a_conv_without_activation_by_its_own_output():
    # torchvision's ResNet calls one ReLU module twice per block: after bn1 (conv1's activation) and after
    # the residual sum (no conv's own). Random weights, with a negative BatchNorm scale on two channels.
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    block = net.layer1[0]
    with torch.no_grad():
        block.bn1.weight[[3, 7]] = -1.5
        block.bn1.running_mean.uniform_(-0.5, 0.5)
    model = cw.load_model(net, input_size=(3, 32, 32))
    conv1, conv2 = model.layer("layer1.0.conv1"), model.layer("layer1.0.conv2")
    assert (conv1.activation.path, conv1.activation.call) == ("layer1.0.relu", 0)
    assert conv1.activation_input().path == "layer1.0.bn1" and conv2.activation is None
    images = torch.rand(24, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    examples = dataset_examples(model, images, layers=[conv1.name, conv2.name], k=4, cache=False)
    with torch.no_grad():
        x = model.normalize(images)
        stem = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        bn1 = block.bn1(block.conv1(stem))
        conv2_output = block.conv2(F.relu(bn1))
        own = _peaks(block.conv1(stem)).T.topk(4, dim=1).indices  # what the conv's own output ranks first
    for name, maps in ((conv1.name, bn1), (conv2.name, conv2_output)):
        expected = _peaks(maps).T.topk(4, dim=1)
        assert torch.equal(examples.indices[name], expected.indices), name
        torch.testing.assert_close(examples.values[name], expected.values, rtol=1e-4, atol=1e-5)
    assert not torch.equal(examples.indices[conv1.name][[3, 7]], own[[3, 7]]), "the conv's own output orders them otherwise"
    assert examples.positions[conv1.name].shape == (64, 4, 2)
    for channel in (3, 7):  # BatchNorm keeps the positions: each is where the BatchNorm's output peaks
        for index, value, (row, column) in examples.top(conv1.name, channel):
            assert bn1[index, channel, row, column] == pytest.approx(value, abs=1e-5)


def test_the_shipped_model_ranks_exactly_as_its_conv_output(fashion, test_images):
    # A conv followed directly by its ReLU: the ReLU's input is the conv's own output, recorded as before.
    images, _ = test_images
    examples = dataset_examples(fashion, images, layers=["block1_conv1", "block3_conv2"], k=6, cache=False)
    with torch.no_grad():
        x = fashion.normalize(examples.pixels)
        for name, end in (("block1_conv1", 1), ("block3_conv2", 13)):
            assert fashion.layer(name).activation_input().name == name + ":raw"
            peaks = _peaks(fashion.module.features[:end](x)).T  # (C, N)
            # Each listed image has the listed value, and they are the k best (the first conv has ties).
            torch.testing.assert_close(peaks.gather(1, examples.indices[name]), examples.values[name], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(examples.values[name], peaks.topk(6, dim=1).values, rtol=1e-4, atol=1e-5)


def test_an_atlas_of_a_batchnorm_model_stores_the_input_of_the_relu_and_says_so(tmp_path):
    from cnn_widgets.atlas import atlas

    model, block = _batchnorm_model()
    folder = tmp_path / "images"
    folder.mkdir()
    pixels = torch.randint(0, 256, (12, 12, 12), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    for i, picture in enumerate(pixels):
        Image.fromarray(picture.numpy()).save(folder / f"{i:02d}.png")
    out = tmp_path / "atlas"
    atlas(model, folder, out, k=3, batch_size=8, workers=1, progress=False)
    with torch.no_grad():
        before_relu = block.bn(block.conv(model.normalize(pixels[:, None].float() / 255)))
    view = cw.DatasetExamples(model, atlas=out, layer="block.conv")
    view.filter_index = 1  # the channel whose order the BatchNorm reverses
    expected = _peaks(before_relu)[:, 1].topk(3)
    stored = view.examples("block.conv", 1)
    assert [example["image"] for example in stored] == expected.indices.tolist()
    assert [example["value"] for example in stored] == pytest.approx(expected.values.tolist(), abs=1e-5)
    assert "strongest response in that image: the input of its ReLU, after its BatchNorm2d (block.bn)." in view.caption
    # A store written before the ranking followed the BatchNorm says what it holds instead.
    manifest = json.loads((out / "atlas.json").read_text())
    manifest["response"] = "the conv layer's own output (before its activation), strongest over positions"
    (out / "atlas.json").write_text(json.dumps(manifest))
    old = cw.DatasetExamples(model, atlas=out, layer="block.conv")
    assert "the conv's own output, before its BatchNorm and its activation (this store was written by an older" in old.caption
