"""What an activation-maximization run will cost, before it runs.

A step is a forward pass up to the target layer and a backward pass to the pixels,
for every image. How long that takes depends on the device, the image size, the
batch and the machine's load far more than any count of operations can say (steps
reached from 12 % to 50 % of a matmul's throughput on one 2-core CPU), so the seconds
are measured: :func:`step_seconds` times a few real steps of the actual model at the
actual size and batch, once per process. :func:`step_flops` counts a step's arithmetic,
to scale a measured step to another image size without running it.
"""
from __future__ import annotations

import threading
import time

from ...models import as_model

# A measurement times steps for about this long after one warm-up step (the first step of a
# process pays for allocations and thread start-up), and at most this many.
CALIBRATION_S = 0.5
CALIBRATION_STEPS = 10
_step_seconds: dict[tuple, float] = {}


def step_flops(model, layer=None, size=None, images: int = 1, objective: str = "channel") -> float:
    """Floating-point operations of one optimization step: ``images`` images of ``size``
    (int or (height, width); default the model's input size) through the conv layers up
    to ``layer`` (all of them, at the model's input size, for ``objective="class"``) and back to the pixels.

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> step_flops(model, "block2_conv1", 28, images=16) > step_flops(model, "block1_conv1", 28, images=16) > 0
    True
    """
    model = as_model(model)
    if objective == "class":  # the whole network, at its own input size (maximize resizes to it)
        size = None
    height, width = (size, size) if isinstance(size, int) else (size or model.input_size[1:])
    last = None if objective == "class" else model.layer(layer).index
    total = 0.0
    for info in model.layers:
        if last is not None and info.index > last:
            continue
        if not info.output_shape:
            continue
        _, out_h, out_w = info.output_shape
        positions = out_h * out_w * (height / model.input_size[1]) * (width / model.input_size[2])
        kh, kw = info.kernel_size
        total += 2 * (info.in_channels // info.groups) * info.out_channels * kh * kw * positions
    return 2 * total * images  # the backward pass to the pixels costs about as much as the forward


def step_seconds(model, layer=None, images: int = 1, size=None, objective: str = "channel", timed_steps: int = CALIBRATION_STEPS,
                 **settings) -> float:
    """Seconds one optimization step of ``images`` images of ``size`` takes on the model's
    device, timed on real steps of :func:`~cnn_widgets.engine.optvis.maximize` with these
    ``settings`` (``param``, ``transforms``...): one warm-up step, then steps until about
    ``CALIBRATION_S`` seconds or ``timed_steps`` steps (at most ``CALIBRATION_STEPS``; a run of
    fewer steps needs no more) have passed, at least one, in a thread of its own as the widgets' runs. Measured once per model, layer, size, images, settings and device in a process.

    >>> import cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn")
    >>> 0 < step_seconds(model, "block2_conv1", images=4, size=28) < 10
    True
    """
    from .render import maximize  # render imports the whole optimization machinery

    model = as_model(model)
    class_objective = objective == "class"
    where = "class" if class_objective else model.layer(layer).path
    count = len(model.classes) if class_objective else model.layer(layer).out_channels
    key = (model.name, tuple(model.input_size), where, count, size, images, objective, tuple(sorted(settings.items())), str(model.device))
    if key not in _step_seconds:
        limit = max(1, min(int(timed_steps), CALIBRATION_STEPS))
        times: list[float] = []

        def timed(step, values, pictures):
            times.append(time.perf_counter())

        def enough() -> bool:  # times[0] ends the warm-up step
            return len(times) > limit or (len(times) >= 2 and times[-1] - times[0] >= CALIBRATION_S)

        def steps() -> None:
            maximize(model, None if class_objective else layer, [unit % count for unit in range(images)], steps=limit + 1,
                     size=size, objective=objective, progress=timed, preview_every=limit + 2, cancel=enough, **settings)

        # Timed in a thread of its own, as the widgets run optimizations: on a loaded CPU the
        # OpenMP team of a long-lived thread (the kernel's main one) can be many times slower
        # than a fresh thread's, and the estimate is for the run.
        failed: list[BaseException] = []
        thread = threading.Thread(target=lambda: _catching(steps, failed), name="cnn-widgets step timing", daemon=True)
        started = time.perf_counter()
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        if len(times) >= 2:
            _step_seconds[key] = (times[-1] - times[0]) / (len(times) - 1)
        else:  # no step after the warm-up (nothing to optimize): the whole call
            _step_seconds[key] = (time.perf_counter() - started) / max(1, len(times))
    return _step_seconds[key]


def _catching(function, failed: list) -> None:
    try:
        function()
    except BaseException as error:  # re-raised in the calling thread
        failed.append(error)
