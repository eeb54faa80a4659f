"""Activation maximization against horama (MaCo's authors' package) and Lucent, in one run (issue 14).

    PYTHONPATH=/tmp/lucent-site:$PWD .venv/bin/python benchmarks/bench_optvis_peers.py --threads 1

Lucent pins kornia 0.4.1, so it is installed outside the project's environment, as for
bench_maximize.py (``pip install --no-deps --target /tmp/lucent-site torch-lucent==0.1.8
kornia==0.4.1 decorator``); horama is in the bench extra. Without Lucent its rows are left out.

Same model, same filters, same number of steps and the same image size for every method:
- ours: ``maximize`` with the Fourier parameterization (the default) and with ``param="maco"``;
  all filters of a case in one batch, as the widget runs them;
- horama 0.3.0: ``fourier`` and ``maco``, one call per filter (it optimizes one image), with
  ``image_size`` and ``model_input_size`` both the case's size and its defaults otherwise
  (NAdam, lr 1.0, 6 random crops of 20-25 % of the image per step: it is made for
  1280 px images cropped to 224, so at the same image size it sees small crops upsampled).
  horama's ``maco`` downloads an ImageNet magnitude spectrum at run time; offline, this
  script writes a 1/f spectrum (1 / max(f, 1/size), the published fit's shape, the same for
  the three channels) to the file name horama looks for, in a temporary folder.
- Lucent 0.1.8: ``render_vis`` per filter, ``fixed_image_size`` = the case's size.

Objective: the filter's mean conv output. horama and Lucent see 3-channel images; for the
1-channel fashion-cnn their image is averaged over channels (in normalized units for horama,
whose images are already normalized; Lucent gets a 1-channel image). Achieved activation:
the filter's mean conv output (before ReLU) of the final image, averaged over the same 16
random transforms for every method (bench_maximize.shared_evaluation). Time per step: the
run's wall time over its steps, per filter (ours: one batch of all filters, divided by the
number of filters). VGG16 has random weights here (no ImageNet weights offline): its
figures compare optimizers on the same function, they say nothing about what VGG16 learned.
"""
from __future__ import annotations

import contextlib
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # horama's progress bars
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
from bench_maximize import Normalized, lucent_name, shared_evaluation  # noqa: E402

import cnn_widgets as cw  # noqa: E402
from cnn_widgets.engine.optvis import maximize  # noqa: E402

SECTION = "bench_optvis_peers"
CASES = (  # model, layer, filters, size, steps
    ("fashion-cnn", "block2_conv2", [0, 1, 2, 3], 28, 64),
    ("vgg16", "block3_conv1", [0, 1], 64, 32),
)


class _Reached(Exception):
    """Raised by the hook: the network is run only up to the layer, as ours is."""


def conv_output(model: cw.Model, layer: str):
    """A function: normalized input (N, C, H, W) -> the layer's conv output (before ReLU)."""
    module = model.layer(layer).module
    seen = {}

    def hook(_module, _inputs, output):
        seen["out"] = output.clone()  # before an in-place ReLU changes it
        raise _Reached

    def run(inputs):
        handle = module.register_forward_hook(hook)
        try:
            model.module(inputs)
        except _Reached:
            pass
        finally:
            handle.remove()
        return seen["out"]

    return run


def horama_run(method: str, model: cw.Model, layer: str, filter_index: int, size: int, steps: int) -> tuple[torch.Tensor, float]:
    """One horama render; returns (image (1, C, H, W) in [0, 1], seconds)."""
    import horama

    channels = model.input_size[0]
    forward = conv_output(model, layer)

    def objective(images):  # horama's images are in normalized units already
        inputs = images.mean(1, keepdim=True) if channels == 1 else images
        return forward(inputs)[:, filter_index].mean()

    torch.manual_seed(0)
    started = time.perf_counter()
    image, _ = getattr(horama, method)(objective, total_steps=steps, image_size=size, model_input_size=size, device="cpu")
    seconds = time.perf_counter() - started
    image = image.detach().unsqueeze(0)
    if channels == 1:
        image = image.mean(1, keepdim=True)
    mean = torch.tensor(model.mean).view(1, -1, 1, 1)
    std = torch.tensor(model.std).view(1, -1, 1, 1)
    return (image * std + mean).clamp(0, 1), seconds


