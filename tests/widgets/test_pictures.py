"""One picture trait type owns the encoding: the format is decided in one place."""
from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pytest
import traitlets
from PIL import Image

import cnn_widgets as cw
from cnn_widgets.widgets import pictures
from cnn_widgets.widgets.base import BaseWidget
from cnn_widgets.widgets.pictures import FORMAT, Picture

WIDGETS = Path(pictures.__file__).parent
SIGNATURE = {"png": b"\x89PNG\r\n\x1a\n", "webp": b"RIFF"}[FORMAT]


def decode(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == FORMAT.upper()
    return np.asarray(image)


def widget_classes() -> list[type]:
    return [getattr(cw, name) for name in cw.__all__ if isinstance(getattr(cw, name), type) and issubclass(getattr(cw, name), BaseWidget)]


def test_every_picture_a_widget_syncs_is_a_picture_trait():
    plain = []
    for widget in widget_classes():
        for name, trait in widget.class_traits(sync=True).items():
            inner = trait._trait if isinstance(trait, traitlets.List) else trait
            if isinstance(inner, traitlets.Bytes) and not isinstance(inner, Picture):
                plain.append(f"{widget.__name__}.{name}")
    assert plain == []
    assert isinstance(cw.DeepDream.class_traits()["frames_png"]._trait, Picture)


def test_no_widget_module_but_pictures_calls_the_image_encoder():
    encoders = {"encode", "encode_png"}
    callers = []
    for path in sorted(WIDGETS.glob("*.py")):
        if path.name == "pictures.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in encoders:
                callers.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and any(alias.name in encoders for alias in node.names):
                callers.append(f"{path.name}:{node.lineno} import")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "save" and any(k.arg == "format" for k in node.keywords):
                callers.append(f"{path.name}:{node.lineno} .save(format=...)")
    assert callers == []


def test_a_picture_set_on_a_widget_arrives_in_the_one_format_pixel_for_pixel(fashion):
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block1_conv1")
    for name in ("grid_png", "tile_png", "image_png"):
        assert getattr(maps, name).startswith(SIGNATURE), name
    stripes = np.zeros((6, 9, 3), dtype=np.uint8)
    stripes[::2] = (255, 128, 0)
    maps.image_png = stripes
    assert maps.image_png.startswith(SIGNATURE)
    assert np.array_equal(decode(maps.image_png), stripes)
    maps.image_png = Image.fromarray(stripes[..., 0])  # a PIL image works too
    assert np.array_equal(decode(maps.image_png), stripes[..., 0])


def test_the_same_pixels_give_the_same_bytes_so_nothing_is_sent_again(fashion):
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block1_conv1")
    changes = []
    maps.observe(changes.append, names=["image_png"])
    pixels = np.full((5, 5), 77, dtype=np.uint8)
    maps.image_png = pixels
    maps.image_png = pixels.copy()
    assert len(changes) == 1


def test_a_picture_trait_refuses_bytes_in_another_format_and_pixels_it_cannot_encode(fashion):
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block1_conv1")
    shown = maps.image_png
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    with pytest.raises(traitlets.TraitError, match=f"not {FORMAT.upper()}"):
        maps.image_png = jpeg.getvalue()
    with pytest.raises(traitlets.TraitError, match="must be uint8"):
        maps.image_png = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(traitlets.TraitError, match=r"shape \(H, W\) or \(H, W, 3\)"):
        maps.image_png = np.zeros((4, 4, 2), dtype=np.uint8)
    assert maps.image_png == shown
    maps.image_png = b""  # shows nothing
    assert maps.image_png == b""
