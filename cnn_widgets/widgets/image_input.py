"""The image picker that FeatureMaps, DeepDream and GradCAM share: a shipped
sample chosen by name (the ``sample`` trait) or a file uploaded from the
browser (an ``{"type": "upload", "name": ...}`` message with the bytes as a buffer).

A widget that mixes this in defines ``set_image(image, name)``, declares the
``sample`` and ``image_name`` traits, and registers ``_on_sample`` and
``_on_message``.
"""
from __future__ import annotations

import traitlets

from .._choices import invalid_choice
from ..images import SAMPLE_NAMES

MAX_UPLOAD_BYTES = 20_000_000


class ImageInput:
    @traitlets.validate("sample")
    def _check_sample(self, proposal):
        """Only a shipped sample's name (or "" for the user's own image): never a path or URL."""
        if proposal["value"] not in ("", *SAMPLE_NAMES):
            raise traitlets.TraitError(str(invalid_choice("sample", proposal["value"], SAMPLE_NAMES)))
        return proposal["value"]

    def _default_sample(self) -> str:
        """A shipped sample that suits the model: a garment for grayscale models, a cat otherwise."""
        return "sneaker" if self.model.input_size[0] == 1 else "cat"

    def _on_sample(self, change) -> None:
        if change["new"] and not self.image_name.startswith(change["new"] + "#"):
            self._show_errors(self.set_image, change["new"], change["new"])

    def _on_message(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "upload":
            return

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
