"""The models people bring, offline: timm architectures, Hugging Face classifiers,
torchvision weight enums, 1- and 4-channel inputs, models with several outputs and
half-precision models. For each one the layers, feature maps, a heatmap, a short
activation maximization and every widget constructor work, and the module comes
back exactly as it was.

Inputs are small (64x64, 32x32) and optimizations a few steps, so the whole
matrix runs in the default suite.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.models import zoo

from model_state import assert_unchanged, snapshot

timm = pytest.importorskip("timm", reason="the timm extra is part of the test extra")
transformers = pytest.importorskip("transformers", reason="the transformers extra is part of the test extra")

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = (3, 64, 64)
TIMM_ARCHITECTURES = ("resnet18", "efficientnet_b0", "mobilenetv3_small_050", "convnext_atto", "regnetx_002")


class Heads(nn.Module):
    """A small CNN with ``cin`` input channels and, depending on ``returns``, one output,
    a (boxes, scores) tuple or a {"boxes", "scores"} dict, like a detection-style head."""

    def __init__(self, cin: int = 3, returns: str = "tensor", classes: int = 5) -> None:
        super().__init__()
        self.returns = returns
        self.features = nn.Sequential(
            nn.Conv2d(cin, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.scores = nn.Linear(16, classes)
        self.boxes = nn.Linear(16, 4)

    def forward(self, x):
        pooled = self.features(x).mean(dim=(2, 3))
        if self.returns == "tuple":
            return self.boxes(pooled), self.scores(pooled)
        if self.returns == "dict":
            return {"boxes": self.boxes(pooled), "scores": self.scores(pooled)}
        return self.scores(pooled)


def _heads(cin: int = 3, returns: str = "tensor", dtype=torch.float32, **load) -> cw.Model:
    torch.manual_seed(0)
    net = Heads(cin, returns).to(dtype).train()  # train mode, BatchNorm: state a careless library would change
    return cw.load_model(net, input_size=(cin, 32, 32), **load)


def _timm(name: str) -> cw.Model:
    torch.manual_seed(0)
    return cw.load_model(f"timm/{name}", weights=None, device="cpu", input_size=SMALL)


def _timm_module() -> cw.Model:
    torch.manual_seed(0)
    return cw.load_model(timm.create_model("resnet10t", pretrained=False), input_size=SMALL)


def _hf(kind: str) -> cw.Model:
    t = transformers
    configs = {
        "resnet": (t.ResNetForImageClassification, t.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=5)),
        "convnext": (t.ConvNextForImageClassification, t.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], num_labels=5)),
        "efficientnet": (t.EfficientNetForImageClassification,
                         t.EfficientNetConfig(width_coefficient=0.5, depth_coefficient=0.2, hidden_dim=640, num_labels=5)),
        "regnet": (t.RegNetForImageClassification, t.RegNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], groups_width=8, num_labels=5)),
        "mobilenet_v2": (t.MobileNetV2ForImageClassification, t.MobileNetV2Config(depth_multiplier=0.5, num_labels=5)),
    }
    model_class, config = configs[kind]
    config.id2label = {i: f"{kind} class {i}" for i in range(5)}
    config.label2id = {v: k for k, v in config.id2label.items()}
    torch.manual_seed(0)
    return cw.load_model(model_class(config), input_size=SMALL)


def _torchvision_enum() -> cw.Model:
    from torchvision.models import MobileNet_V3_Small_Weights

    return cw.load_model("mobilenet_v3_small", weights=MobileNet_V3_Small_Weights.IMAGENET1K_V1, device="cpu", input_size=SMALL)


CASES = {
    **{f"timm {name}": (lambda name=name: _timm(name)) for name in TIMM_ARCHITECTURES},
    "timm module passed in": _timm_module,
    **{f"transformers {kind}": (lambda kind=kind: _hf(kind)) for kind in ("resnet", "convnext", "efficientnet", "regnet", "mobilenet_v2")},
    "torchvision weights enum": _torchvision_enum,
    "1 input channel": lambda: _heads(1),
    "4 input channels": lambda: _heads(4),
    "6 input channels": lambda: _heads(6),
    "two outputs (tuple), output=1": lambda: _heads(returns="tuple", output=1),
    "two outputs (dict), output='scores'": lambda: _heads(returns="dict", output="scores"),
    "two outputs, output=callable": lambda: _heads(returns="tuple", output=lambda out: out[1]),
    "float16": lambda: _heads(dtype=torch.float16),
    "bfloat16": lambda: _heads(dtype=torch.bfloat16),
}


@pytest.fixture
def enum_weights(monkeypatch):
    """Stand-in for the zoo's one weights loader (the real file is not on a machine without
    network): random weights of the right architecture, and a record of what was asked."""
    asked = []

    def load(name, timeout=3.0, weights=None):
        asked.append((name, weights))
        torch.manual_seed(1)
        return zoo.build_torchvision(name).state_dict()

    monkeypatch.setattr(zoo, "imagenet_state_dict", load)
    return asked


def _widgets(model: cw.Model, image) -> list:
    first, last = model.layers[0].name, model.layers[-1].name
    dataset = torch.rand(6, *model.input_size)
    return [
        cw.FilterWeights(model, layer=first),
        cw.FeatureMaps(model, image, layer=last),
        cw.ActivationMaximization(model, layer=first, steps=2, size=32),
        cw.DeepDream(model, image, layer=last),
        cw.GradCAM(model, image),
        cw.DatasetExamples(model, dataset, layer=last, k=2),
        cw.Explorer(model, image),
    ]


def _settle(widget) -> list[str]:
    """Wait for a widget's background work; its error line (and its children's, for an Explorer)."""
    views = [widget, *(getattr(widget, name, None) for name in ("weights", "maps", "maximization", "dream", "heatmaps", "examples"))]
    errors = []
    for view in views:
        if view is None:
            continue
        if hasattr(view, "wait"):
            view.wait()
        if getattr(view, "error", ""):
            errors.append(f"{type(view).__name__}: {view.error}")
    return errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_feature_works_and_the_model_comes_back_unchanged(case, enum_weights):
    model = CASES[case]()
    before = snapshot(model.module)
    image = cw.sample_image("cat")

    layers = model.layers
    assert layers and all(info.output_shape is not None for info in layers)
    maps = engine.feature_maps(model, image, layers=[0, -1], cache=False)
    assert [tuple(m.shape) for m in maps.values()] == [layers[0].output_shape, layers[-1].output_shape]
    assert all(m.dtype == torch.float32 and torch.isfinite(m).all() for m in maps.values())

    heatmap = engine.cam(model, image, method="gradcam")
    assert heatmap.shape == model.input_size[1:] and heatmap.dtype == torch.float32 and torch.isfinite(heatmap).all()
    assert len(engine.predict(model, image, k=3)) == 3

    images = engine.maximize(model, layers[0].name, [0, 1], steps=2, size=32, seed=0)
    assert images.shape == (2, model.input_size[0], 32, 32)
    assert float(images.min()) >= 0 and float(images.max()) <= 1

    widgets = _widgets(model, image)
    errors = [error for widget in widgets for error in _settle(widget)]
    assert errors == []
    if not case.startswith(("timm", "transformers")):  # channels, outputs, dtypes: pictures picked, runs shown
        _use_views(widgets)
    assert_unchanged(model.module, before)


def _use_views(widgets) -> None:
    """Pick another picture in every view that has a picker, run the optimizations briefly."""
    weights, maps, maximization, dream, heatmaps = widgets[:5]
    for view in (maps, dream, heatmaps):
        view.set_image("coffee")
    heatmaps.wait()
    assert maps.image_png and heatmaps.error == "" and maps.error == ""
    maximization.run(wait=True)
    shown = maximization.image(maximization.chosen_filters()[0])
    assert maximization.error == "" and shown is not None and shown.shape == (32, 32, 3)
    dream.octaves, dream.steps, dream.frames = 1, 1, 1
    dream.run(wait=True)
    assert dream.error == "" and len(dream.frames_png) == 1


def test_the_matrix_covers_what_the_issue_asks():
    timm_cases = [c for c in CASES if c.startswith("timm")]
    hf_cases = [c for c in CASES if c.startswith("transformers")]
    assert len(timm_cases) >= 5 and len(hf_cases) >= 3


def test_timm_models_bring_their_pretrained_cfg():
    model = _timm("resnet18")
    cfg = timm.create_model("resnet18", pretrained=False).pretrained_cfg
    assert model.mean == tuple(cfg["mean"]) and model.std == tuple(cfg["std"])
    assert model.classes[:2] == ["tench", "goldfish"] and len(model.classes) == 1000
    assert model.weights == "none"
    default = cw.load_model("timm/convnext_atto", weights=None, device="cpu")
    assert default.input_size == tuple(timm.create_model("convnext_atto").pretrained_cfg["input_size"])


def test_hf_classifiers_bring_labels_and_take_logits():
    model = _hf("convnext")
    assert model.classes == [f"convnext class {i}" for i in range(5)]
    processor = transformers.ConvNextImageProcessorPil()
    assert model.mean == tuple(processor.image_mean) and model.std == tuple(processor.image_std)
    top = engine.predict(model, cw.sample_image("cat"), k=5)
    assert sorted(p.name for p in top) == sorted(model.classes)


def test_hf_input_size_comes_from_the_image_processor():
    config = transformers.MobileNetV2Config(depth_multiplier=0.5, num_labels=3)
    model = cw.load_model(transformers.MobileNetV2ForImageClassification(config))
    crop = transformers.MobileNetV2ImageProcessorPil().crop_size
    assert model.input_size == (3, crop["height"], crop["width"])


def test_torchvision_enum_brings_categories_and_preprocessing(enum_weights):
    from torchvision.models import ResNet50_Weights

    weights = ResNet50_Weights.IMAGENET1K_V2
    model = cw.load_model("resnet50", weights=weights, device="cpu")
    assert enum_weights == [("resnet50", weights)]  # through the zoo's one loader
    assert model.classes == list(weights.meta["categories"])
    assert model.input_size == (3, 224, 224) and model.mean == tuple(weights.transforms().mean)
    assert model.weights == "ResNet50_Weights.IMAGENET1K_V2"
    assert cw.load_model(weights, device="cpu").name == "resnet50"


def test_a_weights_enum_of_another_architecture_is_refused(enum_weights):
    from torchvision.models import ResNet50_Weights

    with pytest.raises(ValueError, match="belong to resnet50, not to 'vgg16'"):
        cw.load_model("vgg16", weights=ResNet50_Weights.IMAGENET1K_V2)
    assert enum_weights == []


def test_torchvision_enum_offline_names_the_file(tmp_path, monkeypatch):
    from torchvision.models import MobileNet_V3_Small_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("CNN_WIDGETS_OFFLINE", "1")
    monkeypatch.setattr(zoo.socket, "create_connection", lambda *a, **k: pytest.fail("network used"))
    with pytest.raises(cw.WeightsUnavailableError, match="mobilenet_v3_small-047dcff4.pth"):
        cw.load_model("mobilenet_v3_small", weights=MobileNet_V3_Small_Weights.IMAGENET1K_V1)


def test_dataset_examples_of_a_four_channel_model_from_pictures():
    model = _heads(4)
    before = snapshot(model.module)
    pictures = [cw.sample_image(name) for name in ("cat", "coffee", "rocket", "astronaut")]
    found = engine.dataset_examples(model, pictures, k=2, cache=False)
    assert found.pixels.shape[1] == 4
    assert found.indices[model.layers[0].name].shape == (16, 2)
    assert_unchanged(model.module, before)
