"""The one-command GPU benchmark (benchmarks/gpu.sh) in its dry mode: every step on the
CPU at tiny sizes, so the script that a GPU session will run cannot rot unnoticed."""
from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_bench_gpu():
    if "bench_gpu" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_gpu"] = module  # before running it: its dataclass looks itself up there
        spec.loader.exec_module(module)
    return sys.modules["bench_gpu"]


def test_the_dry_run_writes_every_figure_to_a_temporary_file_and_leaves_benchmarks_md_alone():
    committed = (ROOT / "BENCHMARKS.md").read_bytes()
    out = load_bench_gpu().main(["--dry"])
    assert (ROOT / "BENCHMARKS.md").read_bytes() == committed
    assert out.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    text = out.read_text()
    section = re.search(r"<!-- bench_gpu:start -->(.*)<!-- bench_gpu:end -->", text, re.DOTALL).group(1)
    assert "DRY RUN" in section
    for heading in ("### Peak", "### Activation maximization", "### Out-of-memory fallback", "### Throughput", "### CPU and GPU agree", "### Atlas"):
        assert heading in section, heading
    # every conv layer of the model is timed for the projection
    for layer in ("block1_conv1", "block2_conv2", "block3_conv2"):
        assert re.search(rf"^\| {layer} \| 3 \| [\d.]+ ms \|", section, re.MULTILINE), layer
    assert "Projected time for all 18 filters" in section
    assert "Out-of-memory errors caught: 1 (batches of 5); the batch halved to **2**" in section
    assert "differs by at most 0 per pixel" in section
    agreement = section.split("### CPU and GPU agree")[1].split("### Atlas")[0]
    rows = [line for line in agreement.splitlines() if line.startswith("| ") and not line.startswith(("| quantity", "| ---"))]
    assert len(rows) == 4 and all(row.endswith("| yes |") for row in rows), rows
    # the device side of the dry run is CPU bfloat16: a real difference, not a comparison with itself
    gradient = next(row for row in rows if "input gradient" in row)
    assert float(gradient.split("|")[3]) > 1e-3
    check_atlas_section(section.split("### Atlas")[1].split("Total time of the run")[0])


def number(text: str) -> float:
    return float(text.replace(",", ""))


def check_atlas_section(atlas: str) -> None:
    """The atlas step's figures: every rate measured, ImageNet projected from them, the multi-device run."""
    bench_gpu = load_bench_gpu()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in atlas.splitlines() if line.startswith("| ") and "images/s" not in line and "---" not in line}
    # the scanner on device-resident batches at the atlas's default batch (64) and a larger one; atlas() from JPEG files
    # with the atlas's default decoding workers; the decoder alone on both folders of JPEGs
    kinds = [name.split(":")[0] for name in rows if not name[0].isdigit()]
    assert kinds.count("model side") == 2 and kinds.count("end to end") >= 1 and kinds.count("decoding alone (the atlas's `ImageFiles` in a DataLoader, no model)") >= 2, kinds
    assert any("batch 64 " in name for name in rows if name.startswith("model side")), list(rows)
    assert any("(the atlas default)" in name and "256 JPEGs of 28 px" in name for name in rows if name.startswith("end to end")), list(rows)
    for name, (rate, minutes, *_) in rows.items():
        if not name[0].isdigit():  # each projection is ImageNet's training images at the measured rate
            assert number(rate) > 0, name
            assert abs(number(minutes.split()[0]) - bench_gpu.IMAGENET_TRAIN / number(rate) / 60) <= 0.05 + 0.002 * number(minutes.split()[0]), name
    projected = re.search(r"\*\*Projected time for ImageNet train on 1 device: ([\d,.]+) min\*\* of scanning at ([\d,]+) images/s", atlas)
    assert projected, atlas
    # the work after the scan, timed on two layers, projected to all 448 units of fashion-cnn
    assert re.search(r"on 2 layers \(block1_conv1, block2_conv1; 96 units\) that took \*\*[\d.]+ s, [\d.]+ ms per unit\*\*, "
                     r"so about \*\*[\d.]+ min projected for all 448 units\*\*", atlas), atlas
    # the dry run's pretend second device: two gloo ranks under torchrun scanned all 256 images between them
    assert re.search(r"`torchrun --standalone --nproc_per_node=2`.*\(gloo; \d+ decoding workers? per rank\): \*\*measured [\d,]+ images/s\*\* in all.*, 256 images;", atlas), atlas
    assert [name for name in rows if name[0].isdigit()] == ["2", "4", "8"]


def test_the_dry_run_refuses_to_write_benchmarks_md():
    with pytest.raises(SystemExit):
        load_bench_gpu().main(["--dry", "--out", str(ROOT / "BENCHMARKS.md")])


