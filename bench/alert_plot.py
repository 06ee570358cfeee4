"""Benchmark: rendering the alert PNG (target: under 300 ms per plot, median and p95).

Peers measured in the same run, because the machine is shared and noisy: an empty Agg figure saved
as PNG (the floor any matplotlib plot pays) and a plain one-line plot of the same data, each built
from scratch per call as a one-off plot would be. The alert plot reuses its per-thread figure, as
the live worker does after :func:`rushhour.notify.plot.warm_up`; the cold first render (imports,
font cache, figure build) is measured separately in a fresh process.

    PYTHONPATH=src python bench/alert_plot.py [--repeat 40]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from matplotlib.figure import Figure

from rushhour.notify.plot import DPI, HEIGHT_IN, WIDTH_IN, example, render

COLD = """
import time
t0 = time.perf_counter()
from rushhour.notify.plot import example, render
t1 = time.perf_counter()
alert, data = example()
t2 = time.perf_counter()
render(alert, data)
t3 = time.perf_counter()
render(alert, data)
t4 = time.perf_counter()
print(f"{(t1 - t0) * 1000:.1f} {(t3 - t2) * 1000:.1f} {(t4 - t3) * 1000:.1f}")
"""


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up: font cache, first canvas
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _p95(ms: list[float]) -> float:
    return sorted(ms)[int(0.95 * (len(ms) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    alert, data = example()

    def empty() -> bytes:
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def line() -> bytes:
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        fig.add_subplot().plot(data.index, data.value)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    cold = subprocess.run(
        [sys.executable, "-c", COLD], capture_output=True, text=True, check=True
    ).stdout.split()
    rows = {
        "empty figure": _timed(empty, args.repeat),
        "one-line plot": _timed(line, args.repeat),
        "alert plot": _timed(lambda: render(alert, data), args.repeat),
    }
    base = statistics.median(rows["one-line plot"])
    print(f"{'case':<16}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'x one-line':>12}")
    for name, ms in rows.items():
        med = statistics.median(ms)
        print(f"{name:<16}{med:>11.1f}{_p95(ms):>9.1f}{max(ms):>9.1f}{med / base:>12.2f}")
    print(
        f"cold, fresh process: import {cold[0]} ms, first render {cold[1]} ms, "
        f"second render {cold[2]} ms"
    )
    ms = rows["alert plot"]
    met = statistics.median(ms) < 300 and _p95(ms) < 300
    size = len(render(alert, data))
    print(
        f"alert PNG: {size:,} bytes, {int(WIDTH_IN * DPI)}x{int(HEIGHT_IN * DPI)} px, "
        f"target < 300 ms (median and p95): {'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
