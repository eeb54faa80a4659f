"""ImageNet weights found in torchvision's cache are data, never code: a planted
pickle does not run, a file whose SHA-256 does not match the prefix in its name
is refused, and the published file loads."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

import cnn_widgets as cw
from cnn_widgets.models import zoo


class Planted:
    """A pickle that creates a marker file when it is unpickled, as a planted weights file would run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty torchvision cache of this test's own, and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("CNN_WIDGETS_OFFLINE", "1")
    return tmp_path


def _publish_as(monkeypatch, name: str, file: Path) -> Path:
    """Point the zoo's download URL for ``name`` at a file name carrying ``file``'s real hash,
    as torchvision names its files, and put ``file`` in the cache under that name."""
    weights = zoo._weights_enum(name)
    url = f"https://download.pytorch.org/models/{name}-{_sha256(file)[:8]}.pth"
    monkeypatch.setattr(weights.value, "url", url)
    target = zoo.weights_cache_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(file, target)
    return target


def test_a_planted_pickle_in_the_cache_never_runs_even_with_a_matching_hash(cache, monkeypatch):
    marker = cache / "code-ran"
    planted = cache / "planted.pth"
    torch.save({"conv1.weight": Planted(marker)}, planted)
    target = _publish_as(monkeypatch, "resnet18", planted)
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        cw.load_model("resnet18", device="cpu")
    assert not marker.exists(), "unpickling the cached weights ran code"
    assert target.name in str(target)


def test_a_planted_pickle_under_the_published_name_is_refused_by_its_hash(cache):
    marker = cache / "code-ran"
    target = zoo.weights_cache_file("resnet18")
    target.parent.mkdir(parents=True)
    torch.save({"conv1.weight": Planted(marker)}, target)
    with pytest.raises(ValueError, match=r"resnet18-f37072fd\.pth is not the published one.*name says f37072fd"):
        cw.load_model("resnet18", device="cpu")
    assert not marker.exists()


def test_a_damaged_cached_file_is_refused_with_its_name(cache):
    torch.manual_seed(0)
    target = zoo.weights_cache_file("vgg11")
    target.parent.mkdir(parents=True)
    torch.save(cw.load_model("vgg11", weights=None, device="cpu").module.state_dict(), target)
    with pytest.raises(ValueError) as error:
        cw.load_model("vgg11", device="cpu")
    assert str(target) in str(error.value)
    assert "https://download.pytorch.org/models/vgg11-8a719046.pth" in str(error.value)


def test_the_published_file_loads(cache, monkeypatch):
    torch.manual_seed(2)
    reference = cw.load_model("resnet18", weights=None, device="cpu").module
    saved = cache / "resnet18.pth"
    torch.save(reference.state_dict(), saved)
    _publish_as(monkeypatch, "resnet18", saved)
    model = cw.load_model("resnet18", device="cpu")
    assert model.weights == "imagenet"
    assert torch.equal(model.module.fc.weight, reference.fc.weight)


def test_a_hand_copied_torchvision_file_is_checked_too(cache):
    copied = cache / "resnet18-f37072fd.pth"
    torch.save(cw.load_model("resnet18", weights=None, device="cpu").module.state_dict(), copied)
    with pytest.raises(ValueError, match="resnet18-f37072fd.pth is not the published one"):
        cw.load_model("resnet18", weights=copied, device="cpu")


def test_a_users_own_file_name_with_a_date_is_not_taken_for_a_hash(cache):
    saved = cache / "fashion-20240101.pth"
    torch.save(cw.load_model("fashion-cnn", weights=None, device="cpu").module.state_dict(), saved)
    assert cw.load_model("fashion-cnn", weights=saved, device="cpu").weights == str(saved)


def test_the_offline_message_still_says_where_to_put_the_file(cache):
    with pytest.raises(cw.WeightsUnavailableError) as error:
        cw.load_model("vgg16", device="cpu")
    expected = cache / "torch-home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert f"put the file at\n  {expected}" in str(error.value)
