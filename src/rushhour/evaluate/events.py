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

from rushhour.notify.episodes import EpisodeTracker


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


def episode_starts(flags: np.ndarray, resolve_after: int = 3) -> np.ndarray:
    """The buckets where the live pipeline opens an episode (and notifies) from per-bucket flags.

    An episode opens at a flag outside any episode and resolves after ``resolve_after`` unflagged
    buckets in a row (:class:`~rushhour.notify.episodes.EpisodeTracker`, ``detect.resolve_after``):
    the event-level unit of what a live deployment announces.

    >>> episode_starts(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], dtype=bool)).astype(int).tolist()
    [0, 1, 0, 0, 0, 0, 0, 0, 1]
    """
    tracker = EpisodeTracker(resolve_after)
    out = np.zeros(len(flags), dtype=bool)
    for i, flag in enumerate(np.asarray(flags, dtype=bool).tolist()):
        out[i] = any(c.status == "firing" for c in tracker.observe("", i, flag))
    return out


def total(parts: Iterable[EventMetrics]) -> EventMetrics:
    out = EventMetrics()
    for p in parts:
        out = out + p
    return out
