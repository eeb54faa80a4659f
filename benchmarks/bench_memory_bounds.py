"""Memory that stays bounded: 100 images through one FeatureMaps widget, and 20
bare modules passed to the engine and dropped. Each scenario runs in a fresh
Python process and reports how much its resident memory grew (after
``gc.collect()``), for this checkout and optionally for another one
(``--baseline /path/to/checkout``, e.g. the main branch before the fix).

    .venv/bin/python benchmarks/bench_memory_bounds.py --baseline /work/main
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

SCENARIOS = {
    "images": "100 images (random 64x64 photos) through one FeatureMaps of vgg11 (random weights, 64x64 input), layer block1_conv1",
    "modules": "20 bare modules (25 MB of parameters each) created, passed to engine.feature_maps and dropped",
}

_CHILD = r"""
import gc, json, sys
import numpy as np, psutil, torch
from torch import nn
import cnn_widgets as cw
from cnn_widgets import engine

torch.set_num_threads(2)
process = psutil.Process()
scenario = sys.argv[1]
rng = np.random.default_rng(0)

def rss():
    gc.collect()
    return process.memory_info().rss

if scenario == "images":
    model = cw.load_model("vgg11", weights=None, device="cpu", input_size=(3, 64, 64))
    maps = cw.FeatureMaps(model, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), layer="block1_conv1")
    before = rss()
    for _ in range(100):
        maps.set_image(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        maps._redraw_grid()
        assert not maps.error, maps.error
    after = rss()
else:
    image = torch.rand(1, 3, 32, 32)
    def bare():
        return nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 400_000))
    engine.feature_maps(bare(), image)  # imports and first-call allocations before measuring
    before = rss()
    for _ in range(20):
        engine.feature_maps(bare(), image)
    after = rss()
print(json.dumps({"grew_mb": (after - before) / 1e6}))
"""


def measure(checkout: Path, scenario: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    # cwd: `python -c` puts the working folder first on sys.path, before PYTHONPATH.
    result = subprocess.run([sys.executable, "-c", _CHILD, scenario], env=env, cwd=checkout, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["grew_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure the same way (e.g. main before the fix)")
    args = parser.parse_args()
    rows = []
    for scenario, what in SCENARIOS.items():
        ours = measure(REPO, scenario)
        base = f"{measure(args.baseline, scenario):+.0f} MB" if args.baseline else "not measured"
        rows.append(f"| {what} | {ours:+.0f} MB | {base} |")
        print(rows[-1], flush=True)
    command = "python benchmarks/bench_memory_bounds.py" + (f" --baseline {args.baseline}" if args.baseline else "")
    body = (
        "## Memory: caches bounded, dropped models freed\n\n"
        f"Machine: {report.machine()}. Command: `{command}`: each scenario in a fresh process, "
        "growth of resident memory (after `gc.collect()`) from the first image or module to the last.\n\n"
        "| scenario | this checkout | baseline |\n| --- | ---: | ---: |\n" + "\n".join(rows) + "\n\n"
        "Bounds: FeatureMaps keeps at most 64 MB of drawn grids per widget (`GRID_CACHE_BYTES`), the engine at most "
        "256 MB of feature maps (`engine.activations.CACHE_BYTES`); a bare module passed to the engine is freed when "
        "its caller drops it. `tests/test_memory_bounds.py` checks both."
    )
    report.write_section("bench_memory_bounds", body)


if __name__ == "__main__":
    main()
