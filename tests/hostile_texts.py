"""Texts a user controls, each carrying a script that runs if the text reaches a
page as HTML: a module name, a model's class name, class names, an image file
name, a title, an uploaded file's name, error messages. Tests (and the notebook
cells of the browser tests, which run this file's source) build widgets from them
and check that every text reaches the page as text.

Each attack calls ``alert`` with where it came from, so a dialog names the leak.
"""

import os

import torch
from torch import nn


def attack(where: str) -> str:
    """A text that opens a dialog saying ``where`` if a page takes it as HTML."""
    return f'<img src=x onerror=alert("{where}")>'


def script_breaker(where: str) -> str:
    """A text that breaks a JSON ``<script>`` element that escapes only ``</``, then attacks."""
    return "<!--<script>" + attack(where)


class HostileNet(nn.Module):
    """A small grayscale CNN whose first conv's module name is an attack."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module(attack("module name"), nn.Conv2d(1, 16, 3, padding=1))
        self.features.add_module("relu", nn.ReLU())
        self.features.add_module("conv2", nn.Conv2d(16, 16, 3, padding=1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.features(x))


HostileNet.__name__ = HostileNet.__qualname__ = attack("model class name")


def hostile_model():
    """The hostile network wrapped for the widgets, with attacks for class names."""
    import cnn_widgets as cw

    torch.manual_seed(0)
    return cw.load_model(
        HostileNet(), input_size=(1, 28, 28), classes=[script_breaker("class name"), attack("class name 2"), "plain"]
    )


def hostile_image(folder) -> str:
    """A shipped picture saved under a file name that is an attack; returns its path."""
    import cnn_widgets as cw

    path = f"{folder}/{attack('image file name')}.png"
    cw.sample_image("sneaker").save(path)
    return path


def _send_from_view(widget, content: dict, buffers=()) -> None:
    """tests/view_messages.py's send_from_view, written out: the browser tests' notebook cells run
    this file's source, where the tests folder is not importable."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": list(buffers)})


def hostile_widgets(folder) -> dict:
    """Every widget, each showing attacking texts: names, captions, errors."""
    import cnn_widgets as cw

    model = hostile_model()
    image = hostile_image(folder)
    explorer = cw.Explorer(model, image, dataset=torch.rand(12, 1, 28, 28))
    explorer.examples.wait()
    # A dataset folder whose only picture is broken: the background scan fails with its path.
    broken = os.path.join(folder, attack("broken dataset folder"))
    os.makedirs(broken, exist_ok=True)
    with open(os.path.join(broken, "broken.png"), "wb") as file:
        file.write(b"not a picture")
    failing = cw.DatasetExamples(model, broken, k=2)
    failing.wait()
    maps = cw.FeatureMaps(model, image)
    # What the browser sends when someone uploads a picture, then a file that is not one.
    with open(image, "rb") as file:
        _send_from_view(maps, {"type": "upload", "name": attack("uploaded picture name")}, [file.read()])
    _send_from_view(maps, {"type": "upload", "name": attack("uploaded file name")}, [b"not a picture"])
    heatmaps = cw.GradCAM(model, image)
    return {"explorer": explorer, "failing": failing, "maps": maps, "heatmaps": heatmaps}
