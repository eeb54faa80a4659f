"""The shipped model: small, safely loaded, and as accurate as the README says."""
from __future__ import annotations

import re
from pathlib import Path

import torch

import cnn_widgets as cw
from cnn_widgets.models.datasets import load_fashion_mnist
from cnn_widgets.models.fashion_cnn import WEIGHTS_FILE

README = Path(__file__).resolve().parents[2] / "README.md"


def stated_accuracy() -> float:
    match = re.search(r"test accuracy[^0-9]*([0-9]+\.[0-9]+)\s*%", README.read_text(), re.IGNORECASE)
    assert match, "README.md must state the shipped model's test accuracy"
    return float(match.group(1)) / 100


def test_weights_file_is_small_and_holds_only_tensors():
    assert WEIGHTS_FILE.stat().st_size < 2_000_000
    state = torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_shipped_model_reaches_the_stated_accuracy_on_the_real_test_set():
    model = cw.load_model("fashion-cnn", device="cpu")
    images, labels = load_fashion_mnist("test")
    assert len(images) == 10_000
    pixels = images.float().div(255).unsqueeze(1)
    correct = 0
    with torch.no_grad():
        for start in range(0, len(pixels), 1000):
            logits = model.module(model.normalize(pixels[start : start + 1000]))
            correct += (logits.argmax(1) == labels[start : start + 1000]).sum().item()
    accuracy = correct / len(pixels)
    assert accuracy >= 0.91
    assert accuracy >= stated_accuracy() - 0.0005, f"measured {accuracy:.4f}, README states {stated_accuracy():.4f}"


def test_classes_and_preprocessing():
    model = cw.load_model("fashion-cnn", device="cpu")
    assert model.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert model.input_size == (1, 28, 28) and model.weights == "shipped"


def test_shipped_model_recognizes_its_sample_images():
    model = cw.load_model("fashion-cnn", device="cpu")
    names = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
    with torch.no_grad():
        predicted = [int(model.module(model.preprocess(cw.sample_image(n))).argmax()) for n in names]
    assert sum(p == i for i, p in enumerate(predicted)) >= 8
