"""Every GPU figure in one run (issues 19 and 18): writes the GPU section of BENCHMARKS.md.

    bash benchmarks/gpu.sh           # on a machine with a CUDA GPU, after `bash scripts/setup.sh`
    bash benchmarks/gpu.sh --dry     # every step on the CPU at tiny sizes, into a temporary file

Steps, each timed, all on the GPU unless said otherwise (under 8 minutes on one
GPU; the full-layer run shortens itself to fit, and says so):

1. Peak: the GPU's own matmul throughput in float32 (TF32 off), TF32 and bfloat16,
   the yardstick for "fraction of peak" below.
2. Activation maximization of every VGG16 conv layer (random weights, 224 px,
   all filters of the layer in one call) for a few steps: time per step, the
   arithmetic done per step (counted with ``torch.utils.flop_counter``) and so the
   fraction of peak; their sum x 256 steps is the projected time of all 4,224
   filters. Then the deepest layer in full (256 steps, or as many as fit its budget),
   in the default precision (bfloat16) and a few steps in float32.
3. Out-of-memory fallback: the process is capped at a few GiB of GPU memory
   (``torch.cuda.set_per_process_memory_fraction``) and asked for a whole layer at
   once; ``maximize`` must halve the batch until it fits and finish.
4. Throughput in images/s: feature maps (one image, all 13 layers), Grad-CAM
   (one image and a batch), dataset examples (VGG16 at 224 px and fashion-cnn).
5. CPU and GPU agree: feature maps, Grad-CAM, and the objective and input
   gradient of one maximization step, GPU against the CPU in float32. The
   tolerance is bfloat16's own error, measured on the CPU in the same run
   (CPU bfloat16 against CPU float32): the GPU must be within twice that.
6. Atlas (issue 18): ResNet-50 (random weights) at 224 px, every conv unit, through
   the atlas's own code: images/s of its scanner on batches already on the GPU
   (the atlas's default batch and a larger one); images/s of the real ``atlas()``
   call over JPEG files written for the run, decoded by its DataLoader workers (the
   atlas's default count and all usable CPUs), stopped after its last batch; the
   decoder alone, also on ImageNet-sized JPEGs; the time ``atlas()`` takes after the
   scan (crops, predictions, store) on two layers; and from these the projected time
   for ImageNet's 1,281,167 training images. With more than one GPU, a short real
   ``torchrun`` (one rank per GPU, NCCL) and the projection per GPU count.

``--dry`` runs the same steps on the CPU at tiny sizes with fashion-cnn (the
"device" side of the agreement check then runs in bfloat16 autocast on the CPU,
the out-of-memory error is simulated, and the atlas's multi-device run is two gloo
processes under torchrun); every ``torch.cuda`` call is one line of
:class:`CudaCalls`, which the dry run swaps for :class:`DryCalls`. It writes to a
temporary file, never to BENCHMARKS.md. tests/test_bench_gpu.py runs it, so this
script cannot rot while no GPU is around.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import dataclasses
import inspect
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

import cnn_widgets as cw  # noqa: E402
from cnn_widgets import engine  # noqa: E402
from cnn_widgets.engine.optvis import maximize  # noqa: E402
from cnn_widgets.engine.optvis.forward import LayerTap, autocast_dtype, memory_format  # noqa: E402
from cnn_widgets.engine.optvis.objectives import channel  # noqa: E402
from cnn_widgets.models import preserved  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
SECTION = "bench_gpu"
COMMAND = "bash benchmarks/gpu.sh"
DEFAULT_STEPS = 256  # maximize's default number of steps, what a projection is for
AGREEMENT_SLACK = 2.0  # the GPU may differ from the CPU by up to this times bfloat16's own error
AGREEMENT_FLOOR = 1e-3  # ... plus this, so that two exact results are not judged on rounding noise


@dataclasses.dataclass(frozen=True)
class Plan:
    """How big each step is: the real GPU run, or the tiny CPU dry run."""

    model: str
    filters_per_layer: int | None  # None: every filter of a layer, as in a real run
    size: int | None  # image size for maximization; None: the model's input size
    probe_size: int  # matmul probe: (n x n) @ (n x n)
    probe_repeats: int
    layer_steps: int  # steps timed per layer for the projection
    full_budget_s: float  # time allowed for the deepest layer in full ...
    total_budget_s: float  # ... but less if the run as a whole would go over this
    float32_steps: int
    oom_cap_bytes: int  # GPU memory cap for the out-of-memory step (real run)
    oom_simulated_fit: int  # largest batch that "fits" (dry run: the error is simulated)
    repeats: int  # timed repeats of the throughput measurements
    cam_batch: int
    examples: tuple  # (model name, number of images) for dataset-examples throughput
    agreement_size: int
    agreement_filters: int
    atlas_model: str  # the atlas step's model (random weights, its own input size)
    atlas_images: int  # JPEGs at the model's input size, scanned end to end
    atlas_imagenet_like: tuple  # (count, width, height) of ImageNet-sized JPEGs, decoded alone
    atlas_larger_batch: int  # the model-side rate at the atlas's default batch and at this one
    atlas_scan_seconds: float  # each model-side rate is timed for at least this long
    atlas_fixed_layers: tuple  # the layers of the full atlas() run that times the work after the scan
    atlas_budget_s: float  # what the atlas step needs: kept free by the maximization's full-layer run
    torchrun_timeout_s: float  # the multi-device atlas run is stopped after this


GPU_PLAN = Plan(
    model="vgg16", filters_per_layer=None, size=None, probe_size=8192, probe_repeats=10, layer_steps=5, full_budget_s=150.0, total_budget_s=420.0, float32_steps=5,
    oom_cap_bytes=4 << 30, oom_simulated_fit=0, repeats=10, cam_batch=32,
    examples=(("vgg16", 2048), ("fashion-cnn", 10000)), agreement_size=64, agreement_filters=8,
    atlas_model="resnet50", atlas_images=8192, atlas_imagenet_like=(2048, 500, 375), atlas_larger_batch=256,
    atlas_scan_seconds=3.0, atlas_fixed_layers=("conv1", "layer4.0.conv1"), atlas_budget_s=150.0, torchrun_timeout_s=240.0,
)
DRY_PLAN = Plan(
    model="fashion-cnn", filters_per_layer=3, size=16, probe_size=128, probe_repeats=1, layer_steps=2, full_budget_s=0.2,
    total_budget_s=60.0, float32_steps=2, oom_cap_bytes=0, oom_simulated_fit=2, repeats=1, cam_batch=4,
    examples=(("fashion-cnn", 32),), agreement_size=16, agreement_filters=3,
    atlas_model="fashion-cnn", atlas_images=256, atlas_imagenet_like=(192, 40, 30), atlas_larger_batch=128,
    atlas_scan_seconds=0.0, atlas_fixed_layers=("block1_conv1", "block2_conv1"), atlas_budget_s=0.0, torchrun_timeout_s=300.0,
)


class CudaCalls:
    """Every call this script makes to ``torch.cuda``, each in a one-line method: the only
    lines of the script that a dry run does not execute (it swaps in :class:`DryCalls`, so
    all the code around them runs on the CPU; tests/test_bench_gpu.py also checks that every
    ``torch.cuda`` name used here exists)."""

    def synchronize(self, device: torch.device) -> None:
        torch.cuda.synchronize(device)

    def empty_cache(self) -> None:
        torch.cuda.empty_cache()

    def total_memory(self, device: torch.device) -> int:
        return torch.cuda.get_device_properties(device).total_memory

    def index(self, device: torch.device) -> int:
        return device.index if device.index is not None else torch.cuda.current_device()

    def set_memory_fraction(self, fraction: float, index: int) -> None:
        torch.cuda.set_per_process_memory_fraction(fraction, index)  # a torch.device("cuda") without an index is refused

    def device_count(self) -> int:
        return torch.cuda.device_count()

    def describe(self, device: torch.device) -> str:
        props = torch.cuda.get_device_properties(device)
        return (
            f"{props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}; "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; Python {sys.version.split()[0]}, torch {torch.__version__}; "
            f"bfloat16 supported: {torch.cuda.is_bf16_supported()}"
        )


class DryCalls:
    """The dry run's stand-ins for :class:`CudaCalls`: a pretend 16 GiB device, two of them
    (so the multi-GPU atlas run starts two gloo processes on the CPU), and a record of the
    memory caps asked for (checked the way ``torch.cuda`` checks them)."""

    TOTAL_MEMORY = 16 << 30

    def __init__(self) -> None:
        self.memory_fractions: list[float] = []

    def synchronize(self, device: torch.device) -> None:
        torch.cpu.synchronize(device)

    def empty_cache(self) -> None:
        pass

    def total_memory(self, device: torch.device) -> int:
        return self.TOTAL_MEMORY

    def index(self, device: torch.device) -> int:
        return 0

    def set_memory_fraction(self, fraction: float, index: int) -> None:
        # As torch.cuda.set_per_process_memory_fraction checks: a fraction in [0, 1], and a device index
        # (it refuses torch.device("cuda"), which has none: "Expected a torch.device with a specified index").
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{index}")
        if not isinstance(fraction, float):
            raise TypeError("Invalid type for fraction argument, must be `float`")
        if not 0 <= fraction <= 1:
            raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
        self.memory_fractions.append(fraction)

    def device_count(self) -> int:
        return 2

    def describe(self, device: torch.device) -> str:
        return f"DRY RUN on the CPU at tiny sizes ({report.machine()}): these numbers only show that every step runs"


class Run:
    """The device, the plan, the device calls, and the Markdown section as it grows."""

    def __init__(self, plan: Plan, device: torch.device, dry: bool, calls: "CudaCalls | DryCalls | None" = None) -> None:
        self.plan, self.device, self.dry = plan, device, dry
        self.calls = calls if calls is not None else (DryCalls() if dry else CudaCalls())
        self.lines: list[str] = []
        self.step_seconds: dict[str, float] = {}
        self.began = time.perf_counter()

    def sync(self) -> None:
        self.calls.synchronize(self.device)

    def say(self, *lines: str) -> None:
        self.lines.extend(lines)
        for line in lines:
            print(line, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def filters(self, info) -> list[int]:
        """The filters of a layer that a run maximizes: all of them, except in the dry run."""
        return list(range(min(info.out_channels, self.plan.filters_per_layer or info.out_channels)))


# -- 1. peak ------------------------------------------------------------------------------------


def matmul_peak(run: Run, dtype: torch.dtype, tf32: bool = False) -> float:
    """Best FLOP/s of a square matmul in ``dtype`` (TF32 tensor cores on or off for float32)."""
    n = run.plan.probe_size
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(run.device, dtype)
    b = torch.randn(n, n, generator=generator).to(run.device, dtype)
    inner = 10 if run.device.type == "cuda" else 1
    allowed = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        a @ b
        run.sync()
        best = math.inf
        for _ in range(run.plan.probe_repeats):
            start = time.perf_counter()
            for _ in range(inner):
                a @ b
            run.sync()
            best = min(best, (time.perf_counter() - start) / inner)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed
    return 2 * n**3 / best


def peaks(run: Run) -> dict[str, float]:
    found = {
        "float32": matmul_peak(run, torch.float32),
        "tf32": matmul_peak(run, torch.float32, tf32=True),
        "bfloat16": matmul_peak(run, torch.bfloat16),
    }
    n = run.plan.probe_size
    run.say(
        "### Peak (matmul probe)",
        "",
        f"Best of {run.plan.probe_repeats} timings of ({n} x {n}) @ ({n} x {n}); 2n^3 operations.",
        "",
        "| dtype | TFLOP/s |",
        "| --- | ---: |",
        f"| float32 (TF32 off, torch's default for matmul) | {found['float32'] / 1e12:.1f} |",
        f"| TF32 (float32 inputs on tensor cores; cuDNN's default for convolutions) | {found['tf32'] / 1e12:.1f} |",
        f"| bfloat16 | {found['bfloat16'] / 1e12:.1f} |",
        "",
    )
    return found


# -- 2. activation maximization -----------------------------------------------------------------


def timed_maximize(run: Run, model: cw.Model, info, steps: int, **options) -> tuple[torch.Tensor, float, float]:
    """All filters of a layer: the images, the median time per step after the first, the total."""
    stamps = []
    run.sync()
    start = time.perf_counter()
    images = maximize(model, info.name, run.filters(info), steps=steps, size=run.plan.size, preview_every=10**9,
                      progress=lambda *_: stamps.append(time.perf_counter()), **options)
    total = time.perf_counter() - start
    intervals = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
    return images, (statistics.median(intervals) if intervals else total / max(steps, 1)), total


def flops_per_image_step(run: Run, model: cw.Model, info) -> float:
    """Multiply-adds x 2 of one step for one image (forward and backward), as counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        maximize(model, info.name, [0, 1], steps=1, size=run.plan.size)
    return counter.get_total_flops() / 2


