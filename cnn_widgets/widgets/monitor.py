"""TrainingMonitor: follows a model while a plain PyTorch loop trains it.

The loop calls ``monitor.step(loss=..., accuracy=...)`` once per step (and
``monitor.validation(...)`` when it evaluates), or a trainer does through
``monitor.lightning_callback()`` / ``monitor.huggingface_callback()``; the widget draws the curves in the
browser from the numbers and, every ``every`` steps, shows a snapshot: the first
layer's filters, the feature maps of one image at ``layer``, the top predictions
and a Grad-CAM of that image. A timeline slider goes back to any snapshot.

Why it never slows the loop down much, and never changes it:

- On the training thread, ``step`` appends two numbers and, at a snapshot step,
  copies the weights (:func:`cnn_widgets.engine.copy_weights`, a ``clone`` of each
  tensor). Nothing else: no forward pass, no lock, no message to the browser.
- The pictures are computed on a private copy of the network
  (:class:`cnn_widgets.engine.ModelCopy`) in one dedicated background thread that
  takes the snapshots in order from a queue. (The shared :class:`~.worker.Worker`
  runs only the latest request, which would drop snapshots the timeline promises.)
- The same thread sends to the browser at most every ``SEND_INTERVAL_S``: the
  curves and the newest snapshot, whatever number of steps happened in between.
- ``every="auto"`` (default) picks the snapshot interval so that snapshots cost
  about ``SNAPSHOT_BUDGET`` (5 %) of the training time: after each snapshot,
  N = (copy + render seconds) / (5 % x mean seconds per step), rounded up to
  1, 2 or 5 x a power of ten, and at least 10.
"""
from __future__ import annotations

import math
import queue
import threading
import time

import torch
import traitlets

from .. import engine, render
from ..frontend import bundled
from ..models import as_model
from ..render.convolution import text_band
from .base import BaseWidget
from .image_input import ImageInput
from .pictures import Picture, encode_picture

SEND_INTERVAL_S = 0.25  # the browser redraws four times a second at most: enough to see it move
SNAPSHOT_BUDGET = 0.05  # with every="auto", snapshots take about this fraction of the training time
MIN_AUTO_EVERY = 10
MAX_CURVE_POINTS = 2000  # longer curves are thinned (every k-th point) before they travel


