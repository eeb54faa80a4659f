"""Pictures a widget sends to its view: one trait type, one format, one encoder call.

A synced picture is a :class:`Picture` trait: set it to the pixels (a uint8 array,
(H, W) gray or (H, W, 3) RGB, or a PIL image) and it holds their encoded bytes,
which travel to the view as a binary buffer. :data:`FORMAT` is the one place the
format is decided; the views show whatever image bytes arrive (``imageURL`` in
``js/common.js`` reads the type from the bytes). Work that encodes ahead of time (a
cache of drawn grids, frames streamed as message buffers, pictures drawn in a
background thread) calls :func:`encode_picture`, and the trait takes those bytes as they are.
"""
from __future__ import annotations

import numpy as np
import traitlets
from PIL import Image

from .. import render

# PNG: lossless and deterministic (the same pixels give the same bytes, so a picture
# that did not change is not sent again), and quick at render's compression level.
FORMAT = "png"

_SIGNATURES = {
    "png": lambda data: data[:8] == b"\x89PNG\r\n\x1a\n",
    "webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
}


def encode_picture(picture, format: str = FORMAT) -> bytes:
    """The bytes a view shows for ``picture`` (a uint8 (H, W) or (H, W, 3) array, or a PIL image).

    ``format`` is for the one other use: a notebook's saved picture must be ``"png"``
    (its display data says ``image/png``) whatever the views receive.

    >>> encode_picture(np.zeros((2, 2, 3), dtype=np.uint8))[:4]
    b'\\x89PNG'
    """
    if isinstance(picture, Image.Image):
        picture = np.asarray(picture if picture.mode in ("L", "RGB") else picture.convert("RGB"))
    return render.encode(picture, format)


class Picture(traitlets.Bytes):
    """A synced picture trait: assign pixels and it holds them encoded in :data:`FORMAT`;
    ``b""`` shows nothing; bytes from :func:`encode_picture` are kept as they are, and bytes in
    any other format are refused.

    >>> class Card(traitlets.HasTraits):
    ...     face = Picture()
    >>> card = Card(); card.face = np.full((4, 4), 255, dtype=np.uint8); card.face[:4]
    b'\\x89PNG'
    """

    info_text = f"pixels (a uint8 (H, W) or (H, W, 3) array or a PIL image), or {FORMAT.upper()} bytes"

    def __init__(self, default_value=b"", **kwargs) -> None:
        super().__init__(default_value, **kwargs)

    def validate(self, obj, value):
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            if data and not _SIGNATURES[FORMAT](data):
                raise traitlets.TraitError(f"The '{self.name}' trait of {type(obj).__name__} takes {self.info_text}, got bytes that are not {FORMAT.upper()}")
            return data
        try:
            return encode_picture(value)
        except (TypeError, ValueError) as error:
            raise traitlets.TraitError(f"The '{self.name}' trait of {type(obj).__name__} takes {self.info_text}: {error}") from None
