"""Words and numbers in saved pictures: a small kernel's numbers drawn as the page writes them."""
from __future__ import annotations

import numpy as np

from cnn_widgets import render
from cnn_widgets.render.text import text_color_on


def hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[at : at + 2], 16) for at in (1, 3, 5))


def test_each_number_sits_on_its_colour_in_a_readable_ink():
    kernel = np.array([[[-0.3, 0.0, 0.25], [0.1, -0.05, 0.3], [0.02, 0.2, -0.1]]])
    (table,) = render.kernel_cells(kernel, "summary", (-0.3, 0.3))
    picture = render.kernel_tables([table], 400)
    drawn = {tuple(int(c) for c in pixel) for pixel in picture.reshape(-1, 3)}
    assert {hex_rgb(color) for row in table["colors"] for color in row} <= drawn, "every cell's colour is in the picture"
    # A one-number kernel: the cell is the picture's bottom part; its text is the ink farthest from the cell's colour.
    for value, ink in [(-1.0, (255, 255, 255)), (0.0, (0, 0, 0))]:
        (cell,) = render.kernel_cells(np.array([[[value]]]), "summary", (-1.0, 1.0))
        background = np.array(hex_rgb(cell["colors"][0][0]))
        assert text_color_on(cell["colors"][0][0]) == ink
        pixels = render.kernel_tables([cell], 200)[-10:].reshape(-1, 3).astype(int)
        pixels = pixels[(pixels != 255).any(axis=1) | (background == 255).all()]  # the cell, not the white margin
        farthest = pixels[np.abs(pixels - background).sum(axis=1).argmax()]
        assert np.abs(farthest - np.array(ink)).max() < 90, (value, farthest)


def test_other_numbers_draw_another_picture_and_tables_wrap_to_the_width():
    kernel = np.linspace(-1, 1, 9).reshape(1, 3, 3)
    one = render.kernel_tables(render.kernel_cells(kernel, "summary", (-1, 1)), 300)
    other = render.kernel_tables(render.kernel_cells(kernel * 0.5, "summary", (-1, 1)), 300)
    assert one.shape[1] == 300 and not np.array_equal(one, other)
    many = render.kernel_cells(np.linspace(-1, 1, 9 * 8).reshape(8, 3, 3), "channels", (-1, 1))
    assert len(many) == 8
    assert render.kernel_tables(many, 200).shape[0] > 2 * render.kernel_tables(many[:1], 200).shape[0]


def test_numbers_are_written_as_the_live_view_writes_them():
    # The cases of formatWeight's test in js/tests/kernel_numbers.test.js.
    cases = {0.263693988: "0.264", -0.0102379: "-0.0102", 0: "0", 2.5e-6: "2.5e-6", 12.0: "12", 1234.5: "1.2e+3"}
    assert {value: render.format_weight(value) for value in cases} == cases