def nice_interval(value: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value``.

    >>> nice_interval(7), nice_interval(10), nice_interval(130)
    (10, 10, 200)
    """
    value = max(1.0, float(value))
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover


class TrainingMonitor(BaseWidget):
    """Watch a model learn: loss/accuracy curves and snapshots of its filters, feature
    maps, predictions and Grad-CAM for ``image``, with a timeline to look back.

    ``every``: a snapshot every N steps, or ``"auto"`` (see the module's docstring).
    The first snapshot (step 0) is the model as it is when the monitor is made.

    >>> import torch, cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> monitor = cw.TrainingMonitor(model, cw.sample_image("bag"), every=2)
    >>> network = model.module.train().requires_grad_(True)  # zoo models load frozen, for viewing
    >>> optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    >>> images, labels = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    >>> for _ in range(4):
    ...     optimizer.zero_grad()
    ...     loss = torch.nn.functional.cross_entropy(network(images), labels)
    ...     loss.backward(); optimizer.step()
    ...     monitor.step(loss=loss)
    >>> monitor.wait(), monitor.snapshot_steps
    (True, [0, 2, 4])
    >>> monitor.close()
    """

    _esm = bundled("monitor.js")
    _css = bundled("monitor.css")

    curves = traitlets.Dict({}).tag(sync=True)
    snapshot_steps = traitlets.List([]).tag(sync=True)
    index = traitlets.Int(-1).tag(sync=True)  # the snapshot shown; -1: follow the newest
    filters_png = Picture().tag(sync=True)
    maps_png = Picture().tag(sync=True)
    cam_png = Picture().tag(sync=True)
    predictions = traitlets.List([]).tag(sync=True)
    captions = traitlets.Dict({}).tag(sync=True)
    every_text = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model, image, layer=None, every: "int | str" = "auto", **kwargs) -> None:
        # Set first: close() (also run when a failed constructor's object is collected) reads them.
        self._hook, self._closed = None, threading.Event()
        super().__init__(**kwargs)
        if every != "auto" and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ValueError(f"every must be a positive number of steps or 'auto', got {every!r}")
        self.model = as_model(model)
        self.every = every
        self._interval = MIN_AUTO_EVERY if every == "auto" else every
        picture, _ = ImageInput._open_image(image, None)  # a shipped sample's name, or anything load_image takes
        self._copy = engine.ModelCopy(self.model, picture, layer)
        self.layer = self._copy.layer
        self._image = render.to_uint8_image(self.model.deprocess(self._copy.inputs)[0])
        self._steps = 0
        self._train: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
        self._validation: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
        self._snapshots: list[engine.TrainingSnapshot] = []
        self._pictures: list[dict] = []
        self._lock = threading.Lock()  # guards the lists above between the loop and the render thread
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._step_started = time.perf_counter()
        self._step_seconds = 0.0
        self.snapshot_seconds = 0.0  # copying + drawing the snapshots so far (wall seconds), for benchmarks
        self._dirty = True
        self._update_every_text()
        self.observe(self._show_index, "index")
        # Snapshot 0 (the untrained filters) is computed here, before the widget is shown, so
        # that its first picture is never empty; the later ones in the background thread.
        with self._lock:
            self._pending += 1
        self._render(0, engine.copy_weights(self.model), 0.0)
        self._publish()
        self._thread = threading.Thread(target=self._render_loop, daemon=True, name="TrainingMonitor")
        self._thread.start()

    # -- what the training loop calls ----------------------------------------------------------
    def step(self, loss=None, accuracy=None) -> None:
        """One training step has ended: record its ``loss`` and ``accuracy`` (numbers or
        0-d tensors; accuracy as a fraction 0..1) and take a snapshot when one is due."""
        now = time.perf_counter()
        seconds, self._step_started = now - self._step_started, now
        # The first step's time also holds whatever ran between the monitor's creation and the
        # loop (another cell, data loading): the mean step time starts from the second step.
        if self._steps == 1:
            self._step_seconds = seconds
        elif self._steps > 1:
            self._step_seconds = 0.9 * self._step_seconds + 0.1 * seconds
        self._steps += 1
        if loss is not None or accuracy is not None:  # attach() and trainers count steps without numbers
            self._record(self._train, loss, accuracy)
        if self._steps % self._interval == 0:
            self._take_snapshot()

    def record(self, loss=None, accuracy=None) -> None:
        """Record training ``loss`` and ``accuracy`` at the current step without counting a
        step: for numbers that arrive after their step (a trainer's logs, every few steps)."""
        self._record(self._train, loss, accuracy)

    def validation(self, loss=None, accuracy=None) -> None:
        """Record validation ``loss`` and ``accuracy`` (fraction 0..1) at the current step."""
        self._record(self._validation, loss, accuracy)

    def lightning_callback(self, accuracy: str = "train_acc", val_loss: str = "val_loss", val_accuracy: str = "val_acc"):
        """A PyTorch Lightning ``Callback`` that feeds this monitor (``lightning`` installed):
        one step per training batch, its loss from ``training_step``'s result, the other
        numbers from what the module logs (``self.log``) under the given names.
        ``Trainer(callbacks=[monitor.lightning_callback()])``; see :mod:`.callbacks`."""
        from .callbacks import lightning_callback

        return lightning_callback(self, accuracy=accuracy, val_loss=val_loss, val_accuracy=val_accuracy)

    def huggingface_callback(self, accuracy: str = "accuracy"):
        """A Hugging Face ``TrainerCallback`` that feeds this monitor (``transformers`` installed):
        one step per optimizer step, the losses and ``eval_<accuracy>`` from the Trainer's logs.
        ``Trainer(..., callbacks=[monitor.huggingface_callback()])``; see :mod:`.callbacks`."""
        from .callbacks import huggingface_callback

        return huggingface_callback(self, accuracy=accuracy)

    def attach(self, optimizer: torch.optim.Optimizer) -> "TrainingMonitor":
        """Count ``optimizer.step()`` calls as training steps (snapshots without numbers): a
        step post-hook, removed by :meth:`detach` or :meth:`close`. Returns the monitor."""
        self.detach()
        self._hook = optimizer.register_step_post_hook(lambda _optimizer, _args, _kwargs: self.step())
        return self

    def detach(self) -> None:
        """Remove the optimizer hook installed by :meth:`attach` (nothing if none)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every snapshot taken so far is computed and sent; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._pending or self._dirty:
            if not self._thread.is_alive() or (deadline is not None and time.monotonic() > deadline):
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Remove the optimizer hook, stop the background thread and close the widget."""
        self.detach()
        self._closed.set()
        super().close()

    # -- looking back --------------------------------------------------------------------------
    @property
    def snapshots(self) -> list[engine.TrainingSnapshot]:
        """The computed snapshots, oldest first."""
        with self._lock:
            return list(self._snapshots)

    def picture(self):
        """What the live view shows, as one picture (the notebook's saved picture of the widget):
        a title naming the shown snapshot's step, the loss and accuracy curves over the training
        steps (train and validation, a dashed line at that snapshot), the snapshot's first-layer
        filters with their numbered scale, and its top guesses for the image.

        >>> import cnn_widgets as cw
        >>> monitor = cw.TrainingMonitor(cw.load_model("fashion-cnn", weights=None), "bag", every=2)
        >>> monitor.step(loss=2.3, accuracy=0.1); monitor.step(loss=2.0, accuracy=0.3)
        >>> monitor.wait(), monitor.picture().shape[1] > 600
        (True, True)
        >>> monitor.close()
        """
        with self._lock:
            if not self._pictures:
                return None
            k = self.index if 0 <= self.index < len(self._pictures) else len(self._pictures) - 1
            shown, step = self._pictures[k], self._snapshots[k].step
            train, validation, steps = _thinned(self._train), _thinned(self._validation), self._steps
        return _monitor_picture(shown, step, steps, train, validation)

    def save_gif(self, path, duration_ms: int = 200):
        """Save the first layer's filters at every snapshot as an animated GIF; returns the path.

        >>> import tempfile, pathlib, cnn_widgets as cw
        >>> monitor = cw.TrainingMonitor(cw.load_model("fashion-cnn", weights=None), cw.sample_image("bag"))
        >>> _ = monitor.wait(); path = monitor.save_gif(pathlib.Path(tempfile.mkdtemp()) / "filters.gif")
        >>> path.read_bytes()[:3]
        b'GIF'
        >>> monitor.close()
        """
        with self._lock:
            frames = [picture["filters"] for picture in self._pictures]  # uint8 (H, W, 3) already
        if not frames:
            raise ValueError("no snapshot yet: call save_gif after the first snapshot is computed (monitor.wait())")
        return render.save_gif(frames, path, duration_ms=duration_ms)

    # -- inside ----------------------------------------------------------------------------------
    def _record(self, series: dict, loss, accuracy) -> None:
        with self._lock:
            series["step"].append(self._steps)
            series["loss"].append(_number(loss))
            series["accuracy"].append(_number(accuracy))
            self._dirty = True

    def _take_snapshot(self) -> None:
        started = time.perf_counter()
        state = engine.copy_weights(self.model)
        with self._lock:
            self._pending += 1
        self._queue.put((self._steps, state, time.perf_counter() - started))

    def _render_loop(self) -> None:
        last_sent = 0.0
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=SEND_INTERVAL_S / 2)
            except queue.Empty:
                item = None
            if item is not None:
                self._render(*item)
            if self._dirty and time.monotonic() - last_sent >= SEND_INTERVAL_S:
                self._publish()
                last_sent = time.monotonic()

    def _render(self, step: int, state: dict, copy_seconds: float) -> None:
        started = time.perf_counter()
        try:
            snapshot = self._copy.snapshot(step, state)
            pictures = self._pictures_of(snapshot)
        except Exception as error:  # shown in the widget; training goes on
            self.error = f"{type(error).__name__}: {error}"
            with self._lock:
                self._pending -= 1
            return
        with self._lock:
            self._snapshots.append(snapshot)
            self._pictures.append(pictures)
            self._dirty = True
        cost = copy_seconds + time.perf_counter() - started
        self.snapshot_seconds += cost
        if self.every == "auto" and self._step_seconds > 0:
            self._interval = max(MIN_AUTO_EVERY, nice_interval(cost / (SNAPSHOT_BUDGET * self._step_seconds)))
            self._update_every_text()
        with self._lock:
            self._pending -= 1

    def _pictures_of(self, snapshot: engine.TrainingSnapshot) -> dict:
        filters = snapshot.filters
        tiles, _ = render.weight_tiles(filters, normalization="layer")
        kh, kw = filters.shape[2:]
        filters_picture = render.grid(tiles, scale=max(1, render.tile_scale(kh, kw, target=24)), padding=1)
        maps = snapshot.maps.numpy()
        shown = maps[:32]
        map_tiles = render.colorize(render.normalize(shown, "layer"), "viridis")
        maps_picture = render.grid(map_tiles, scale=max(1, 48 // max(shown.shape[1:])), padding=1)
        heat = snapshot.cam.numpy()
        heat = heat / heat.max() if heat.max() > 0 else heat  # its own maximum is yellow: where it looks most
        cam_picture = render.upscale(render.overlay(self._image, heat), max(1, 140 // self._image.shape[0]))
        largest = float(filters.abs().max())
        cam_text = (f"Grad-CAM for its top class, '{snapshot.cam_class}': flat (no region raises that class's score yet)"
                    if snapshot.cam_flat else
                    f"Grad-CAM for its top class, '{snapshot.cam_class}': yellow = its strongest evidence, black = none")
        return {
            "filters": filters_picture,
            "filters_scale": None if filters.shape[1] == 3 else render.colorbar_scale(
                -largest if largest > 0 else -1.0, largest if largest > 0 else 1.0, "diverging",
                note="weight: one scale for all filters"),
            "filters_png": encode_picture(filters_picture),
            "maps_png": encode_picture(maps_picture),
            "cam_png": encode_picture(cam_picture),
            "predictions": [{"name": p.name, "probability": p.probability} for p in snapshot.predictions],
            "captions": {
                "filters": f"{snapshot.filters_layer}: all {filters.shape[0]} filters ({kh}x{kw} weights{_channels_text(filters)}); "
                + (f"as colour, mid-gray = 0, one scale up to ±{largest:.2g}" if filters.shape[1] == 3 else
                   f"blue = −{largest:.2g}, white = 0, red = +{largest:.2g} (one scale)"),
                "maps": f"{engine.activations.layer_stage(self.model.layer(snapshot.layer)).describe()}: {shown.shape[0]} of {maps.shape[0]} channels, "
                f"{maps.shape[1]}x{maps.shape[2]}; purple = {float(shown.min()):.2g}, yellow = {float(shown.max()):.2g} (one scale)",
                "cam": cam_text,
                "step": f"step {snapshot.step}",
            },
        }

    def _publish(self) -> None:
        with self._lock:
            self._dirty = False
            curves = {"train": _thinned(self._train), "validation": _thinned(self._validation), "steps": self._steps}
            steps = [snapshot.step for snapshot in self._snapshots]
        self.curves = curves
        self.snapshot_steps = steps
        if self.index < 0:
            self._show(len(steps) - 1)

    @traitlets.validate("index")
    def _check_index(self, proposal):
        with self._lock:
            count = max(len(self._snapshots), len(self._pictures))
        if not -1 <= proposal["value"] < max(count, 1):
            raise traitlets.TraitError(
                f"index {proposal['value']} is out of range (valid: -1 to follow the newest snapshot, or 0-{max(count - 1, 0)})"
            )
        return proposal["value"]

    def _show_index(self, change) -> None:
        self._show(change["new"] if change["new"] >= 0 else len(self._pictures) - 1)

    def _show(self, k: int) -> None:
        with self._lock:
            if not 0 <= k < len(self._pictures):
                return
            pictures = self._pictures[k]
        self.filters_png, self.maps_png, self.cam_png = pictures["filters_png"], pictures["maps_png"], pictures["cam_png"]
        self.predictions = pictures["predictions"]
        self.captions = pictures["captions"]

    def _update_every_text(self) -> None:
        self.every_text = f"a snapshot every {self._interval} steps" + (" (auto: ~5 % of the training time)" if self.every == "auto" else "")


CHART_SIZE = (320, 200)  # each curve of the saved picture, in pixels
SAVED_FILTERS_SIZE = 320  # the saved picture's filter grid is enlarged to about this many pixels


def _monitor_picture(shown: dict, step: int, steps: int, train: dict, validation: dict):
    """The saved picture of a TrainingMonitor showing snapshot ``shown`` (taken at ``step``) of a
    run of ``steps`` steps, with the ``train`` and ``validation`` curves (as :meth:`_record` keeps them)."""
    def percent(values):
        return [None if value is None else 100.0 * value for value in values]

    width, height = CHART_SIZE
    loss = render.line_chart(
        [("train", train["step"], train["loss"]), ("validation", validation["step"], validation["loss"])],
        title="loss (lower is better)", x_label="training step", y_label="loss", width=width, height=height, marker=step)
    has_accuracy = any(value is not None for value in train["accuracy"] + validation["accuracy"])
    accuracy = render.line_chart(
        [("train", train["step"], percent(train["accuracy"])),
         ("validation", validation["step"], percent(validation["accuracy"]))],
        title="accuracy (%, higher is better)" if has_accuracy else "accuracy (%): none recorded",
        x_label="training step", y_label="accuracy (%)", width=width, height=height, y_range=(0, 100), marker=step)
    curves = render.side_by_side([loss, accuracy])
    filters = render.enlarge(shown["filters"], SAVED_FILTERS_SIZE)
    if shown.get("filters_scale") is not None:
        filters = render.with_colorbar(filters, shown["filters_scale"], "diverging")
    guesses = ["top guesses for the image:"] + [
        f"{p['name']}: {100 * p['probability']:.0f}%" for p in shown["predictions"][:5]]
    title = (f"Training monitor: the network at step {step} of {steps} "
             f"(dashed line){'' if step == steps else '; the last snapshot so far' if step > 0 else ''}")
    captions = shown["captions"]
    return render.stacked([
        text_band([title], curves.shape[1]),
        curves,
        text_band([f"filters at step {step}: {captions['filters']}".replace("\u2212", "-")], curves.shape[1]),
        render.side_by_side([filters, text_band(guesses, max(160, curves.shape[1] - filters.shape[1] - 16))]),
    ], gap=8)


def _channels_text(filters: torch.Tensor) -> str:
    """How a filter's input channels are drawn (as render.weight_tiles' "auto" view does)."""
    channels = filters.shape[1]
    if channels == 3:
        return ", RGB"
    return "" if channels == 1 else f", mean of {channels} input channels"


def _number(value) -> float | None:
    """A float from a number or a 0-d tensor (detached: the loop's graph is left alone)."""
    if value is None:
        return None
    return float(value.detach().item()) if isinstance(value, torch.Tensor) else float(value)


def _thinned(series: dict) -> dict:
    """Every k-th point of a long curve (always with the last), so a message stays small."""
    count = len(series["step"])
    stride = max(1, math.ceil(count / MAX_CURVE_POINTS))
    keep = list(range(0, count, stride))
    if count and keep[-1] != count - 1:
        keep.append(count - 1)
    return {name: [values[i] for i in keep] for name, values in series.items()}
