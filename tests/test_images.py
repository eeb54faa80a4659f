"""Getting pictures in: every accepted source, mode conversion, and refusals."""
from __future__ import annotations

import http.server
import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import cnn_widgets as cw


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_source_gives_the_same_pixels(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    picture = Image.fromarray(array)
    path = tmp_path / "picture.png"
    picture.save(path)
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    for source in (str(path), path, path.read_bytes(), picture, array, tensor, array.astype(np.float32) / 255):
        loaded = cw.load_image(source)
        assert loaded.mode == "RGB" and loaded.size == (20, 12)
        np.testing.assert_array_equal(np.asarray(loaded), array)


def test_url_source_is_fetched(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(Image.new("RGB", (5, 4), (10, 20, 30))))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        loaded = cw.load_image(f"http://127.0.0.1:{server.server_port}/a.png")
        assert loaded.getpixel((0, 0)) == (10, 20, 30)
    finally:
        server.shutdown()


def test_modes_are_converted():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert cw.load_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # composited on white
    palette = Image.new("P", (4, 4), 3)
    assert cw.load_image(palette).mode == "RGB"
    gray = Image.new("L", (4, 4), 77)
    assert cw.load_image(gray).mode == "L"
    assert cw.load_image(gray, mode="RGB").getpixel((0, 0)) == (77, 77, 77)
    assert cw.load_image(Image.new("RGB", (4, 4), (0, 255, 0)), mode="L").mode == "L"
    sixteen = Image.fromarray(np.arange(16, dtype=np.uint16).reshape(4, 4) * 1000)
    assert cw.load_image(sixteen).mode == "L"


def test_non_images_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="not an image"):
        cw.load_image(b"definitely not a picture")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        cw.load_image(text)
    with pytest.raises(FileNotFoundError, match="no image file"):
        cw.load_image(tmp_path / "missing.png")
    with pytest.raises(TypeError, match="path, URL, bytes"):
        cw.load_image(3.5)
    with pytest.raises(ValueError, match="mode"):
        cw.load_image(Image.new("L", (2, 2)), mode="CMYK")
    with pytest.raises(ValueError, match="NaN"):
        cw.load_image(np.full((2, 2), np.nan))


def test_decompression_bombs_are_refused():
    bomb = png_bytes(Image.new("1", (12_000, 12_000)))  # 144 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(ValueError, match="decompression bomb"):
        cw.load_image(bomb)


@pytest.mark.parametrize("name", cw.SAMPLE_NAMES)
def test_every_sample_image_loads(name):
    image = cw.sample_image(name)
    assert image.width >= 28 and image.height >= 28


def test_fashion_samples_are_grayscale_28px_and_photos_color():
    assert cw.sample_image("ankle_boot").mode == "L" and cw.sample_image("ankle boot").size == (28, 28)
    assert cw.sample_image("cat").mode == "RGB"


def test_unknown_sample_lists_choices():
    with pytest.raises(ValueError, match="did you mean 'coffee'.*Valid choices: cat, coffee"):
        cw.sample_image("cofee")
