"""TrainingMonitor as a training loop and a student see it: the snapshots it promises,
the timeline going back to one, the curves' numbers, the optimizer hook removed on
close, and a training run whose final weights are bit for bit those without it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.widgets.monitor import nice_interval


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.25),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def train(network: nn.Module, steps: int, monitor=None, attach: bool = False) -> nn.Module:
    """A plain loop with a fixed seed: Adam (it has state), dropout (it draws random numbers)."""
    torch.manual_seed(1)
    images, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    if attach:
        monitor.attach(optimizer)
    network.train()
    for step in range(steps):
        batch = slice(16 * (step % 4), 16 * (step % 4) + 16)
        optimizer.zero_grad()
        logits = network(images[batch])
        loss = nn.functional.cross_entropy(logits, labels[batch])
        loss.backward()
        optimizer.step()
        if monitor is not None and not attach:
            accuracy = (logits.argmax(1) == labels[batch]).float().mean()
            monitor.step(loss=loss, accuracy=accuracy)
            if step % 5 == 4:
                monitor.validation(loss=loss.item() * 1.1, accuracy=0.5)
    return network


@pytest.fixture
def classes():
    return [f"class {i}" for i in range(10)]


def test_training_with_the_monitor_ends_with_the_same_weights_bit_for_bit(classes, one_thread):
    alone = train(small_cnn(), 20)
    watched_network = small_cnn()
    model = cw.load_model(watched_network, input_size=(1, 28, 28), classes=classes)
    monitor = cw.TrainingMonitor(model, cw.sample_image("bag"), every=3)
    train(watched_network, 20, monitor)
    assert monitor.wait(timeout=120)
    for (name, expected), actual in zip(alone.state_dict().items(), watched_network.state_dict().values()):
        assert torch.equal(expected, actual), name
    # and the loop's model is as the loop left it: training mode, gradients on, .grad filled
    assert watched_network.training and all(p.requires_grad and p.grad is not None for p in watched_network.parameters())
    monitor.close()


def test_records_a_snapshot_every_n_steps_and_the_timeline_shows_snapshot_k(classes, one_thread):
    network = small_cnn()
    model = cw.load_model(network, input_size=(1, 28, 28), classes=classes)
    monitor = cw.TrainingMonitor(model, cw.sample_image("bag"), every=4)
    train(network, 13, monitor)
    assert monitor.wait(timeout=120)
    assert monitor.snapshot_steps == [0, 4, 8, 12]
    assert [s.step for s in monitor.snapshots] == [0, 4, 8, 12]
    assert monitor.every_text == "a snapshot every 4 steps"
    # The filters change as it learns, and each snapshot kept its own.
    first, last = monitor.snapshots[0].filters, monitor.snapshots[-1].filters
    assert not torch.equal(first, last)
    # Following the newest: the shown pictures are snapshot 3's; moving the timeline shows snapshot 1's.
    newest = monitor.filters_png
    assert monitor.captions["step"] == "step 12"
    monitor.index = 1
    assert monitor.captions["step"] == "step 4"
    assert monitor.filters_png != newest
    assert monitor.filters_png == monitor._pictures[1]["filters_png"]
    monitor.index = -1
    assert monitor.filters_png == newest
    # The curves carry every step's numbers, validation at its own steps.
    assert monitor.curves["train"]["step"] == list(range(1, 14))
    assert all(0.0 <= a <= 1.0 for a in monitor.curves["train"]["accuracy"])
    assert monitor.curves["validation"]["step"] == [5, 10]
    assert len(monitor.snapshots[0].predictions) == 3 and monitor.snapshots[0].cam.shape == (28, 28)
    monitor.close()


def test_attach_counts_optimizer_steps_and_close_removes_the_hook(classes, one_thread):
    network = small_cnn()
    model = cw.load_model(network, input_size=(1, 28, 28), classes=classes)
    monitor = cw.TrainingMonitor(model, cw.sample_image("bag"), every=5)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    monitor.attach(optimizer)
    assert len(optimizer._optimizer_step_post_hooks) == 1
    for _ in range(10):
        optimizer.zero_grad()
        network(torch.rand(2, 1, 28, 28)).sum().backward()
        optimizer.step()
    assert monitor.wait(timeout=120)
    assert monitor.snapshot_steps == [0, 5, 10]
    monitor.close()
    assert len(optimizer._optimizer_step_post_hooks) == 0
    optimizer.step()  # no monitor step any more
    assert monitor.snapshot_steps == [0, 5, 10]


def test_save_gif_has_one_frame_per_snapshot(classes, tmp_path, one_thread):
    from PIL import Image

    network = small_cnn()
    monitor = cw.TrainingMonitor(cw.load_model(network, input_size=(1, 28, 28), classes=classes), cw.sample_image("bag"), every=2)
    train(network, 6, monitor)
    assert monitor.wait(timeout=120)
    with Image.open(monitor.save_gif(tmp_path / "filters.gif")) as gif:
        assert gif.n_frames == 4  # steps 0, 2, 4, 6 (frames differ: the filters moved)
        assert gif.size == Image.open(__import__("io").BytesIO(monitor.filters_png)).size  # the picture the widget shows
    monitor.close()


def test_bad_every_names_the_choices(fashion):
    with pytest.raises(ValueError, match="every must be a positive number of steps or 'auto'"):
        cw.TrainingMonitor(fashion, cw.sample_image("bag"), every=0)


def test_auto_interval_is_a_round_number_of_steps():
    assert [nice_interval(v) for v in (0.3, 3, 11, 101, 480)] == [1, 5, 20, 200, 500]


def test_snapshot_copies_leave_the_model_alone(fashion):
    state = engine.copy_weights(fashion)
    state["features.0.weight"].mul_(0)
    assert fashion.module.features[0].weight.abs().sum() > 0


def test_a_sample_name_is_an_image_and_the_maps_caption_says_which_output_it_shows():
    import cnn_widgets as cw

    monitor = cw.TrainingMonitor(cw.load_model("fashion-cnn"), "sneaker", every=5)
    try:
        assert monitor.wait(timeout=60)
        assert monitor.captions["maps"].startswith("block2_conv2 (after ReLU")
    finally:
        monitor.close()


def test_the_saved_picture_shows_the_loss_falling_and_the_accuracy_rising(classes, one_thread):
    # An executed notebook shows only this picture: it must carry the curves the live view draws
    # (lesson 7's point), not only the small grid of filters it used to be.
    from cnn_widgets.render.charts import LINE_COLORS

    network = small_cnn()
    monitor = cw.TrainingMonitor(cw.load_model(network, input_size=(1, 28, 28), classes=classes), cw.sample_image("bag"), every=4)
    for step in range(12):
        monitor.step(loss=2.3 - 0.15 * step, accuracy=0.1 + 0.07 * step)
    assert monitor.wait(timeout=120)
    picture = monitor.picture()
    grid = monitor._pictures[-1]["filters"]
    assert picture.shape[0] > 3 * grid.shape[0] and picture.shape[1] >= 600
    plot = picture[:225]  # the two charts, above the filters (whose blues are near the line's colour)
    train = np.argwhere(np.abs(plot.astype(int) - np.array(LINE_COLORS[0])).sum(axis=2) < 20)
    # Left of each chart's legend (top right): the loss chart, then the accuracy chart.
    loss, accuracy = train[train[:, 1] < 270], train[(train[:, 1] > 336) & (train[:, 1] < 600)]
    assert len(loss) > 100 and len(accuracy) > 100
    def height_at_start_minus_end(points):  # rows grow downwards
        middle = points[:, 1].mean()
        return points[points[:, 1] > middle, 0].mean() - points[points[:, 1] < middle, 0].mean()
    assert height_at_start_minus_end(loss) > 40  # falls
    assert height_at_start_minus_end(accuracy) < -40  # rises
    # The timeline moves the dashed line (and the filters) the picture shows.
    monitor.index = 1
    assert not np.array_equal(monitor.picture(), picture)
    monitor.close()