def maximization(run: Run, model: cw.Model, peak: dict[str, float]) -> None:
    plan = run.plan
    layers = model.layers
    total_filters = sum(len(run.filters(info)) for info in layers)
    maximize(model, layers[0].name, [0, 1], steps=2, size=plan.size)  # warm-up: kernels, allocator
    rows, projected = [], 0.0
    for info in layers:
        count = len(run.filters(info))
        _, per_step, _ = timed_maximize(run, model, info, plan.layer_steps)
        flops = flops_per_image_step(run, model, info) * count
        projected += per_step * DEFAULT_STEPS
        precision = "bfloat16" if autocast_dtype(run.device) == torch.bfloat16 else "float32"
        fraction = flops / per_step / peak[precision]
        rows.append(
            f"| {info.name} | {count} | {per_step * 1000:.1f} ms | {count / per_step:.0f} | "
            f"{flops / per_step / 1e12:.2f} | {100 * fraction:.0f} % | {per_step * DEFAULT_STEPS:.1f} s |"
        )
    deepest = layers[-1]
    precision = "bfloat16" if autocast_dtype(run.device) == torch.bfloat16 else "float32"
    run.say(
        f"### Activation maximization, {model.name}{'' if run.dry else ' (random weights)'}, {plan.size or model.input_size[1]} px, "
        f"{'every filter' if plan.filters_per_layer is None else f'{plan.filters_per_layer} filters'} of a layer in one call",
        "",
        f"{plan.layer_steps} steps per layer, time per step = median of the step-to-step times after the first step; "
        f"operations counted by `torch.utils.flop_counter` (convolutions forward and backward); fraction of the "
        f"{precision} matmul peak (the engine's default precision on this device).",
        "",
        f"| layer | filters | time per step | images x steps / s | TFLOP/s | of {precision} peak | projected {DEFAULT_STEPS} steps |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"**Projected time for all {total_filters:,} filters of {model.name} at {DEFAULT_STEPS} steps: {projected:.0f} s** "
        "(the sum of the last column: one call per layer).",
        "",
    )

    # The deepest layer in full, as long as it fits its budget.
    count = len(run.filters(deepest))
    _, per_step, _ = timed_maximize(run, model, deepest, 2)
    # A slower GPU than planned for: keep about two minutes for the steps after this one, and the atlas's time.
    budget = min(plan.full_budget_s, max(plan.full_budget_s / 10, plan.total_budget_s - run.elapsed() - 120 - plan.atlas_budget_s))
    steps = min(DEFAULT_STEPS, max(2, int(budget / per_step)))
    _, per_step, total = timed_maximize(run, model, deepest, steps)
    flops = flops_per_image_step(run, model, deepest) * count
    _, per_step32, _ = timed_maximize(run, model, deepest, plan.float32_steps, precision="float32")
    shortened = "" if steps == DEFAULT_STEPS else f" (shortened from {DEFAULT_STEPS} to fit its {budget:.1f} s budget; {DEFAULT_STEPS} steps would take {per_step * DEFAULT_STEPS:.0f} s)"
    run.say(
        f"Full layer: {count} filters of {deepest.name}, {steps} steps{shortened}: **{total:.1f} s** in all, "
        f"{per_step * 1000:.1f} ms per step, {flops / per_step / 1e12:.1f} TFLOP/s = "
        f"**{100 * flops / per_step / peak[precision]:.0f} % of the {precision} peak**. "
        f"In float32 (`precision=\"float32\"`, {plan.float32_steps} steps; cuDNN convolutions use TF32 unless "
        f"`torch.backends.cudnn.allow_tf32` is off, here {torch.backends.cudnn.allow_tf32}): {per_step32 * 1000:.1f} ms per step, "
        f"{100 * flops / per_step32 / peak['float32']:.0f} % of the float32 peak, {100 * flops / per_step32 / peak['tf32']:.0f} % of the TF32 peak.",
        "",
    )


