"""Event-time tumbling buckets with a watermark.

The watermark is the largest event time seen minus the allowed lateness. A bucket ``[s, s + w)`` closes
when ``s + w <= watermark``; every known series closes every bucket, with 0 where it had no records, so
drops to zero stay visible. A record for a bucket that has already closed is *late*: it still updates
the stored bucket, and is counted, but the closed bucket is not scored again.

The bucketizer is pure. Its only durable state is the watermark: open buckets' partial sums are written
to the store with every batch, so a restart reloads them (:meth:`restore`).

>>> b = EventTimeBucketizer(width=60, lateness=120)
>>> update = b.add(["a", "a", "b"], [0.0, 30.0, 65.0], [1.0, 1.0, 1.0])
>>> update.deltas
{('a', 0): 2.0, ('b', 60): 1.0}
>>> [(c.key, c.start, c.value) for c in b.add(["a"], [250.0], [1.0]).closed]
[('a', 0, 2.0), ('a', 60, 0.0), ('b', 60, 1.0)]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClosedBucket:
    key: str
    start: int
    value: float


@dataclass
class Update:
    """What one batch did: value deltas per (series, bucket), late ones, and buckets it closed."""

    deltas: dict[tuple[str, int], float] = field(default_factory=dict)
    late: dict[tuple[str, int], float] = field(default_factory=dict)
    closed: list[ClosedBucket] = field(default_factory=list)
    late_records: int = 0


class EventTimeBucketizer:
    """Sums values per series into epoch-aligned buckets and closes them behind the watermark."""

    def __init__(self, width: int, lateness: int = 120) -> None:
        if width <= 0:
            raise ValueError(f"width must be > 0 seconds, got {width}")
        if lateness < 0:
            raise ValueError(f"lateness must be >= 0 seconds, got {lateness}")
        self.width = width
        self.lateness = lateness
        self.max_event: float | None = None
        self.closed_until: int | None = None  # every bucket starting before this is closed
        self.open: dict[str, dict[int, float]] = defaultdict(dict)
        self.first: dict[str, int] = {}

    @property
    def watermark(self) -> float | None:
        return None if self.max_event is None else self.max_event - self.lateness

    def add(
        self, keys: list[str], times: np.ndarray | list[float], values: np.ndarray | list[float]
    ) -> Update:
        """Add points; returns the deltas to store and the buckets this closes."""
        update = Update()
        t = np.asarray(times, dtype=float)
        v = np.asarray(values, dtype=float)
        if len(t):
            starts = (np.floor(t / self.width) * self.width).astype(np.int64)
            for key, start, value in zip(keys, starts.tolist(), v.tolist(), strict=True):
                self._add_one(key, int(start), value, update)
            top = float(t.max())
            self.max_event = top if self.max_event is None else max(self.max_event, top)
        update.closed = self._close()
        return update

    def _add_one(self, key: str, start: int, value: float, update: Update) -> None:
        if self.closed_until is not None and start < self.closed_until:
            update.late[(key, start)] = update.late.get((key, start), 0.0) + value
            update.late_records += 1
            self.first.setdefault(key, start)
            return
        self.open[key][start] = self.open[key].get(start, 0.0) + value
        update.deltas[(key, start)] = update.deltas.get((key, start), 0.0) + value
        if key not in self.first or start < self.first[key]:
            self.first[key] = start

    def _close(self) -> list[ClosedBucket]:
        wm = self.watermark
        if wm is None:
            return []
        limit = int(np.floor(wm / self.width) * self.width)  # buckets starting before it have ended
        if self.closed_until is not None and limit <= self.closed_until:
            return []
        closed = []
        for key in sorted(self.first):
            begin = (
                self.first[key]
                if self.closed_until is None
                else max(self.first[key], self.closed_until)
            )
            buckets = self.open.get(key, {})
            for start in range(begin, limit, self.width):
                closed.append(ClosedBucket(key, start, buckets.pop(start, 0.0)))
        self.closed_until = limit
        return closed

    def upcoming(self) -> tuple[list[str], np.ndarray]:
        """The next bucket to close of each series, where it has ended by the largest event time
        seen (only late records can still change it): the series and the bucket's value so far
        (0 without records), in series order. Nothing before the first bucket closed.

        >>> b = EventTimeBucketizer(width=60, lateness=120)
        >>> _ = b.add(["a", "a", "b"], [0.0, 30.0, 65.0], [1.0, 1.0, 1.0])
        >>> b.upcoming()[0]
        []
        >>> [c.start for c in b.add(["b", "a"], [130.0, 250.0], [5.0, 4.0]).closed]
        [0, 60, 60]
        >>> keys, values = b.upcoming()
        >>> keys, values.tolist()
        (['a', 'b'], [0.0, 5.0])
        """
        start = self.closed_until
        if start is None or self.max_event is None or start + self.width > self.max_event:
            return [], np.empty(0)
        keys = [k for k in sorted(self.first) if self.first[k] <= start]
        values = np.fromiter(
            (self.open[k].get(start, 0.0) if k in self.open else 0.0 for k in keys),
            dtype=float,
            count=len(keys),
        )
        return keys, values

    # -- state ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, float | int | None]:
        """The durable part: the watermark's inputs. Open buckets live in the store."""
        return {"max_event": self.max_event, "closed_until": self.closed_until}

    def restore(
        self,
        state: dict[str, float | int | None],
        open_buckets: dict[str, dict[int, float]],
        first: dict[str, int],
    ) -> EventTimeBucketizer:
        """Resume from a snapshot plus the open buckets and first bucket per series read back."""
        max_event = state.get("max_event")
        closed = state.get("closed_until")
        self.max_event = None if max_event is None else float(max_event)
        self.closed_until = None if closed is None else int(closed)
        self.open = defaultdict(dict, {k: dict(v) for k, v in open_buckets.items()})
        self.first = dict(first)
        return self
