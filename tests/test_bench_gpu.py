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
    for heading in ("### Peak", "### Activation maximization", "### Out-of-memory fallback", "### Throughput", "### CPU and GPU agree"):
        assert heading in section, heading
    # every conv layer of the model is timed for the projection
    for layer in ("block1_conv1", "block2_conv2", "block3_conv2"):
        assert re.search(rf"^\| {layer} \| 3 \| [\d.]+ ms \|", section, re.MULTILINE), layer
    assert "Projected time for all 18 filters" in section
    assert "Out-of-memory errors caught: 1 (batches of 5); the batch halved to **2**" in section
    assert "differs by at most 0 per pixel" in section
    agreement = section.split("### CPU and GPU agree")[1]
    rows = [line for line in agreement.splitlines() if line.startswith("| ") and not line.startswith(("| quantity", "| ---"))]
    assert len(rows) == 4 and all(row.endswith("| yes |") for row in rows), rows
    # the device side of the dry run is CPU bfloat16: a real difference, not a comparison with itself
    gradient = next(row for row in rows if "input gradient" in row)
    assert float(gradient.split("|")[3]) > 1e-3


def test_the_dry_run_refuses_to_write_benchmarks_md():
    with pytest.raises(SystemExit):
        load_bench_gpu().main(["--dry", "--out", str(ROOT / "BENCHMARKS.md")])


def test_without_a_gpu_the_real_run_says_how_to_check_the_script(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--dry"):
        load_bench_gpu().main([])