def lucent_run(model: cw.Model, layer: str, filter_index: int, size: int, steps: int) -> tuple[torch.Tensor, float]:
    from lucent.optvis import param, render

    np.random.seed(0)
    torch.manual_seed(0)
    channels = model.input_size[0]
    net = Normalized(model) if channels == 1 else copy.deepcopy(model.module)  # Lucent leaves its hooks
    net.eval()
    name = lucent_name(model, layer)
    started = time.perf_counter()
    images = render.render_vis(
        net, f"{name}:{filter_index}", lambda: param.image(size, channels=channels) if channels != 3 else param.image(size),
        thresholds=(steps,), preprocess=channels == 3, progress=False, show_image=False, fixed_image_size=size,
    )
    seconds = time.perf_counter() - started
    return torch.from_numpy(images[-1]).permute(0, 3, 1, 2).float(), seconds


@contextlib.contextmanager
def maco_spectrum(size: int):
    """horama's MaCo reads ``spectrum_decorrelated.npy`` from the working folder (else downloads it)."""
    freq_y = np.fft.fftfreq(size)[:, None]
    freq_x = np.fft.rfftfreq(size)[None, :]
    magnitude = 1.0 / np.maximum(np.sqrt(freq_x**2 + freq_y**2), 1.0 / size)
    spectrum = np.repeat(magnitude[None], 3, 0).astype(np.float32)
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "spectrum_decorrelated.npy", spectrum)
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


def lucent_available() -> bool:
    try:
        import lucent.optvis.render  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    args = report.parse_threads(__doc__)
    started = time.perf_counter()
    with_lucent = lucent_available()
    rows = []
    for name, layer, filters, size, steps in CASES:
        model = cw.load_model(name, weights=None) if name == "vgg16" else cw.load_model(name)
        label = f"{name}{' (random weights)' if name == 'vgg16' else ''} {layer}, filters {filters[0]}-{filters[-1]}, {size} px, {steps} steps"
        results = {}
        maximize(model, layer, filters, steps=2, size=size)  # warm-up: the first call of a process pays for allocations
        for param_name in ("fourier", "maco"):
            t = time.perf_counter()
            images = maximize(model, layer, filters, steps=steps, size=size, param=param_name)
            seconds = time.perf_counter() - t
            results[f"cnn-widgets `maximize` ({param_name}), one batch"] = (images, seconds / len(filters))
        for method in ("fourier", "maco"):
            pictures, seconds = [], 0.0
            with maco_spectrum(size) if method == "maco" else contextlib.nullcontext():
                for f in filters:
                    image, s = horama_run(method, model, layer, f, size, steps)
                    pictures.append(image)
                    seconds += s
            results[f"horama `{method}`{' (1/f spectrum, offline)' if method == 'maco' else ''}, per filter"] = (torch.cat(pictures), seconds / len(filters))
        if with_lucent:
            pictures, seconds = [], 0.0
            for f in filters:
                image, s = lucent_run(model, layer, f, size, steps)
                pictures.append(image)
                seconds += s
            results["Lucent `render_vis`, per filter"] = (torch.cat(pictures), seconds / len(filters))
        for method, (images, per_filter) in results.items():
            achieved = shared_evaluation(model, layer, filters, images.float())
            rows.append(f"| {label} | {method} | {1000 * per_filter / steps:.0f} ms | {achieved.mean().item():.3f} | "
                        f"{' / '.join(f'{v:.2f}' for v in achieved.tolist())} |")
            print(rows[-1], flush=True)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lucent_note = "" if with_lucent else " Lucent was not importable in this run, so it has no rows."
    body = f"""## Activation maximization against horama (MaCo) and Lucent (issue 14)

Machine: {report.machine()}, {args.threads} torch thread(s); load average {load} when it ended (the cores are shared with other jobs, so times are noisy). Command: `PYTHONPATH=/tmp/lucent-site:$PWD .venv/bin/python benchmarks/bench_optvis_peers.py --threads {args.threads}`. horama 0.3.0, torch-lucent 0.1.8. Same model, filters, steps and image size for every method; settings and evaluation as the script's docstring says.{lucent_note}

| case | method | time per step and filter | mean achieved activation | per filter |
| --- | --- | ---: | ---: | --- |
{chr(10).join(rows)}

Achieved activation: the filter's mean conv output (before ReLU) of the final image, averaged over the same 16 random transforms for every method. Ours runs all filters in one batch (time divided by the filters); horama and Lucent optimize one image per call. horama takes 6 crops of 20-25 % of its image per step (it is made for 1280 px images seen at 224 px), so at the same small image size each step costs it about 6 forward passes of small crops upsampled to the full size, and its images are optimized for that zoomed view. horama's `maco` ran with a 1/f magnitude in place of the ImageNet spectrum it downloads (no network here). VGG16 has random weights (no ImageNet weights offline): those rows compare optimizers on the same function and say nothing about what a trained VGG16 has learned.

Total benchmark time: {time.perf_counter() - started:.0f} s.
"""
    report.write_section(SECTION, body)
    print(body)


if __name__ == "__main__":
    main()
