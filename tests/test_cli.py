"""The command line writes the pictures the widgets show."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnn_widgets.cli import main


def test_layers_lists_every_conv_layer(capsys):
    assert main(["layers", "fashion-cnn"]) == 0
    out = capsys.readouterr().out
    assert "block1_conv1" in out and "features.0" in out and "128x3x3" not in out and "128x7x7" in out


def test_weights_and_features_write_stitched_pngs(tmp_path):
    weights = tmp_path / "weights.png"
    assert main(["weights", "fashion-cnn", "--layer", "block1_conv1", "--out", str(weights), "--columns", "8"]) == 0
    grid = np.asarray(Image.open(weights))
    assert grid.shape[0] < grid.shape[1]  # 32 tiles in 8 columns: 4 rows
    features = tmp_path / "features.png"
    assert main(["features", "fashion-cnn", "--image", "sneaker", "--layer", "block2_conv1", "--out", str(features), "--labels"]) == 0
    assert Image.open(features).size[0] > 200


def test_bad_layer_is_a_clear_error(tmp_path, capsys):
    assert main(["weights", "fashion-cnn", "--layer", "block9_conv1", "--out", str(tmp_path / "x.png")]) == 2
    assert "Valid choices: block1_conv1" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "cnn_widgets.cli", "features", "--help"], capture_output=True, text=True).stdout
    for option in ("--weights", "--device", "--out", "--layer", "--image", "--colormap", "--normalize"):
        assert option in out


def test_cam_writes_a_heatmap_over_the_image(tmp_path):
    out = tmp_path / "cam.png"
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--class", "Sneaker", "--out", str(out)]) == 0
    picture = np.asarray(Image.open(out))
    assert picture.shape[1:] == (252, 3) and picture.shape[0] > 252 + 20  # the overlay, and its numbered colorbar under it
    assert (picture[252:258] == 255).all() and (picture[258] != 255).any()
    plain = tmp_path / "plain.png"
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--class", "7", "--opacity", "0", "--out", str(plain)]) == 0
    assert not np.array_equal(np.asarray(Image.open(plain)), picture), "opacity 0 shows the image without the heatmap"


def test_cam_names_its_layer_and_warns_about_a_map_that_is_zero_everywhere(tmp_path, capsys):
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--class", "Sneaker", "--out", str(tmp_path / "a.png")]) == 0
    captured = capsys.readouterr()
    assert "at layer block3_conv2" in captured.out and "warning" not in captured.err
    # The conv's own output, before its ReLU, has no positive evidence for this image: said, not silent.
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--class", "Sneaker", "--layer", "block3_conv2:raw",
                 "--out", str(tmp_path / "b.png")]) == 0
    captured = capsys.readouterr()
    assert "at layer block3_conv2:raw" in captured.out
    assert "warning: the Grad-CAM map for Sneaker is zero everywhere" in captured.err


def test_cam_offers_every_registered_method(tmp_path, capsys):
    from cnn_widgets.engine import METHODS

    out = subprocess.run([sys.executable, "-m", "cnn_widgets.cli", "cam", "--help"], capture_output=True, text=True).stdout
    for method in METHODS.values():
        assert method.name in out and method.label.split(" ")[0] in out
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--method", "hirescam", "--out", str(tmp_path / "h.png")]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        main(["cam", "fashion-cnn", "--image", "sneaker", "--method", "hirescan", "--out", str(tmp_path / "x.png")])
    assert exit.value.code == 2 and "'hirescam'" in capsys.readouterr().err


def test_cam_bad_class_is_a_clear_error(tmp_path, capsys):
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--class", "Sneakers", "--out", str(tmp_path / "x.png")]) == 2
    assert "Sneaker" in capsys.readouterr().err


def test_maximize_writes_a_grid_of_the_chosen_filters(tmp_path):
    out = tmp_path / "maximize.png"
    assert main(["maximize", "fashion-cnn", "--layer", "block1_conv2", "--filters", "0-3", "--steps", "4", "--columns", "4", "--scale", "1", "--out", str(out)]) == 0
    picture = np.asarray(Image.open(out))
    assert picture.shape[1] == 4 * 28 + 5 * 2  # four 28 px tiles and their padding in one row


def test_maximize_on_the_first_conv_shows_the_pixels_its_middle_unit_sees(tmp_path, capsys):
    out = tmp_path / "first.png"
    assert main(["maximize", "fashion-cnn", "--layer", "block1_conv1", "--filters", "0-1", "--steps", "8", "--columns", "2", "--scale", "1", "--out", str(out)]) == 0
    assert "the 3x3 pixels that excite the filter's middle unit most, enlarged" in capsys.readouterr().err
    picture = np.asarray(Image.open(out))
    assert picture.shape[1] == 2 * (3 * 20 + 4) + 3 * 2  # two 3x3 windows in blocks of 20 px, framed, and padding
    assert (picture[2:4, 2:66] == 128).all()  # the gray frame on top of the first tile


def test_dream_writes_a_gif_with_every_frame(tmp_path):
    out = tmp_path / "dream.gif"
    assert main(["dream", "fashion-cnn", "--image", "bag", "--layer", "block2_conv1", "--frames", "3", "--octaves", "2", "--steps", "2", "--zoom", "1.2", "--out", str(out)]) == 0
    gif = Image.open(out)
    assert gif.n_frames == 3 and gif.size == (28, 28)


@pytest.mark.parametrize("method, target", [("gradcam", "Sneaker"), ("saliency", "Sneaker"), ("gradcam", "Sandal")])
def test_cam_writes_the_same_picture_the_gradcam_widget_shows(tmp_path, method, target):
    """One heatmap overlay (render.heatmap_overlay) on one scale rule (render.class_map_scale)
    for both: the same image, class, method, colormap and opacity give the same pixels, to the
    last bit, for the top class and for another one (drawn on the top class's scale). The
    widget's saved picture also lists the top predictions and the captions around them."""
    import cnn_widgets as cw
    from picture_search import position_of

    out = tmp_path / "cam.png"
    assert main(["cam", "fashion-cnn", "--image", "sneaker", "--class", target, "--method", method,
                 "--colormap", "viridis", "--opacity", "0.6", "--out", str(out)]) == 0
    widget = cw.GradCAM(cw.load_model("fashion-cnn"), "sneaker", method=method, target=target, colormap="viridis", opacity=0.6)
    shown = widget.picture()
    written = np.asarray(Image.open(out).convert("RGB"))
    assert position_of(written, shown) is not None


def test_features_stage_picks_after_or_before_the_relu(tmp_path):
    pictures = {}
    for stage in ("activation", "conv"):
        out = tmp_path / f"{stage}.png"
        assert main(["features", "fashion-cnn", "--image", "sneaker", "--layer", "block1_conv1", "--stage", stage,
                     "--normalize", "layer", "--colormap", "gray", "--out", str(out)]) == 0
        pictures[stage] = np.asarray(Image.open(out).convert("L"))
    assert not np.array_equal(pictures["activation"], pictures["conv"])
    # After the ReLU every negative value is 0, the darkest level; before it, 0 is a mid gray.
    assert (pictures["activation"] == 0).mean() > (pictures["conv"] == 0).mean()
