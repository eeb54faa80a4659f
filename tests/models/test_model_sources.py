"""Where models come from and what they return: timm weights through timm's loading and
the Hugging Face cache (offline errors that say what to fetch), the optional extras'
install hints, the ``output=`` selector for models with several outputs, and
float16/bfloat16 models computed with float32 maps."""
from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.models import outputs, timm_models, zoo

from model_state import assert_unchanged, snapshot

timm = pytest.importorskip("timm", reason="the timm extra is part of the test extra")
huggingface_hub = pytest.importorskip("huggingface_hub")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, and no network: any connection attempt fails the test."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(zoo.socket, "create_connection", lambda *a, **k: pytest.fail("network used"))
    return cache


def test_timm_pretrained_weights_offline_say_what_to_fetch(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(cw.WeightsUnavailableError) as error:
        cw.load_model("timm/resnet18", device="cpu")
    message = str(error.value)
    assert "huggingface-cli download timm/resnet18.a1_in1k" in message
    assert str(hub_cache / "models--timm--resnet18.a1_in1k") in message
    assert "weights=None" in message


def test_timm_pretrained_weights_with_the_hub_unreachable(hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("CNN_WIDGETS_OFFLINE", raising=False)
    probed = []
    monkeypatch.setattr(zoo, "_reachable", lambda url, timeout: probed.append(url) or False)
    with pytest.raises(cw.WeightsUnavailableError, match="timm/resnet18 are not cached"):
        cw.load_model("timm/resnet18", device="cpu")
    assert probed == ["https://huggingface.co"]


def test_timm_pretrained_weights_load_from_the_hub_cache_offline(hub_cache, monkeypatch):
    """A file in the Hugging Face cache is used as it is, through timm's loading, without network."""
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(3)
    reference = timm.create_model("resnet18", pretrained=False)
    repo = hub_cache / "models--timm--resnet18.a1_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot_dir = repo / "snapshots" / "abc123"
    snapshot_dir.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot_dir / "model.safetensors"))
    model = cw.load_model("timm/resnet18", device="cpu")
    assert model.weights == "pretrained"
    assert torch.equal(model.module.fc.weight, reference.fc.weight)


def test_timm_weights_from_a_file(tmp_path):
    torch.manual_seed(4)
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = cw.load_model("timm/resnet18", weights=path, device="cpu")
    assert torch.equal(model.module.conv1.weight, reference.conv1.weight)


def test_unknown_timm_name_suggests_close_ones():
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet81'.*did you mean.*'resnet18'"):
        cw.load_model("timm/resnet81", weights=None)


@pytest.mark.parametrize("package, call, hint", [
    ("timm", lambda: cw.load_model("timm/resnet18", weights=None), "pip install 'cnn-widgets[timm]'"),
    ("transformers", lambda: cw.models.hf_models.require_transformers(), "pip install 'cnn-widgets[transformers]'"),
])
def test_a_missing_extra_says_what_to_install(monkeypatch, package, call, hint):
    monkeypatch.setitem(sys.modules, package, None)  # import now fails as if it were not installed
    with pytest.raises(ImportError) as error:
        call()
    assert hint in str(error.value)


class TwoHeads(nn.Module):
    def __init__(self, returns: str) -> None:
        super().__init__()
        self.returns = returns
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.boxes, self.scores = nn.Linear(16, 4), nn.Linear(16, 6)

    def forward(self, x):
        pooled = self.conv(x).relu().mean(dim=(2, 3))
        if self.returns == "tuple":
            return self.boxes(pooled), self.scores(pooled)
        if self.returns == "dict":
            return {"boxes": self.boxes(pooled), "scores": self.scores(pooled)}
        if self.returns == "one of several":
            return {"features": self.conv(x), "scores": self.scores(pooled)}
        return self.conv(x)  # feature maps only: no class scores


def test_an_ambiguous_output_says_how_to_choose():
    net = TwoHeads("tuple")
    before = snapshot(net)
    model = cw.load_model(net, input_size=(3, 16, 16))
    assert len(model.layers) == 1  # layers and feature maps need no class scores
    engine.feature_maps(model, torch.rand(3, 16, 16), cache=False)
    for call in (lambda: engine.cam(model, torch.rand(3, 16, 16)), lambda: cw.GradCAM(model, torch.rand(3, 16, 16))):
        with pytest.raises(outputs.AmbiguousOutputError, match=r"a tuple of 2: \[0\] tensor \(1, 4\), \[1\] tensor \(1, 6\).*output=1"):
            call()
    assert_unchanged(net, before)


