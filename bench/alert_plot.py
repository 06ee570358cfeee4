"""Benchmark: rendering the alert PNG (target: under 300 ms per plot).

Peers measured in the same run, because the machine is shared and noisy: an empty Agg figure saved
as PNG (the floor any matplotlib plot pays) and a plain one-line plot of the same data.

    PYTHONPATH=src python bench/alert_plot.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from matplotlib.figure import Figure

from rushhour.notify.plot import DPI, HEIGHT_IN, WIDTH_IN, example, render


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up: font cache, first canvas
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
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

    rows = {
        "empty figure": _timed(empty, args.repeat),
        "one-line plot": _timed(line, args.repeat),
        "alert plot": _timed(lambda: render(alert, data), args.repeat),
    }
    base = statistics.median(rows["empty figure"])
    print(f"{'case':<16}{'median ms':>11}{'p95 ms':>9}{'x empty':>9}")
    for name, ms in rows.items():
        p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
        print(
            f"{name:<16}{statistics.median(ms):>11.1f}{p95:>9.1f}{statistics.median(ms) / base:>9.2f}"
        )
    size = len(render(alert, data))
    print(
        f"alert PNG: {size:,} bytes, {int(WIDTH_IN * DPI)}x{int(HEIGHT_IN * DPI)} px, "
        f"target < 300 ms: {'met' if statistics.median(rows['alert plot']) < 300 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
