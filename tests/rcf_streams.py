"""The synthetic traffic streams the RCF tests and benchmarks share (20,000 one-minute buckets)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from rushhour.series.generate import generate_traffic

N = 20_000
START = datetime(2026, 1, 5, tzinfo=UTC)


def traffic_stream(columns: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``columns`` services' request counts side by side, and a mask of the normal rows (outside
    every labelled anomaly window of every column)."""
    cols = []
    normal = np.ones(N, dtype=bool)
    for c in range(columns):
        t = generate_traffic(START, days=14, seed=seed + c, anomalies_per_day=1.0)
        frame = t.frame.iloc[:N]
        cols.append(frame["value"].to_numpy(dtype=float))
        for w in t.anomalies:
            normal &= ~((frame.index >= w.start) & (frame.index <= w.end))
    return np.column_stack(cols), normal