@pytest.mark.parametrize("returns, selector, count", [
    ("tuple", 1, 6), ("tuple", 0, 4), ("tuple", -1, 6), ("dict", "scores", 6), ("dict", "boxes", 4),
    ("tuple", lambda out: out[1] * 2, 6),
])
def test_the_output_selector_picks_the_class_scores(returns, selector, count):
    model = cw.load_model(TwoHeads(returns), input_size=(3, 16, 16), output=selector)
    assert len(model.classes) == count
    top = engine.predict(model, torch.rand(3, 16, 16), k=count)
    assert sorted(p.index for p in top) == list(range(count))
    assert engine.cam(model, torch.rand(3, 16, 16)).shape == (16, 16)


def test_the_only_class_score_tensor_is_taken_without_a_selector():
    model = cw.load_model(TwoHeads("one of several"), input_size=(3, 16, 16))
    assert len(model.classes) == 6


@pytest.mark.parametrize("selector, message", [
    (5, r"output=5: .* valid indices: 0-1"),
    ("labels", r"output='labels': .*no key 'labels'"),
    (lambda out: out["missing"], r"the output= callable failed"),
])
def test_a_selector_that_does_not_fit_says_why(selector, message):
    model = cw.load_model(TwoHeads("tuple" if not isinstance(selector, str) else "dict"), input_size=(3, 16, 16), output=selector)
    with pytest.raises(ValueError, match=message):
        model.layers


def test_a_selector_of_the_wrong_type_is_refused_up_front():
    with pytest.raises(TypeError, match="output must be an index .* a key .* or a callable"):
        cw.load_model(TwoHeads("tuple"), output=1.5)


def test_a_model_without_class_scores_still_shows_layers_and_maps():
    model = cw.load_model(TwoHeads("features"), input_size=(3, 16, 16))
    assert engine.feature_maps(model, torch.rand(3, 16, 16), cache=False)["conv"].shape == (16, 16, 16)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_models_run_with_float32_maps(dtype):
    torch.manual_seed(0)
    reference = TwoHeads("features")
    net = TwoHeads("features").to(dtype)
    net.load_state_dict({k: v.to(dtype) for k, v in reference.state_dict().items()})
    before = snapshot(net)
    model = cw.load_model(net, input_size=(3, 16, 16))
    assert model.dtype == dtype
    image = torch.rand(3, 16, 16)
    maps = engine.feature_maps(model, image, cache=False)["conv"]
    assert maps.dtype == torch.float32
    exact = engine.feature_maps(cw.load_model(reference, input_size=(3, 16, 16)), image, cache=False)["conv"]
    assert torch.allclose(maps, exact, atol=0.05)  # the same maps, within half precision
    assert_unchanged(net, before)


def test_a_timm_model_built_for_one_channel_takes_one_channel():
    model = cw.load_model(timm.create_model("resnet10t", pretrained=False, in_chans=1), input_size=None)
    assert model.input_size[0] == 1 and len(model.mean) == 1
    assert engine.feature_maps(model, cw.sample_image("cat"), layers=0, cache=False)


def test_the_command_line_takes_timm_names(capsys):
    from cnn_widgets.cli import main

    assert main(["layers", "timm/resnet10t", "--weights", "none", "--device", "cpu"]) == 0
    assert "conv1.0" in capsys.readouterr().out


def test_a_saved_hf_model_takes_size_mean_and_std_from_its_own_image_processor(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=2,
                                       id2label={0: "healthy", 1: "lesion"}, label2id={"healthy": 0, "lesion": 1})
    transformers.ResNetForImageClassification(config).save_pretrained(tmp_path)
    processor = transformers.ConvNextImageProcessorPil(size={"shortest_edge": 96}, image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6])
    processor.save_pretrained(tmp_path)
    model = cw.load_model(transformers.ResNetForImageClassification.from_pretrained(tmp_path))
    assert model.input_size == (3, 96, 96)
    assert model.mean == pytest.approx((0.1, 0.2, 0.3)) and model.std == pytest.approx((0.4, 0.5, 0.6))
    assert model.classes == ["healthy", "lesion"]
