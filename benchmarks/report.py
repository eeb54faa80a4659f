"""Shared by the benchmarks: timing with warm-up, machine description, and
writing one section of BENCHMARKS.md between markers without touching others."""
from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun that script to refresh it.\n"


def parse_threads(doc: str):
    """Arguments of a benchmark that takes ``--threads`` (torch CPU threads), applied at once."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def timeit(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def machine() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    return f"{device}; Python {platform.python_version()}, torch {torch.__version__}"


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section between <!-- NAME:start --> and <!-- NAME:end --> of ``path``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    path = Path(path)
    text = path.read_text() if path.exists() else HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
