"""Keeping freed memory in the process during long CPU computations (engine/memory.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnn_widgets.engine import memory

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="malloc here is not glibc's: keep_freed_memory does nothing")

REUSES = 8
# Reusing a freed 64 MiB buffer REUSES times. Without the setting glibc maps it fresh each time
# and every page faults in again (REUSES buffers' worth of page faults); with it, malloc's heap
# serves the same pages again, except now and then when a small allocation lands next to the
# freed block and the aligned request no longer fits in it.
FRESH = REUSES - 0.5
KEPT = REUSES / 2
MEASURE = f"""
import resource, torch
BUFFER = 64 << 20

def buffers_faulted_in():
    torch.empty(BUFFER // 4).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range({REUSES}):
        torch.empty(BUFFER // 4).fill_(1.0)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (BUFFER // resource.getpagesize())

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
"""


def in_a_fresh_process(body: str) -> dict:
    """Run ``body`` after MEASURE in a new Python (malloc's state is the process's); its JSON output."""
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    environment.pop(memory.OPT_OUT, None)
    done = subprocess.run([sys.executable, "-c", MEASURE + textwrap.dedent(body)], env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_only_inside_a_cpu_computation_and_given_back_afterwards():
    seen = in_a_fresh_process("""
        import json, os
        from cnn_widgets.engine.memory import keep_freed_memory, OPT_OUT
        seen = {"before": buffers_faulted_in()}
        with keep_freed_memory("cuda"):  # a GPU computation allocates little on the host: nothing changes
            seen["cuda"] = buffers_faulted_in()
        os.environ[OPT_OUT] = "0"
        with keep_freed_memory("cpu"):
            seen["opted_out"] = buffers_faulted_in()
        del os.environ[OPT_OUT]
        with keep_freed_memory("cpu"):
            seen["inside"] = buffers_faulted_in()
            with keep_freed_memory("cpu"):  # a nested or concurrent computation ...
                pass
            seen["after_nested"] = buffers_faulted_in()  # ... does not end the outer one's setting
            seen["resident_inside"] = resident_mib()
        seen["resident_after"] = resident_mib()
        print(json.dumps(seen))
    """)
    assert seen["before"] > FRESH, "by default every reuse faults the pages in again"
    assert seen["cuda"] > FRESH and seen["opted_out"] > FRESH
    assert seen["inside"] < KEPT and seen["after_nested"] < KEPT
    assert seen["resident_inside"] - seen["resident_after"] > 48, "the kept 64 MiB go back to the system afterwards"


def test_maximize_and_dream_keep_freed_memory_while_they_run():
    seen = in_a_fresh_process("""
        import json
        import cnn_widgets as cw
        from cnn_widgets.engine.optvis import dream, maximize
        model = cw.load_model("fashion-cnn", device="cpu")
        during = []
        record = lambda *_: during.append(buffers_faulted_in()) if len(during) < 2 else None
        maximize(model, "block1_conv1", [0], steps=1, size=16, progress=record)
        dream(model, cw.sample_image("sneaker"), "block1_conv2", octaves=1, steps=1, progress=record)
        print(json.dumps({"during": during}))
    """)
    assert len(seen["during"]) == 2 and all(faulted < KEPT for faulted in seen["during"]), seen
