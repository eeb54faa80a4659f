"""The shipped default model: a small VGG-style CNN trained on Fashion-MNIST.

Three blocks of 3x3 convolutions with ReLU and 2x2 max-pooling, then a small
classifier, so that it reads like VGG16 (``block1_conv1`` ... ``block3_conv2``)
but trains on a CPU in minutes. ``scripts/train_fashion_cnn.py`` reproduces the
shipped weights with a fixed seed from Debian's ``dataset-fashion-mnist``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

WEIGHTS_FILE = Path(__file__).with_name("fashion_cnn.pt")

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Fashion-MNIST pixel statistics over the 60,000 training images (pixels in [0, 1]).
MEAN = (0.2860,)
STD = (0.3530,)
INPUT_SIZE = (1, 28, 28)


class FashionCNN(nn.Module):
    """VGG-style network for 28x28 grayscale images and 10 classes.

    >>> FashionCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(1, 32), *conv(32, 32), nn.MaxPool2d(2),      # 28 -> 14
            *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),     # 14 -> 7
            *conv(64, 128), *conv(128, 128), nn.MaxPool2d(2),  # 7 -> 3
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(128 * 3 * 3, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def fashion_cnn(pretrained: bool = True) -> FashionCNN:
    """Build the network; with ``pretrained`` load the shipped weights (safely, tensors only)."""
    net = FashionCNN()
    if pretrained:
        state = torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return net.eval()
