"""Which model a lesson shows: VGG16 on a color photo where its ImageNet weights are on the
computer, else the shipped fashion-cnn on a Fashion-MNIST picture, and a line saying which."""
from __future__ import annotations

from typing import NamedTuple

from .._choices import invalid_choice
from ..images import FASHION_SAMPLES, PHOTO_SAMPLES
from . import zoo
from .handle import Model, load_model


class LessonModel(NamedTuple):
    """What a lesson shows: the model, and the name of the sample picture to show it on."""

    model: Model
    picture: str


def lesson_model(picture: str = "sneaker", photo: str = "cat", *, device=None, quiet: bool = False) -> LessonModel:
    """The model and sample picture a lesson shows, and one printed line saying which.

    VGG16 with its ImageNet weights, on the color ``photo``, when torchvision's cache holds
    the weights file (:func:`cnn_widgets.models.weights_cache_file`); otherwise the shipped
    ``fashion-cnn`` on the Fashion-MNIST ``picture``. Nothing is downloaded, and a missing
    or damaged weights file is not an error: the line says why fashion-cnn is shown and
    where the file would go (docs/teaching.md says how to put it there). ``quiet``: no line.

    >>> import cnn_widgets as cw
    >>> model, picture = cw.lesson_model("ankle_boot")  # doctest: +ELLIPSIS
    On screen: ...
    >>> picture in ("ankle_boot", "cat")
    True
    """
    if picture not in FASHION_SAMPLES:
        raise invalid_choice("picture", picture, FASHION_SAMPLES)
    if photo not in PHOTO_SAMPLES:
        raise invalid_choice("photo", photo, PHOTO_SAMPLES)
    weights_file = zoo.weights_cache_file("vgg16")
    problem = "are not at"
    if weights_file.is_file():
        try:
            vgg = load_model("vgg16", device=device)
        except (ValueError, OSError) as error:  # a damaged or replaced file: say so, show what works
            problem = f"could not be loaded ({str(error).splitlines()[0]}) from"
        else:
            _say(f"On screen: VGG16 with its ImageNet weights ({weights_file}) on the photo {photo!r}.", quiet)
            return LessonModel(vgg, photo)
    _say(f"On screen: fashion-cnn (shipped with cnn_widgets) on {picture!r}. VGG16 would be shown on {photo!r}, "
         f"but its ImageNet weights {problem} {weights_file} (docs/teaching.md says how to put them there).", quiet)
    return LessonModel(load_model("fashion-cnn", device=device), picture)


def _say(line: str, quiet: bool) -> None:
    if not quiet:
        print(line)