def test_without_a_gpu_the_real_run_says_how_to_check_the_script(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--dry"):
        load_bench_gpu().main([])


def test_every_torch_cuda_call_is_a_real_torch_function_and_the_dry_run_swaps_each_one():
    """The lines only a GPU run executes: every torch.cuda / torch.backends / torch.version name
    in the script exists in this torch, and DryCalls stands in for every method of CudaCalls."""
    import ast
    import inspect

    import torch

    bench_gpu = load_bench_gpu()
    tree = ast.parse((ROOT / "benchmarks" / "bench_gpu.py").read_text())
    chains = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts, inner = [], node
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id == "torch" and parts[-1] in ("cuda", "backends", "version"):
                chains.add(".".join(reversed(parts)))
    assert {"cuda.synchronize", "cuda.set_per_process_memory_fraction", "cuda.get_device_properties", "cuda.device_count"} <= chains
    for chain in chains:
        target = torch
        for part in chain.split("."):
            assert hasattr(target, part), f"torch.{chain}"
            target = getattr(target, part)
    for name, method in inspect.getmembers(bench_gpu.CudaCalls, inspect.isfunction):
        stand_in = getattr(bench_gpu.DryCalls, name, None)
        assert stand_in is not None and inspect.signature(stand_in) == inspect.signature(method), name
    # the real calls' arguments bind to torch's own signatures
    inspect.signature(torch.cuda.set_per_process_memory_fraction).bind(0.5, 0)
    inspect.signature(torch.cuda.synchronize).bind(torch.device("cuda"))
    inspect.signature(torch.cuda.get_device_properties).bind(torch.device("cuda"))


def test_with_a_gpu_the_run_plans_the_full_sizes_and_writes_benchmarks_md(monkeypatch):
    import argparse

    import torch

    bench_gpu = load_bench_gpu()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    plan, device, out, calls = bench_gpu.setup(argparse.Namespace(dry=False, out=None))
    assert (plan, device.type, out, type(calls)) == (bench_gpu.GPU_PLAN, "cuda", ROOT / "BENCHMARKS.md", bench_gpu.CudaCalls)
    assert (plan.atlas_model, plan.atlas_fixed_layers) == ("resnet50", ("conv1", "layer4.0.conv1"))


def test_on_a_gpu_a_failing_step_is_reported_in_the_section_and_the_next_step_still_runs():
    import torch

    bench_gpu = load_bench_gpu()
    run = bench_gpu.Run(bench_gpu.DRY_PLAN, torch.device("cpu"), dry=False, calls=bench_gpu.DryCalls())
    failed, results = bench_gpu.run_steps(run, (("Broken", lambda: 1 / 0), ("Fine", lambda: "done")), stop_on_error=False)
    assert failed == ["Broken"] and results == {"Fine": "done"}
    assert "### Broken: FAILED" in run.lines and any("ZeroDivisionError" in line for line in run.lines)
    assert set(run.step_seconds) == {"Broken", "Fine"}
    with pytest.raises(ZeroDivisionError):
        bench_gpu.run_steps(run, (("Broken", lambda: 1 / 0),), stop_on_error=True)


def test_the_memory_cap_is_set_for_the_block_and_lifted_after_it_also_after_an_error():
    import torch

    import cnn_widgets as cw

    bench_gpu = load_bench_gpu()
    calls = bench_gpu.DryCalls()
    run = bench_gpu.Run(bench_gpu.DRY_PLAN, torch.device("cpu"), dry=True, calls=calls)
    model = cw.load_model("fashion-cnn")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        with bench_gpu.small_memory(run, model):
            assert calls.memory_fractions == [0.0]
            model.module(torch.zeros(bench_gpu.DRY_PLAN.oom_simulated_fit + 1, 1, 28, 28))
    assert calls.memory_fractions == [0.0, 1.0]
    model.module(torch.zeros(8, 1, 28, 28))  # the simulated refusal is gone with the cap
    # as torch.cuda: a device without an index is refused (the first version of this script passed torch.device("cuda"))
    with pytest.raises(ValueError, match="specified index"):
        calls.set_memory_fraction(0.5, torch.device("cuda"))
    assert bench_gpu.CudaCalls().index(torch.device("cuda", 3)) == 3


def test_the_atlas_figures_name_the_part_that_sets_the_pace():
    bottleneck = load_bench_gpu().bottleneck
    assert bottleneck(3000, 1200, 1250).startswith("so the decoders are the bottleneck: ImageNet-sized JPEGs decode at 1,250 images/s")
    assert bottleneck(3000, 1200, 9000).startswith("so neither the device nor the decoders alone")
    assert bottleneck(3000, 2950, 9000) == "so the device is the bottleneck"


def test_a_rate_from_files_leaves_out_the_batches_decoded_ahead():
    steady_rate = load_bench_gpu().steady_rate
    # 2 workers decoded 4 batches ahead: they arrive at once, then one batch of 64 every 0.1 s
    stamps = [(0.0, 64), (0.001, 128), (0.002, 192), (0.003, 256)] + [(0.003 + 0.1 * i, 256 + 64 * i) for i in range(1, 9)]
    rate, batches = steady_rate(stamps, in_flight=4)
    assert batches == 8 and abs(rate - 640) < 1e-6
    assert steady_rate(stamps[:3], in_flight=4) == ((192 - 128) / 0.001, 1)  # at most half of a short run is left out
