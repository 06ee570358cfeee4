"""Event-level metrics: was each labelled window caught, how fast, and how many alerts were false.

A window (inclusive ends, in rows) is *detected* when at least one alert falls inside it; its delay is
the number of buckets from the window's start to its first alert. An alert outside every window is a
false positive. Precision = alerts inside windows counted once per window / (that + false alerts),
recall = detected windows / windows.

>>> import numpy as np
>>> alerts = np.zeros(20, dtype=bool); alerts[[3, 4, 12]] = True
>>> m = event_metrics(alerts, [(2, 5), (9, 10)])
>>> m.tp, m.fn, m.fp, m.delays, round(m.f1, 3)
(1, 1, 1, [1], 0.5)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EventMetrics:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    delays: list[int] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def mean_delay(self) -> float | None:
        return float(np.mean(self.delays)) if self.delays else None

    @property
    def median_delay(self) -> float | None:
        return float(np.median(self.delays)) if self.delays else None

    def __add__(self, other: EventMetrics) -> EventMetrics:
        return EventMetrics(
            self.tp + other.tp, self.fn + other.fn, self.fp + other.fp, self.delays + other.delays
        )

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "mean_delay": None if self.mean_delay is None else round(self.mean_delay, 2),
            "median_delay": self.median_delay,
        }


def event_metrics(
    alerts: np.ndarray, windows: Sequence[tuple[int, int]], ignore_before: int = 0
) -> EventMetrics:
    """Metrics for one series; alerts before row ``ignore_before`` are not counted."""
    a = np.asarray(alerts, dtype=bool).copy()
    a[:ignore_before] = False
    inside = np.zeros(a.size, dtype=bool)
    m = EventMetrics()
    for lo, hi in windows:
        if hi < ignore_before:
            continue
        inside[lo : hi + 1] = True
        hits = np.flatnonzero(a[lo : hi + 1])
        if hits.size:
            m.tp += 1
            m.delays.append(int(hits[0]))
        else:
            m.fn += 1
    m.fp = int((a & ~inside).sum())
    return m


def total(parts: Iterable[EventMetrics]) -> EventMetrics:
    out = EventMetrics()
    for p in parts:
        out = out + p
    return out
