"""Helpers for testing rushhour and its plugins the way rushhour tests itself.

>>> clock = FakeClock(wall=1_700_000_000)
>>> clock.sleep(5); clock.monotonic(), clock.wall()
(5.0, 1700000005.0)
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from rushhour.notify.alert import Alert
from rushhour.notify.registry import Delivery
from rushhour.series.generate import generate_traffic

STREAM_LENGTH = 20_000
STREAM_START = datetime(2026, 1, 5, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when slept or advanced."""

    def __init__(self, wall: float = 0.0) -> None:
        self._mono = 0.0
        self._wall0 = float(wall)

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall0 + self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        self._mono += seconds


class ListChannel:
    """A notification channel (``[[notify]]`` plugin interface) that keeps the alerts delivered to it.

    Hand it to the pipeline (``build_runtime(..., [channel])``): its alerts then come through the
    notifier like any channel's — episodes, filters, grouping, the outbox and delivery."""

    name = "list"
    min_severity = "info"
    uses_image = False  # no plot is rendered for it

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def deliver(self, delivery: Delivery) -> None:
        self.alerts.extend(delivery.alerts)


def traffic_stream(columns: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``columns`` services' one-minute request counts side by side (20,000 buckets), and a mask of
    the normal rows (outside every labelled anomaly window of every column). The RCF agreement tests
    and ``bench/rcf.py`` score the same streams."""
    cols = []
    normal = np.ones(STREAM_LENGTH, dtype=bool)
    for c in range(columns):
        t = generate_traffic(STREAM_START, days=14, seed=seed + c, anomalies_per_day=1.0)
        frame = t.frame.iloc[:STREAM_LENGTH]
        cols.append(frame["value"].to_numpy(dtype=float))
        for w in t.anomalies:
            normal &= ~((frame.index >= w.start) & (frame.index <= w.end))
    return np.column_stack(cols), normal
