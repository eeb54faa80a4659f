"""TrainingMonitor in JupyterLab while a cell trains: the loss curve grows and the filters
change while the training cell is still running (it waits for a file the test writes
only afterwards), and after it ends the timeline goes back to the first snapshot."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import cell_output_text, leave_widgets, open_notebook, run_code, start_code, wait_for_output

SETUP = """
import pathlib, torch, cnn_widgets as cw
model = cw.load_model('fashion-cnn', weights=None)
network = model.module.train().requires_grad_(True)
samples = ['tshirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot']
images = torch.cat([model.preprocess(cw.sample_image(name)) for name in samples])
labels = torch.arange(10)
monitor = cw.TrainingMonitor(model, cw.sample_image('sneaker'), every=10)
monitor
"""

TRAIN = """
optimizer = torch.optim.Adam(network.parameters(), lr=0.003)
stop = pathlib.Path({stop!r})
for step in range(3000):
    optimizer.zero_grad()
    logits = network(images)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    monitor.step(loss=loss, accuracy=(logits.argmax(1) == labels).float().mean())
    if step % 10 == 9:
        monitor.validation(loss=loss.item() * 1.2, accuracy=0.5)
    if stop.exists():
        break
print('stopped at', step + 1)
"""


def train_points(widget) -> int:
    return int(widget.locator('svg[data-chart="loss"] polyline[data-series="train"]').get_attribute("data-points") or 0)


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_monitor_follows_a_running_training_cell(page, jupyter_server, artifact_path, tmp_path):
    stop = jupyter_server.root_dir / "stop-training"
    stop.unlink(missing_ok=True)
    open_notebook(page, jupyter_server, [SETUP])
    widget = wait_for_output(page, ".cw-monitor").first
    expect(widget).to_have_attribute("data-snapshot-count", "1")
    first_filters = widget.locator("img.cw-filters").get_attribute("src")

    index = start_code(page, TRAIN.format(stop=str(stop)))
    # While the cell runs (it cannot end before `stop` exists): the curve grows, snapshots arrive, the filters change.
    page.wait_for_function("w => Number(w.dataset.snapshotCount) >= 3", arg=widget.element_handle(), timeout=120_000)
    points = train_points(widget)
    assert points >= 1
    page.wait_for_function(
        "([w, n]) => Number(w.querySelector('svg[data-chart=\"loss\"] polyline[data-series=\"train\"]').dataset.points) > n",
        arg=[widget.element_handle(), points], timeout=60_000)
    expect(widget.locator("img.cw-filters")).not_to_have_attribute("src", first_filters)
    assert not stop.exists()
    widget.screenshot(path=artifact_path("monitor-training-lab.png"))

    stop.write_text("stop")
    assert run_code(page, "print(monitor.wait(timeout=120))") == "True"
    assert cell_output_text(page, index).startswith("stopped at")
    count = int(run_code(page, "print(len(monitor.snapshot_steps))"))
    expect(widget).to_have_attribute("data-snapshot-count", str(count))
    newest = widget.locator("img.cw-filters").get_attribute("src")

    # The timeline goes back to step 0: the first filters again, and Python knows.
    slider = widget.locator("input.cw-timeline")
    slider.focus()
    page.keyboard.press("Home")
    expect(widget).to_have_attribute("data-shown-step", "0")
    expect(widget.locator("svg[data-chart=\"loss\"] line.cw-shown-step")).to_have_attribute("data-step", "0")
    expect(widget.locator(".cw-step-label")).to_contain_text(f"step 0 (1 of {count})")
    expect(widget.locator("img.cw-filters")).not_to_have_attribute("src", newest)
    assert run_code(page, "print(monitor.index, monitor.captions['step'])") == "0 step 0"
    leave_widgets(page)  # no saved-picture update to rebuild the view under the camera
    widget.screenshot(path=artifact_path("monitor-timeline-lab.png"))
