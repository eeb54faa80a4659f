"""Every GPU figure in one run (issue 19): writes the GPU section of BENCHMARKS.md.

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

``--dry`` runs the same steps on the CPU at tiny sizes with fashion-cnn (the
"device" side of the agreement check then runs in bfloat16 autocast on the CPU
and the out-of-memory error is simulated), in a few seconds; it writes to a
temporary file, never to BENCHMARKS.md. tests/test_bench_gpu.py runs it, so this
script cannot rot while no GPU is around.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import statistics
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


GPU_PLAN = Plan(
    model="vgg16", filters_per_layer=None, size=None, probe_size=8192, probe_repeats=10, layer_steps=5, full_budget_s=150.0, total_budget_s=420.0, float32_steps=5,
    oom_cap_bytes=4 << 30, oom_simulated_fit=0, repeats=10, cam_batch=32,
    examples=(("vgg16", 2048), ("fashion-cnn", 10000)), agreement_size=64, agreement_filters=8,
)
DRY_PLAN = Plan(
    model="fashion-cnn", filters_per_layer=3, size=16, probe_size=128, probe_repeats=1, layer_steps=2, full_budget_s=0.2,
    total_budget_s=60.0, float32_steps=2, oom_cap_bytes=0, oom_simulated_fit=2, repeats=1, cam_batch=4,
    examples=(("fashion-cnn", 32),), agreement_size=16, agreement_filters=3,
)


class Run:
    """The device, the plan, and the Markdown section as it grows."""

    def __init__(self, plan: Plan, device: torch.device, dry: bool) -> None:
        self.plan, self.device, self.dry = plan, device, dry
        self.lines: list[str] = []
        self.began = time.perf_counter()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

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
    # A slower GPU than planned for: keep about two minutes for the steps after this one.
    budget = min(plan.full_budget_s, max(plan.full_budget_s / 10, plan.total_budget_s - run.elapsed() - 120))
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
    if run.dry:
        def refuse(_module, inputs):
            if inputs[0].shape[0] > run.plan.oom_simulated_fit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by the dry run)")

        handle = model.module.register_forward_pre_hook(refuse)
        try:
            yield "a simulated `torch.cuda.OutOfMemoryError` for batches over " f"{run.plan.oom_simulated_fit} images"
        finally:
            handle.remove()
        return
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(run.device).total_memory
    fraction = min(run.plan.oom_cap_bytes / total, 0.5)
    torch.cuda.set_per_process_memory_fraction(fraction, run.device)
    try:
        yield f"the process capped at {fraction * total / 2**30:.1f} GiB of the GPU's {total / 2**30:.0f} GiB (`torch.cuda.set_per_process_memory_fraction`)"
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, run.device)
        torch.cuda.empty_cache()


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
        other = model if name == model.name else cw.load_model(name, weights=None if name != "fashion-cnn" else "default", device=run.device)
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
    if model.name == "fashion-cnn" and count > 1000:
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


# -- the run ------------------------------------------------------------------------------------


def describe(run: Run) -> str:
    if run.dry:
        return f"DRY RUN on the CPU at tiny sizes ({report.machine()}): these numbers only show that every step runs"
    props = torch.cuda.get_device_properties(run.device)
    return (
        f"{props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}; "
        f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; Python {sys.version.split()[0]}, torch {torch.__version__}; "
        f"bfloat16 supported: {torch.cuda.is_bf16_supported()}"
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="every step on the CPU at tiny sizes; writes to a temporary file")
    parser.add_argument("--out", type=Path, help="Markdown file to write the section into (default: BENCHMARKS.md; with --dry a temporary file)")
    args = parser.parse_args(argv)
    if args.dry:
        out = args.out or Path(tempfile.mkdtemp(prefix="cnn-widgets-gpu-dry-")) / "BENCHMARKS.md"
        if out.resolve() == report.BENCHMARKS_MD.resolve():
            parser.error("--dry never writes BENCHMARKS.md: its numbers are not GPU figures")
        plan, device = DRY_PLAN, torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            sys.exit(
                f"No CUDA GPU is visible to torch {torch.__version__} (built with CUDA: {torch.version.cuda}). "
                "Run this on a machine with an NVIDIA GPU after `bash scripts/setup.sh`, or check the script "
                "on the CPU with `bash benchmarks/gpu.sh --dry`."
            )
        out = args.out or report.BENCHMARKS_MD
        plan, device = GPU_PLAN, torch.device("cuda")
    run = Run(plan, device, args.dry)
    threads = torch.get_num_threads()
    if args.dry:
        torch.set_num_threads(1)  # tiny tensors: a second thread only waits on the first (and on shared machines, much worse)
    try:
        return _run_all(run, args, out)
    finally:
        torch.set_num_threads(threads)


def _run_all(run: Run, args, out: Path) -> Path:
    plan, device = run.plan, run.device
    torch.manual_seed(0)
    model = cw.load_model(plan.model, weights=None if plan.model != "fashion-cnn" else "default", device=device)
    run.say(
        "## GPU: every figure in one run",
        "",
        f"Machine: {describe(run)}. Command: `{COMMAND}{' --dry' if args.dry else ''}` (issue 19).",
        "",
    )
    peak = peaks(run)
    failed = []
    agreed = None
    for name, step in (
        ("Activation maximization", lambda: maximization(run, model, peak)),
        ("Out-of-memory fallback", lambda: out_of_memory(run, model)),
        ("Throughput", lambda: throughput(run, model)),
        ("CPU and GPU agree", lambda: agreement(run, model)),
    ):
        try:
            result = step()
        except Exception as error:
            if run.dry:
                raise  # the dry run exists to catch this: let the test show the traceback
            # On a GPU a failed step must not cost the others' figures: say what failed and go on.
            failed.append(name)
            run.say(f"### {name}: FAILED", "", "```", *traceback.format_exception(error)[-6:], "```", "")
            if run.device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        if name == "CPU and GPU agree":
            agreed = result
    run.say(f"Total time of the run: {run.elapsed():.0f} s.")
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
