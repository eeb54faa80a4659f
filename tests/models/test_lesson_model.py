"""cw.lesson_model: the lessons show VGG16 on a photo where its ImageNet weights are in torch's
cache, and the shipped fashion-cnn otherwise, with a line saying which (never an error)."""
from __future__ import annotations

import pytest
import torch

import cnn_widgets as cw
from cnn_widgets.models import zoo


@pytest.fixture(scope="module")
def random_vgg16_cache(tmp_path_factory):
    """A TORCH_HOME whose cache holds a VGG16 state dict (random weights, float16 to halve the file)
    under the file name torchvision's VGG16_Weights.IMAGENET1K_V1 downloads to."""
    from torchvision.models import VGG16_Weights

    torch_home = tmp_path_factory.mktemp("torch_home")
    file_name = VGG16_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    assert file_name == "vgg16-397923af.pth"
    with torch.device("meta"):  # the shapes only; filling them is cheaper than torchvision's initialization
        shapes = {key: value.shape for key, value in zoo.build_torchvision("vgg16").state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state = {key: torch.randn(shape, generator=generator).half() if len(shape) < 2 or shape[1] < 1000
             else torch.zeros(shape, dtype=torch.half) for key, shape in shapes.items()}
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, torch_home / "hub" / "checkpoints" / file_name)
    return torch_home, state


def test_without_cached_weights_the_lesson_shows_fashion_cnn_and_says_where_vgg16_would_come_from(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, picture = cw.lesson_model("ankle_boot")
    line = capsys.readouterr().out
    assert model.name == "fashion-cnn" and picture == "ankle_boot"
    assert line.count("\n") == 1 and line.startswith("On screen: fashion-cnn")
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in line and "docs/teaching.md" in line
    assert not (tmp_path / "hub").exists(), "nothing is downloaded"


def test_with_vgg16_weights_in_the_cache_the_lesson_shows_vgg16_on_the_photo(random_vgg16_cache, monkeypatch, capsys):
    torch_home, state = random_vgg16_cache
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    # Random weights cannot carry the published file's SHA-256 prefix; that check has its own tests.
    monkeypatch.setattr(zoo, "check_weights_hash", lambda path, url=None: None)
    model, picture = cw.lesson_model("sneaker", photo="coffee")
    line = capsys.readouterr().out
    assert model.name == "vgg16" and picture == "coffee"
    assert line.startswith("On screen: VGG16 with its ImageNet weights") and "'coffee'" in line
    assert model.layers[0].name == "block1_conv1" and len(model.classes) == 1000
    loaded = model.module.state_dict()["features.0.weight"].cpu()
    assert torch.equal(loaded, state["features.0.weight"].float()), "the cached file's weights are the ones shown"


def test_a_damaged_vgg16_file_falls_back_to_fashion_cnn_and_says_so(random_vgg16_cache, monkeypatch, capsys):
    torch_home, _ = random_vgg16_cache
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    model, picture = cw.lesson_model()  # the real hash check: this file is not the published one
    line = capsys.readouterr().out
    assert model.name == "fashion-cnn" and picture == "sneaker"
    assert "could not be loaded" in line and "not the published one" in line


def test_lesson_model_names_the_valid_pictures(capsys):
    with pytest.raises(ValueError, match="picture.*ankle_boot"):
        cw.lesson_model("cat")  # a photo is not a Fashion-MNIST picture
    with pytest.raises(ValueError, match="photo.*astronaut"):
        cw.lesson_model(photo="sneaker")
    assert capsys.readouterr().out == ""