# -- 3. out-of-memory fallback ------------------------------------------------------------------


@contextlib.contextmanager
def small_memory(run: Run, model: cw.Model):
    """Too little memory for a whole layer: a real cap on the GPU, a simulated error in the dry run."""
    calls = run.calls
    calls.empty_cache()
    total = calls.total_memory(run.device)
    fraction = min(run.plan.oom_cap_bytes / total, 0.5)
    calls.set_memory_fraction(fraction, calls.index(run.device))
    how = f"the process capped at {fraction * total / 2**30:.1f} GiB of the GPU's {total / 2**30:.0f} GiB (`torch.cuda.set_per_process_memory_fraction`)"
    handle = None
    if run.dry:  # a cap on the CPU refuses nothing: the error is simulated
        def refuse(_module, inputs):
            if inputs[0].shape[0] > run.plan.oom_simulated_fit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by the dry run)")

        handle = model.module.register_forward_pre_hook(refuse)
        how = f"a simulated `torch.cuda.OutOfMemoryError` for batches over {run.plan.oom_simulated_fit} images"
    try:
        yield how
    finally:
        if handle is not None:
            handle.remove()
        calls.set_memory_fraction(1.0, calls.index(run.device))
        calls.empty_cache()


def out_of_memory(run: Run, model: cw.Model) -> None:
    """A whole layer in one batch, with too little memory for it: the batch must halve until it fits."""
    deepest = model.layers[-1]  # layer discovery runs a forward pass of its own: done before the hooks
    filters = run.filters(deepest) if run.plan.filters_per_layer is None else list(range(5))
    batches: list[int] = []  # batch size of every forward pass, failed or not
    step_ends: list[int] = []  # len(batches) at the end of each step
    watch = model.module.register_forward_pre_hook(lambda _module, inputs: batches.append(inputs[0].shape[0]))
    try:
        with small_memory(run, model) as how:
            start = time.perf_counter()
            images = maximize(model, deepest.name, filters, steps=2, size=run.plan.size, batch_size=len(filters),
                              progress=lambda *_: step_ends.append(len(batches)))
            seconds = time.perf_counter() - start
    finally:
        watch.remove()
    kept = max(batches[step_ends[0]:step_ends[1]])  # the batch size of the second step
    failed = [size for size in batches[: step_ends[0]] if size > kept]
    again = maximize(model, deepest.name, filters, steps=2, size=run.plan.size, batch_size=kept)
    difference = (images - again).abs().max().item()
    run.say(
        "### Out-of-memory fallback",
        "",
        f"{len(filters)} filters of {deepest.name} asked for in one batch (`batch_size={len(filters)}`; on CUDA that is also the default) "
        f"with {how}, 2 steps. Out-of-memory errors caught: {len(failed)} (batches of {', '.join(map(str, failed)) or 'none'}); "
        f"the batch halved to **{kept}** and the run finished: {tuple(images.shape)} images in {seconds:.1f} s. "
        f"The same call with `batch_size={kept}` from the start differs by at most {difference:.2g} per pixel.",
        "",
    )
    if not failed:
        run.say("**The fallback was NOT exercised: the whole batch fit.**", "")


