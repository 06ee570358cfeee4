"""Replay: the seed's streaming mock. One default week from a dataset is replayed forever, in step with
the clock, one batch at a time: with 15-minute batches, at 08:00 it sends 07:45-08:00 of the default
week's matching weekday, stamped with today's date. ``speed`` runs the clock faster for demos.

The week is aligned on Monday 00:00 UTC. After a restart it resumes after the last batch it committed,
catching up at most one day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rushhour.errors import InputError
from rushhour.pipeline.clock import Clock, SystemClock
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import Batch
from rushhour.pipeline.readers import read_points
from rushhour.pipeline.sources import register
from rushhour.store.db import series_key
from rushhour.timeutil import parse_duration

WEEK = 7 * 86400
MONDAY = 4 * 86400  # 1970-01-05 00:00 UTC, the first Monday after the epoch
MAX_CATCH_UP = 86400


def default_week(
    times: np.ndarray, values: np.ndarray, width: int, week_start: str | None
) -> np.ndarray:
    """Values of one week (Monday first), one per bucket; missing buckets are 0."""
    if len(times) == 0:
        raise InputError("the replay dataset has no points", expected="a CSV of timestamp,value")
    if week_start:
        first = int(datetime.fromisoformat(week_start).replace(tzinfo=UTC).timestamp())
        if (first - MONDAY) % WEEK:
            raise InputError(f"week_start {week_start} is not a Monday", field="week_start")
    else:
        t0 = float(times.min())
        first = MONDAY + int(np.ceil((t0 - MONDAY) / WEEK)) * WEEK
    if times.max() < first + WEEK - width:
        raise InputError(
            "the replay dataset does not hold a full week from its first Monday",
            field="week_start",
            expected="at least 7 days of data starting on a Monday",
        )
    week = np.zeros(WEEK // width)
    inside = (times >= first) & (times < first + WEEK)
    slots = ((times[inside] - first) // width).astype(int)
    np.add.at(week, slots, values[inside])
    return week


@register("replay")
class ReplaySource:
    def __init__(
        self,
        spec: Any,
        *,
        base: Path | None = None,
        clock: Clock | None = None,
        width: int = 60,
        **_: Any,
    ) -> None:
        self.spec = spec
        path = Path(spec.path)
        self.path = path if path.is_absolute() or base is None else base / path
        self.name = spec.source_name()
        self.finished = False
        self.clock = clock or SystemClock()
        self.width = width
        self.batch = int(parse_duration(spec.batch).total_seconds())
        if self.batch % width:
            raise InputError(
                f"replay batch {spec.batch} is not a whole number of buckets", field="batch"
            )
        self.week = np.zeros(0)
        self.sent_until = 0
        self._wall0 = 0.0
        self._mono0 = 0.0
        self.key = series_key(spec.series, spec.labels)

    async def open(self, position: dict[str, Any] | None) -> None:
        fmt = "csv" if self.spec.format == "auto" else self.spec.format
        points = read_points(self.path.read_bytes(), fmt, self.path.name, series=self.spec.series)
        self.week = default_week(points.times, points.values, self.width, self.spec.week_start)
        self._wall0, self._mono0 = self.clock.wall(), self.clock.monotonic()
        self.sent_until = int((position or {}).get("sent_until", 0))

    async def close(self) -> None:
        return None

    def now(self) -> float:
        """Replay time: the wall clock, run ``speed`` times faster from the start."""
        return self._wall0 + (self.clock.monotonic() - self._mono0) * self.spec.speed

    def due(self) -> tuple[int, int] | None:
        """The next batch's [start, end), if its end has passed."""
        boundary = int(self.now() // self.batch * self.batch)
        start = self.sent_until if self.sent_until else boundary - self.batch
        start = max(start, boundary - MAX_CATCH_UP)
        if start >= boundary:
            return None
        return start, min(start + self.batch, boundary)

    def points(self, start: int, end: int) -> PointBatch:
        times = np.arange(start, end, self.width)
        slots = ((times - MONDAY) % WEEK) // self.width
        values = self.week[slots]
        batch = PointBatch([self.key] * len(times), times.astype(float), values.astype(float))
        batch.labels[self.key] = (self.spec.series, dict(self.spec.labels))
        return batch

    async def next_batch(self) -> Batch | None:
        window = self.due()
        if window is None:
            return None
        start, end = window
        self.sent_until = end
        label = f"{datetime.fromtimestamp(start, UTC):%a %H:%M}-{datetime.fromtimestamp(end, UTC):%H:%M}"
        return Batch(
            source=self.name,
            points=self.points(start, end),
            position={"sent_until": end},
            dedupe=f"replay:{self.name}:{start}",
            label=label,
        )
