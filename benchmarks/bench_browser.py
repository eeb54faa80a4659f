"""From a keyboard arrow press to the new image painted, in a real browser.

    .venv/bin/python benchmarks/bench_browser.py [--presses 60]

JupyterLab on 127.0.0.1, headless Debian Chromium (Playwright), FeatureMaps on
the shipped model. The widget itself records, for each arrow press, the time
from the keydown event to the frame after the new enlarged image has decoded
(``data-last-latency-ms``); the press after that waits until it is painted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
from browser.jupyter import VIEWPORT, launch_chromium, open_notebook, running_server, wait_for_output  # noqa: E402

CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps",
]


def measure(presses: int) -> list[float]:
    latencies = []
    with running_server("lab") as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_notebook(page, server, CELLS)
        widget = wait_for_output(page, ".cw-feature-maps").first
        widget.focus()
        for press in range(presses):
            paints = int(widget.get_attribute("data-paints") or 0)
            key = "ArrowRight" if (press // 31) % 2 == 0 else "ArrowLeft"
            page.keyboard.press(key)
            page.wait_for_function(
                "([el, n]) => Number(el.dataset.paints || 0) > n && el.dataset.lastLatencyMs !== undefined",
                arg=[widget.element_handle(), paints],
            )
            latencies.append(float(widget.get_attribute("data-last-latency-ms")))
        browser.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presses", type=int, default=60)
    args = parser.parse_args()
    latencies = sorted(measure(args.presses))
    median = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    body = (
        "## Arrow key to new image painted (real browser)\n\n"
        f"Machine: {report.machine()}; JupyterLab, headless Chromium. "
        f"Command: `.venv/bin/python benchmarks/bench_browser.py --presses {args.presses}`.\n\n"
        "| widget | presses | median | 95th percentile | max | target |\n| --- | ---: | ---: | ---: | ---: | --- |\n"
        f"| FeatureMaps, fashion-cnn block1_conv2 (28x28 maps) | {len(latencies)} | {median:.0f} ms | {p95:.0f} ms | {latencies[-1]:.0f} ms | median < 100 ms, p95 < 200 ms |"
    )
    print(body)
    report.write_section("bench_browser", body)


if __name__ == "__main__":
    main()