# -- 4. throughput ------------------------------------------------------------------------------


def median_seconds(run: Run, fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        run.sync()
        start = time.perf_counter()
        fn()
        run.sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_pixels(count: int, input_size, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, *input_size, generator=torch.Generator().manual_seed(seed))


def throughput(run: Run, model: cw.Model) -> None:
    plan = run.plan
    image = random_pixels(1, model.input_size)
    batch = random_pixels(plan.cam_batch, model.input_size, seed=1)
    size = f"{model.input_size[1]} px"
    rows = []
    seconds = median_seconds(run, lambda: engine.feature_maps(model, image, cache=False), plan.repeats)
    rows.append(f"| feature maps, all {len(model.layers)} conv layers of {model.name}, one {size} image (maps copied to the CPU) | 1 | {1 / seconds:.1f} | {seconds * 1000:.1f} ms |")
    seconds = median_seconds(run, lambda: engine.cam(model, image, target=0), plan.repeats)
    rows.append(f"| Grad-CAM, {model.name}, one {size} image | 1 | {1 / seconds:.1f} | {seconds * 1000:.1f} ms |")
    seconds = median_seconds(run, lambda: engine.cam(model, batch, target=0), plan.repeats)
    rows.append(f"| Grad-CAM, {model.name}, a batch of {plan.cam_batch} {size} images | {plan.cam_batch} | {plan.cam_batch / seconds:.1f} | {seconds * 1000:.1f} ms |")
    for name, count in plan.examples:
        other = cw.load_model(name, weights=None if name != "fashion-cnn" else "default", device=run.device)  # a fresh copy, the dry run's too
        pixels, what = dataset_images(other, count)
        seconds = median_seconds(run, lambda: engine.dataset_examples(other, pixels, k=9, cache=False), max(1, plan.repeats // 4))
        filters = sum(info.out_channels for info in other.layers)
        rows.append(f"| dataset examples, top 9 of {count:,} {what} for all {filters:,} filters of {other.name} | {count:,} | {count / seconds:,.0f} | {seconds * 1000:.0f} ms |")
    run.say(
        "### Throughput",
        "",
        f"Median of {plan.repeats} runs after a warm-up (dataset examples: {max(1, plan.repeats // 4)}); the engine's functions as a user calls them, "
        "results on the CPU.",
        "",
        "| what | images per call | images/s | time per call |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
    )


def dataset_images(model: cw.Model, count: int) -> tuple[torch.Tensor, str]:
    """Fashion-MNIST test images for fashion-cnn when Debian's package is there; random pixels otherwise."""
    if model.name == "fashion-cnn":
        try:
            from cnn_widgets.models.datasets import load_fashion_mnist

            return load_fashion_mnist("test")[0][:count], "Fashion-MNIST test images"
        except (FileNotFoundError, OSError, ValueError):
            pass
    return random_pixels(count, model.input_size, seed=2), f"random {model.input_size[1]} px images"


# -- 5. agreement -------------------------------------------------------------------------------


def on_cpu(model: cw.Model) -> cw.Model:
    """The same network, weights and all, on the CPU."""
    return cw.load_model(copy.deepcopy(model.module).cpu(), device="cpu", input_size=model.input_size, mean=model.mean, std=model.std, classes=model.classes)


def objective_and_gradient(model: cw.Model, layer: str, pixels: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """One maximization step's forward and backward, as ``maximize`` runs it: image i scored on filter i."""
    info = model.layer(layer)
    goal = channel(info, list(range(len(pixels))))
    inputs = pixels.to(model.device, copy=True).requires_grad_(True)
    with preserved(model.module, model.device), LayerTap(model, [info], dtype=dtype) as tap:
        scores = goal(tap.run(model.normalize(inputs).contiguous(memory_format=memory_format(model.device)), range(len(pixels))))
        scores.sum().backward()
    return scores.detach().float().cpu(), inputs.grad.float().cpu()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """Norm-wise relative difference of ``b`` from the reference ``a``."""
    return ((a.float() - b.float()).norm() / a.float().norm().clamp_min(1e-30)).item()


def agreement(run: Run, model: cw.Model) -> bool:
    """GPU against CPU float32, judged against CPU bfloat16 against CPU float32."""
    plan = run.plan
    cpu = on_cpu(model)
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    # The dry run's "device" is the CPU: there it runs in bfloat16 too, so the comparison is not trivial.
    device_side = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if run.dry else contextlib.nullcontext
    photo = cw.sample_image("cat") if model.input_size[0] == 3 else cw.sample_image("sneaker")

    def feature_maps(which, context):
        with context:
            return engine.feature_maps(which, photo, cache=False)

    def grad_cam(which, context):
        with context:
            return engine.cam(which, photo, target=0)

    reference = feature_maps(cpu, contextlib.nullcontext())
    emulated, measured = feature_maps(cpu, bf16), feature_maps(model, device_side())
    checks = [(
        f"feature maps, all {len(reference)} layers, one {model.input_size[1]} px image (worst layer)",
        "float32" if not run.dry else "bfloat16 (dry)",
        max(relative(reference[k], measured[k]) for k in reference),
        max(relative(reference[k], emulated[k]) for k in reference),
    )]
    reference = grad_cam(cpu, contextlib.nullcontext())
    checks.append((
        "Grad-CAM map, default layer, class 0", "float32" if not run.dry else "bfloat16 (dry)",
        relative(reference, grad_cam(model, device_side())), relative(reference, grad_cam(cpu, bf16)),
    ))
    layer = model.layers[len(model.layers) // 2].name
    pixels = random_pixels(plan.agreement_filters, (model.input_size[0], plan.agreement_size, plan.agreement_size), seed=3)
    dtype = torch.bfloat16 if run.dry else autocast_dtype(run.device)
    values, gradient = objective_and_gradient(cpu, layer, pixels, None)
    values_emulated, gradient_emulated = objective_and_gradient(cpu, layer, pixels, torch.bfloat16)
    values_measured, gradient_measured = objective_and_gradient(model, layer, pixels, dtype)
    precision = "bfloat16" if dtype == torch.bfloat16 else "float32"
    what = f"{plan.agreement_filters} filters of {layer} at {plan.agreement_size} px"
    checks.append((f"maximization objective, {what}", precision, relative(values, values_measured), relative(values, values_emulated)))
    checks.append((f"maximization input gradient, {what}", precision, relative(gradient, gradient_measured), relative(gradient, gradient_emulated)))
    rows, agreed = [], True
    for name, how, difference, tolerance_base in checks:
        tolerance = AGREEMENT_SLACK * tolerance_base + AGREEMENT_FLOOR
        ok = difference <= tolerance
        agreed &= ok
        rows.append(f"| {name} | {how} | {difference:.2e} | {tolerance_base:.2e} | {tolerance:.2e} | {'yes' if ok else '**NO**'} |")
    run.say(
        "### CPU and GPU agree",
        "",
        "Norm-wise relative difference ||device - cpu|| / ||cpu|| from the CPU in float32, the same weights and inputs. "
        "bfloat16's own error is measured in the same run: the CPU in bfloat16 autocast against the CPU in float32. "
        f"The device agrees when its difference is at most {AGREEMENT_SLACK:g}x that plus {AGREEMENT_FLOOR:g}. "
        "Images after several maximization steps are not compared: Adam's first steps move each parameter by about "
        "the learning rate times the sign of its gradient, so rounding flips the smallest gradients' moves on any two machines.",
        "",
        "| quantity | device precision | device vs CPU | CPU bfloat16 vs CPU float32 | tolerance | agree |",
        "| --- | --- | ---: | ---: | ---: | --- |",
        *rows,
        "",
    )
    return agreed


# -- 6. atlas: ResNet-50 images/s per GPU and the projected time for ImageNet (issue 18) --------

IMAGENET_TRAIN = 1_281_167  # images in ImageNet-1k's training set
MOST_WORKERS = 32  # decoding workers tried at most ("all usable CPUs" on a large node)
ATLAS_PHOTOS = ("cat", "astronaut", "coffee", "rocket")  # the sample photos the JPEGs are cut from


class ScanFinished(Exception):
    """Raised by this benchmark's progress callback after the atlas's last batch: it stops
    ``atlas()`` before the work that follows the scan, whose cost does not grow with the
    dataset (measured on its own, on a few layers)."""


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def atlas_defaults() -> dict:
    """``atlas()``'s own defaults (batch size, k, checkpoint interval), read from its signature."""
    from cnn_widgets.atlas import atlas

    parameters = inspect.signature(atlas).parameters
    return {name: parameters[name].default for name in ("batch_size", "k", "checkpoint_every", "crop_size")}


def usable_cpus() -> tuple[int, str]:
    """The CPUs this process may use (affinity mask, else os.cpu_count()), and how they were counted."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    said = [f"os.cpu_count() {os.cpu_count()}", f"affinity mask {affinity}" if affinity is not None else "no affinity mask"]
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        said.append(f"cgroup CPU quota {'none' if quota == 'max' else f'{int(quota) / int(period):g} CPUs'}")
    except (OSError, ValueError):
        pass
    return affinity or os.cpu_count() or 1, ", ".join(said)


def write_jpegs(folder: Path, count: int, width: int, height: int) -> int:
    """``count`` JPEGs (quality 90) of ``width`` x ``height`` in ten class folders, each a random
    crop of one of the sample photos with a little noise (grain: the photos are small, and an
    enlarged crop alone compresses, and so decodes, more easily than a photograph), written by a
    thread pool (Pillow releases the GIL while it resizes and encodes). Returns the bytes written."""
    import numpy as np
    from PIL import Image

    photos = [cw.sample_image(name) for name in ATLAS_PHOTOS]

    def write(index: int) -> int:
        chance = random.Random(index)
        photo = photos[index % len(photos)]
        side = chance.uniform(0.4, 1.0) * min(photo.size)
        left, top = chance.uniform(0, photo.width - side), chance.uniform(0, photo.height - side)
        picture = photo.resize((width, height), Image.BILINEAR, box=(left, top, left + side, top + side))
        if chance.random() < 0.5:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        grain = np.random.default_rng(index).integers(-12, 13, size=(height, width, 3), dtype=np.int16)
        picture = Image.fromarray((np.asarray(picture, dtype=np.int16) + grain).clip(0, 255).astype(np.uint8))
        path = folder / f"class{index % 10}" / f"{index:06d}.jpg"
        picture.save(path, quality=90)
        return path.stat().st_size

    for label in range(min(10, count)):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=usable_cpus()[0]) as pool:
        return sum(pool.map(write, range(count)))


def atlas_scan_rate(run: Run, model: cw.Model, batch_size: int) -> tuple[float, int, float]:
    """Images/s of the atlas's per-batch work on batches already on the device: the scanner
    ``atlas()`` runs (``engine.examples.scan``: uint8 to float and normalization, the forward
    pass to the last conv, each unit's strongest response and where, the running top-k of
    every unit), on one uint8 batch of random pixels fed again and again. Returns the rate,
    the batches timed, and the milliseconds of one checkpoint (every unit's top-k to the CPU
    and ``torch.save``, which ``atlas()`` does every ``checkpoint_every`` batches)."""
    from cnn_widgets.atlas import _save
    from cnn_widgets.engine.examples import RunningTopK, scan

    layers, k = list(model.layers), atlas_defaults()["k"]
    pixels = torch.randint(0, 256, (batch_size, *model.input_size), dtype=torch.uint8, generator=torch.Generator().manual_seed(4)).to(run.device)
    top = RunningTopK({info.name: info.out_channels for info in layers}, k, run.device)
    offered = 0

    def timed(count: int) -> float:
        nonlocal offered
        batches = ((offered + b * batch_size, pixels) for b in range(count))
        offered += count * batch_size
        run.sync()
        start = time.perf_counter()
        scan(model, batches, layers, top, run.device)
        run.sync()
        return time.perf_counter() - start

    with preserved(model.module, run.device):
        timed(2)  # warm-up: kernels, allocator
        per_batch = timed(3) / 3
        count = max(3, math.ceil(run.plan.atlas_scan_seconds / per_batch))
        seconds = timed(count)
    with tempfile.TemporaryDirectory(prefix="cnn-widgets-gpu-checkpoint-") as folder:
        start = time.perf_counter()
        _save(Path(folder) / "rank0-of-1.pt", {"run": "benchmark", "next_batch": count, "top": top.state()})
        checkpoint = time.perf_counter() - start
    return count * batch_size / seconds, count, checkpoint * 1000


def steady_rate(stamps: list[tuple[float, int]], in_flight: int) -> tuple[float, int]:
    """Images/s from (time, images done so far) after each batch, leaving out the first
    ``in_flight`` batches (at most half): a DataLoader's workers decode that many ahead
    (2 per worker) before the first batch is taken, and counting them would flatter the rate.
    Returns the rate and the batches it covers."""
    start = min(max(0, in_flight - 1), (len(stamps) - 1) // 2)  # the interval after stamp i covers batches i + 1 onwards
    (first, first_done), (last, done) = stamps[start], stamps[-1]
    return (done - first_done) / (last - first), len(stamps) - 1 - start


def atlas_through_scan(model: cw.Model, data: Path, out: Path, device: torch.device, sync, workers: int, **options) -> dict:
    """The real ``atlas()`` call over ``data`` (files decoded by its ``workers`` DataLoader
    processes), stopped by its progress callback once the last batch has been scanned (``sync``
    waits for the device first). Returns the images scanned, the seconds from the call to the
    first batch, and the steady rate after the batches decoded ahead (:func:`steady_rate`)."""
    from cnn_widgets.atlas import atlas

    stamps: list[tuple[float, int]] = []

    def progress(done: int, total: int) -> None:
        if done == total:
            sync()
        stamps.append((time.perf_counter(), done))
        if done == total:
            raise ScanFinished

    start = time.perf_counter()
    try:
        atlas(model, data, out, progress=progress, device=device, workers=workers, **options)
    except ScanFinished:
        pass
    else:
        raise RuntimeError("atlas() finished without reporting its last batch to the progress callback")
    if len(stamps) < 2:
        raise ValueError(f"the atlas scanned {len(stamps)} batch(es): at least two are needed for a rate")
    rate, batches = steady_rate(stamps, 2 * workers)
    return {"start": start, "first": stamps[0][0], "last": stamps[-1][0], "images": stamps[-1][1],
            "startup": stamps[0][0] - start, "rate": rate, "batches": batches}


def decode_rate(data: Path, input_size, batch_size: int, workers: int, pin_memory: bool) -> float:
    """Images/s of the atlas's decoding alone: its dataset (``ImageFiles``: read, decode,
    convert, resize to the model's input) through a DataLoader with ``workers`` processes,
    in the steady state (:func:`steady_rate`)."""
    from cnn_widgets.engine.image_files import ImageFiles

    dataset = ImageFiles(data, input_size[0], tuple(input_size[1:]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, pin_memory=pin_memory)
    stamps, done = [], 0
    for _, pixels in loader:
        done += len(pixels)
        stamps.append((time.perf_counter(), done))
    return steady_rate(stamps, 2 * workers)[0]


def atlas_rank(spec: str) -> None:
    """One torchrun rank of the multi-device atlas run (``--atlas-rank SPEC``)."""
    spec = json.loads(spec)
    torch.set_num_threads(spec["threads"])
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = spec["device"] == "cuda"
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    model = cw.load_model(spec["model"], weights=None, input_size=spec["input_size"], device=device)
    calls = CudaCalls() if cuda else DryCalls()
    from cnn_widgets.atlas import decoding_workers

    timing = atlas_through_scan(model, Path(spec["data"]), Path(spec["out"]), device, lambda: calls.synchronize(device),
                                workers=decoding_workers(int(os.environ["WORLD_SIZE"])), batch_size=spec["batch_size"])
    Path(spec["timings"], f"rank{rank}.json").write_text(json.dumps(timing))


def atlas_on_ranks(run: Run, model: cw.Model, data: Path, folder: Path, ranks: int, batch_size: int) -> dict:
    """``torchrun --standalone --nproc_per_node=ranks``, each rank ``atlas()`` on its share
    (NCCL on GPUs, gloo on the CPU: the atlas picks), stopped after the scan. Returns the
    images of all ranks, the slowest rank's time from the launch to its last batch, and the
    sum of the ranks' steady rates (:func:`steady_rate`)."""
    timings = folder / f"timings-{ranks}"
    timings.mkdir()
    spec = {"model": model.name, "input_size": list(model.input_size), "data": str(data), "out": str(folder / f"atlas-{ranks}"),
            "timings": str(timings), "batch_size": batch_size, "device": run.device.type,
            "threads": 1 if run.dry else max(1, usable_cpus()[0] // ranks)}  # the ranks share the CPUs
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               str(Path(__file__).resolve()), "--atlas-rank", json.dumps(spec)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    if run.dry:
        environment["OMP_NUM_THREADS"] = "1"
    launched = time.time()
    subprocess.run(command, check=True, timeout=run.plan.torchrun_timeout_s, env=environment)
    found = [json.loads(path.read_text()) for path in sorted(timings.glob("rank*.json"))]
    if len(found) != ranks:
        raise RuntimeError(f"{len(found)} of {ranks} ranks reported their scan")
    # perf_counter is per process: each rank's own durations, and the launch by the wall clock
    return {"images": sum(rank["images"] for rank in found), "rate": sum(rank["rate"] for rank in found),
            "slowest": max(rank["last"] - rank["start"] for rank in found), "wall": time.time() - launched}


def bottleneck(model_rate: float, end_to_end: float, decoding: float) -> str:
    """Which part sets the pace of an atlas run, from three measured rates (images/s)."""
    if decoding < 0.9 * model_rate:
        return f"so the decoders are the bottleneck: ImageNet-sized JPEGs decode at {decoding:,.0f} images/s"
    if end_to_end < 0.9 * model_rate:
        return ("so neither the device nor the decoders alone: the decoders keep up, and the rest is lost between them "
                "(collating, pinning, copying to the device, the DataLoader's main-process work)")
    return "so the device is the bottleneck"


def atlas_figures(run: Run) -> None:
    """ResNet-50's atlas scan on the device: the model-side rate, the rate from JPEG files
    through ``atlas()``, the decoder alone, the cost after the scan, and ImageNet projected."""
    plan = run.plan
    defaults = atlas_defaults()
    default_batch, k = defaults["batch_size"], defaults["k"]
    model = cw.load_model(plan.atlas_model, weights=None, device=run.device)
    size = model.input_size[1]
    units = sum(info.out_channels for info in model.layers)
    cpus, cpu_words = usable_cpus()
    from cnn_widgets.atlas import atlas, decoding_workers

    picked = decoding_workers(1)
    many = min(cpus, MOST_WORKERS)  # all usable CPUs, within reason: 8,192 JPEGs are 128 batches
    worker_counts = sorted({picked, many})
    pin = run.device.type == "cuda"
    rows, model_rates = [], {}
    for batch in (default_batch, plan.atlas_larger_batch):
        rate, count, checkpoint_ms = atlas_scan_rate(run, model, batch)
        model_rates[batch] = rate
        rows.append(f"| model side: the scan on batches already on the device, batch {batch} ({count} batches) | {rate:,.0f} | "
                    f"{IMAGENET_TRAIN / rate / 60:,.1f} min |")
    model_rate = model_rates[default_batch]
    with tempfile.TemporaryDirectory(prefix="cnn-widgets-gpu-atlas-") as name:
        folder = Path(name)
        small, large = folder / "jpeg-input-size", folder / "jpeg-imagenet-size"
        start = time.perf_counter()
        small_bytes = write_jpegs(small, plan.atlas_images, size, size)
        large_count, large_width, large_height = plan.atlas_imagenet_like
        large_bytes = write_jpegs(large, large_count, large_width, large_height)
        written = time.perf_counter() - start
        decode = {}
        for what, data in (("small", small), ("large", large)):
            for workers in worker_counts:
                decode[what, workers] = decode_rate(data, model.input_size, default_batch, workers, pin)
        through = {}
        for workers in worker_counts:
            through[workers] = atlas_through_scan(model, small, folder / f"scan-{workers}", run.device, run.sync, workers=workers)
        for workers in worker_counts:
            result = through[workers]
            rows.append(f"| end to end: `atlas()` over {plan.atlas_images:,} JPEGs of {size} px, batch {default_batch}, "
                        f"{plural(workers, 'decoding worker')}{' (the atlas default)' if workers == picked else ''} | {result['rate']:,.0f} | "
                        f"{IMAGENET_TRAIN / result['rate'] / 60:,.1f} min |")
        for (what, workers), rate in decode.items():
            files = f"{plan.atlas_images:,} JPEGs of {size} px" if what == "small" else f"{large_count:,} JPEGs of {large_width}x{large_height} px resized to {size}"
            rows.append(f"| decoding alone (the atlas's `ImageFiles` in a DataLoader, no model): {files}, {plural(workers, 'worker')} | {rate:,.0f} | "
                        f"{IMAGENET_TRAIN / rate / 60:,.1f} min |")
        # What follows the scan, on a few layers: receptive fields, predictions, crops, JSON.
        stamps = []
        start = time.perf_counter()
        atlas(model, small, folder / "fixed", layers=list(plan.atlas_fixed_layers), device=run.device,
              progress=lambda done, total: stamps.append(time.perf_counter()))
        after_scan = time.perf_counter() - stamps[-1]
        fixed_units = sum(model.layer(name).out_channels for name in plan.atlas_fixed_layers)
        per_unit = after_scan / fixed_units
        ranks = run.calls.device_count()
        on_ranks = atlas_on_ranks(run, model, small, folder, ranks, default_batch) if ranks > 1 else None

    end_to_end = through[picked]["rate"]
    imagenet_decode = decode[("large", picked)]
    one_device = min(end_to_end, imagenet_decode)
    lines = [
        f"### Atlas: {model.name} (random weights) at {size} px, every conv unit ({len(model.layers)} layers, {units:,} units)",
        "",
        f"The scanner of `cnn_widgets.atlas.atlas` on the device as it runs it: float32 weights and activations "
        f"(cuDNN convolutions in TF32: `torch.backends.cudnn.allow_tf32` = {torch.backends.cudnn.allow_tf32}), channels_last, "
        f"top {k} per unit kept on the device, default batch {default_batch}. CPUs: {cpus} usable ({cpu_words}); "
        f"the atlas's default decoding workers per process: {picked}. JPEGs written for the run: {plan.atlas_images:,} at "
        f"{size} px ({small_bytes / plan.atlas_images / 1024:.0f} KiB each) and {large_count:,} at {large_width}x{large_height} "
        f"({large_bytes / large_count / 1024:.0f} KiB each; ImageNet's training JPEGs average about 400x350 px and 110 KB), random crops of the sample photos, in {written:.1f} s.",
        "",
        f"| what | images/s (measured) | ImageNet train ({IMAGENET_TRAIN:,} images) at this rate on 1 device (projected) |",
        "| --- | ---: | ---: |",
        *rows,
        "",
        f"Rates from files leave out the first 2 batches per worker (decoded ahead, before the first batch is taken: counting them "
        f"would flatter the rate) and run to the last batch. Before its first batch `atlas()` took "
        f"{through[picked]['startup']:.1f} s (listing the files, hashing the weights for the checkpoint key, starting the workers). "
        f"A checkpoint of every unit's top-{k} costs {checkpoint_ms:.0f} ms, every {defaults['checkpoint_every']} batches. "
        f"After the scan, `atlas()` merges the ranks, probes the receptive fields, reads each distinct example image once (in "
        f"its decoding workers, which also cut the crops), predicts each once, encodes the crops in a thread pool, and writes the store: on {len(plan.atlas_fixed_layers)} layers "
        f"({', '.join(plan.atlas_fixed_layers)}; {fixed_units:,} units) that took **{after_scan:.1f} s, {per_unit * 1000:.1f} ms per unit**, "
        f"so about **{per_unit * units / 60:.1f} min projected for all {units:,} units** (on one process; each rank writes the layers dealt to it). "
        f"An upper bound: images shared between layers are read once per pass (a pass holds up to 1 GiB of crops), and two layers "
        f"share fewer images than many do. At ImageNet's scale this part does not grow: each layer reads at most k x units images.",
        "",
        f"**Projected time for ImageNet train on 1 device: {IMAGENET_TRAIN / one_device / 60:,.1f} min** of scanning at "
        f"{one_device:,.0f} images/s (the lower of the measured end-to-end rate and the measured decoding rate of ImageNet-sized "
        f"JPEGs with the default workers; the device alone would allow {model_rate:,.0f} images/s, "
        f"{bottleneck(model_rate, end_to_end, imagenet_decode)}), "
        f"plus about {per_unit * units / 60:.1f} min for the store.",
        "",
    ]
    if on_ranks is not None:
        projected = [(n, min(n * model_rate, decode[("large", many)])) for n in sorted({2**i for i in range(1, 4)} | {ranks})]
        lines += [
            f"On {ranks} devices of this machine: `torchrun --standalone --nproc_per_node={ranks}`, each rank `atlas()` on its share of "
            f"the {plan.atlas_images:,} JPEGs of {size} px ({'NCCL' if run.device.type == 'cuda' else 'gloo'}; "
            f"{plural(decoding_workers(ranks), 'decoding worker')} per rank): **measured {on_ranks['rate']:,.0f} images/s** in all (the sum of the "
            f"ranks' steady rates), {on_ranks['images']:,} images; the slowest rank scanned "
            f"{on_ranks['slowest']:.1f} s after its call, {on_ranks['wall']:.1f} s after the launch.",
            "",
            f"| devices | projected images/s (N x the model-side rate, at most the decoding rate of ImageNet-sized JPEGs with {plural(many, 'worker')}) "
            f"| projected ImageNet train |",
            "| ---: | ---: | ---: |",
            *[f"| {n} | {rate:,.0f} | {IMAGENET_TRAIN / rate / 60:,.1f} min |" for n, rate in projected],
            "",
        ]
    else:
        lines += ["One device on this machine: no multi-device run (with more, the script runs torchrun on all of them).", ""]
    run.say(*lines)


# -- the run ------------------------------------------------------------------------------------


def setup(args) -> tuple[Plan, torch.device, Path, "CudaCalls | DryCalls"]:
    """The plan, device, output file and device calls of a run: the dry run's or the GPU's."""
    if args.dry:
        out = args.out or Path(tempfile.mkdtemp(prefix="cnn-widgets-gpu-dry-")) / "BENCHMARKS.md"
        if out.resolve() == report.BENCHMARKS_MD.resolve():
            raise SystemExit("--dry never writes BENCHMARKS.md: its numbers are not GPU figures")
        return DRY_PLAN, torch.device("cpu"), out, DryCalls()
    if not torch.cuda.is_available():
        raise SystemExit(
            f"No CUDA GPU is visible to torch {torch.__version__} (built with CUDA: {torch.version.cuda}). "
            "Run this on a machine with an NVIDIA GPU after `bash scripts/setup.sh`, or check the script "
            "on the CPU with `bash benchmarks/gpu.sh --dry`."
        )
    return GPU_PLAN, torch.device("cuda"), args.out or report.BENCHMARKS_MD, CudaCalls()


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="every step on the CPU at tiny sizes; writes to a temporary file")
    parser.add_argument("--out", type=Path, help="Markdown file to write the section into (default: BENCHMARKS.md; with --dry a temporary file)")
    parser.add_argument("--atlas-rank", metavar="SPEC", help=argparse.SUPPRESS)  # one torchrun rank of the atlas step
    args = parser.parse_args(argv)
    if args.atlas_rank:
        atlas_rank(args.atlas_rank)
        return Path()
    plan, device, out, calls = setup(args)
    run = Run(plan, device, args.dry, calls)
    threads = torch.get_num_threads()
    if args.dry:
        torch.set_num_threads(1)  # tiny tensors: a second thread only waits on the first (and on shared machines, much worse)
    try:
        return _run_all(run, args, out)
    finally:
        torch.set_num_threads(threads)


def run_steps(run: Run, steps, stop_on_error: bool) -> tuple[list[str], dict]:
    """Run each (name, step): their results by name, and the names of those that failed.
    ``stop_on_error`` (the dry run) lets an error through; otherwise (on a GPU) a failed step
    must not cost the others' figures: its traceback goes into the section and the run goes on.
    Each step's seconds go into ``run.step_seconds``."""
    failed, results = [], {}
    for name, step in steps:
        start = time.perf_counter()
        try:
            results[name] = step()
        except Exception as error:
            if stop_on_error:
                raise
            failed.append(name)
            run.say(f"### {name}: FAILED", "", "```", *traceback.format_exception(error)[-6:], "```", "")
            run.calls.empty_cache()
        finally:
            run.step_seconds[name] = time.perf_counter() - start
    return failed, results


def _run_all(run: Run, args, out: Path) -> Path:
    plan, device = run.plan, run.device
    torch.manual_seed(0)
    model = cw.load_model(plan.model, weights=None if plan.model != "fashion-cnn" else "default", device=device)
    run.say(
        "## GPU: every figure in one run",
        "",
        f"Machine: {run.calls.describe(run.device)}. Command: `{COMMAND}{' --dry' if args.dry else ''}` (issues 19 and 18).",
        "",
    )
    failed, results = run_steps(run, (("Peak", lambda: peaks(run)),), stop_on_error=True)
    peak = results["Peak"]
    failed, results = run_steps(run, (
        ("Activation maximization", lambda: maximization(run, model, peak)),
        ("Out-of-memory fallback", lambda: out_of_memory(run, model)),
        ("Throughput", lambda: throughput(run, model)),
        ("CPU and GPU agree", lambda: agreement(run, model)),
        ("Atlas", lambda: atlas_figures(run)),
    ), stop_on_error=run.dry)
    agreed = results.get("CPU and GPU agree")
    run.say(f"Total time of the run: {run.elapsed():.0f} s ({', '.join(f'{name.lower()} {seconds:.0f} s' for name, seconds in run.step_seconds.items())}).")
    report.write_section(SECTION, "\n".join(run.lines), path=out)
    print(f"\nwrote the {SECTION} section of {out}")
    if failed:
        print(f"steps that FAILED (their tracebacks are in the section): {', '.join(failed)}", file=sys.stderr)
    if agreed is False:
        print("CPU and GPU results do NOT agree to bfloat16 tolerance: see the table above", file=sys.stderr)
    if failed or agreed is False:
        raise SystemExit(1)
    return out


if __name__ == "__main__":
    main()
