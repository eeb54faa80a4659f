"""The image picker that FeatureMaps, DeepDream, GradCAM and ConvolutionExplainer share: a shipped
sample chosen by name (the ``sample`` trait) or a file uploaded from the
browser (an ``{"type": "upload", "name": ...}`` message with the bytes as a buffer).

A widget that mixes this in defines ``set_image(image, name)`` (which opens the image
with ``_open_image`` and names it with ``_name_image``), declares the ``sample`` and
``image_name`` traits, starts ``_image_version`` at 0, and observes ``sample`` with
``_on_sample``; uploads arrive through the widget's message table (``_on_upload``).
"""
from __future__ import annotations

import traitlets

from .._choices import invalid_choice
from ..images import FASHION_SAMPLES, PHOTO_SAMPLES, SAMPLE_NAMES, load_image, sample_image, sample_name
from .messages import handles

MAX_UPLOAD_BYTES = 20_000_000


class ImageInput:
    @traitlets.validate("sample")
    def _check_sample(self, proposal):
        """Only a shipped sample's name (or "" for the user's own image): never a path or URL."""
        if proposal["value"] not in ("", *SAMPLE_NAMES):
            raise traitlets.TraitError(str(invalid_choice("sample", proposal["value"], SAMPLE_NAMES)))
        return proposal["value"]

    @staticmethod
    def _open_image(image, name: str | None):
        """(PIL image, name): a shipped sample by its name, or anything :func:`load_image` takes."""
        if isinstance(image, str) and image in SAMPLE_NAMES:
            return sample_image(image), image
        return load_image(image), name or sample_name(image)  # cw.sample_image("bag") keeps its name

    def _name_image(self, name: str | None) -> str:
        """A new image is shown: count it and name it (``image_name`` first, so that setting
        ``sample`` does not load the sample again); returns its label."""
        self._image_version += 1
        label = name or f"image {self._image_version}"
        self.image_name = f"{label}#{self._image_version}"
        self.sample = name if name in SAMPLE_NAMES else ""
        return label

    def _default_sample(self) -> str:
        """A shipped sample that suits the model: a garment for grayscale models, a cat otherwise."""
        return "sneaker" if self.model.input_size[0] == 1 else "cat"

    def _sample_options(self) -> list[dict]:
        """The shipped samples, those like the model's own pictures first (garments for a
        grayscale model, photos otherwise); the others say that they are not:
        ``[{"name": "sneaker", "label": "sneaker"}, ..., {"name": "cat", "label": "cat (a color photo: not like fashion-cnn's pictures)"}]``."""
        if self.model.input_size[0] == 1:
            fitting, others, unlike = FASHION_SAMPLES, PHOTO_SAMPLES, "a color photo"
        else:
            fitting, others, unlike = PHOTO_SAMPLES, FASHION_SAMPLES, "a 28x28 gray Fashion-MNIST garment"
        return [{"name": name, "label": name} for name in fitting] + [
            {"name": name, "label": f"{name} ({unlike}: not like {self.model.name}'s pictures)"} for name in others
        ]

    def _on_sample(self, change) -> None:
        if change["new"] and not self.image_name.startswith(change["new"] + "#"):
            self._show_errors(self.set_image, change["new"], change["new"])

    @handles("upload")
    def _on_upload(self, content, buffers) -> None:
        def upload():
            if not buffers:
                raise ValueError("the upload arrived empty")
            data = bytes(buffers[0])
            if len(data) > MAX_UPLOAD_BYTES:
                raise ValueError(f"the file is {len(data) / 1e6:.0f} MB; images up to {MAX_UPLOAD_BYTES / 1e6:.0f} MB are accepted")
            name = str(content.get("name") or "upload")
            try:
                self.set_image(data, name)
            except ValueError as error:  # name the file, not "the given bytes"
                raise ValueError(str(error).replace("the given bytes", f"the file {name!r}")) from None

        self._show_errors(upload)
