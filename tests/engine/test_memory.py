"""Keeping freed memory in the process during long CPU computations (engine/memory.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cnn_widgets.engine import memory

needs_glibc = pytest.mark.skipif(memory._LIBC is None, reason="malloc here is not glibc's: keep_freed_memory does nothing")

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


@needs_glibc
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


@needs_glibc
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


class RecordingLibc:
    """Stands in for glibc: records the mallopt and malloc_trim calls instead of making them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_the_setting_is_made_on_entry_and_put_back_on_exit_also_after_an_error(monkeypatch):
    libc = RecordingLibc()
    monkeypatch.setattr(memory, "_LIBC", libc)
    monkeypatch.delenv(memory.OPT_OUT, raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")  # the host's own setting is what comes back
    with pytest.raises(KeyError):
        with memory.keep_freed_memory("cpu"):
            inside = list(libc.calls)
            raise KeyError("a failing computation")
    assert inside == [("mallopt", memory.M_MMAP_MAX, 0), ("mallopt", memory.M_TRIM_THRESHOLD, -1)]
    afterwards = libc.calls[len(inside):]
    assert ("mallopt", memory.M_TRIM_THRESHOLD, 12345) in afterwards
    assert ("mallopt", memory.M_MMAP_MAX, 65536) in afterwards and ("mallopt", memory.M_MMAP_THRESHOLD, 32 << 20) in afterwards
    assert afterwards[-1] == ("malloc_trim", 0), "the kept memory goes back to the system"


def test_nothing_is_set_without_glibc_when_turned_off_or_off_the_cpu(monkeypatch):
    libc = RecordingLibc()
    monkeypatch.setattr(memory, "_LIBC", libc)
    monkeypatch.setenv(memory.OPT_OUT, "0")
    with memory.keep_freed_memory("cpu"):
        assert not memory.is_available()
    monkeypatch.delenv(memory.OPT_OUT)
    with memory.keep_freed_memory("cuda"):
        pass
    assert libc.calls == []
    with memory.keep_freed_memory("cpu"):
        assert memory.is_available() and libc.calls, "the check above must be able to fail"
    monkeypatch.setattr(memory, "_LIBC", None)  # macOS, Windows, musl: no glibc to ask
    with memory.keep_freed_memory("cpu"):
        assert not memory.is_available()
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory._glibc() is None


def test_images_are_the_same_with_and_without_the_setting(monkeypatch):
    import cnn_widgets as cw
    from cnn_widgets.engine.optvis import maximize

    model = cw.load_model("fashion-cnn", device="cpu")
    monkeypatch.delenv(memory.OPT_OUT, raising=False)
    kept = maximize(model, "block2_conv1", [0, 3], steps=6, size=28, seed=1)
    monkeypatch.setenv(memory.OPT_OUT, "0")
    plain = maximize(model, "block2_conv1", [0, 3], steps=6, size=28, seed=1)
    assert torch.equal(kept, plain)
    assert not torch.equal(kept, maximize(model, "block2_conv1", [0, 3], steps=6, size=28, seed=2)), "the check must be able to fail"
