"""The demo: synthetic live traffic for a few services, on the real pipeline.

On first start :func:`prepare_demo` writes weeks of history for each demo series into the store and
trains their models with the pipeline's own retraining (leaving out the generator's labelled
anomalies and public holidays). Then the ``demo`` source streams endless live traffic, bucket by
bucket, at ``demo.speed`` simulated minutes per wall second, through the same runtime as any other
source. A restart continues from the last committed bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from rushhour.pipeline.clock import Clock, SystemClock
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import CHECKPOINT, Batch
from rushhour.pipeline.retrain import train
from rushhour.pipeline.sources import register
from rushhour.series.generate import AnomalyWindow, TrafficShape, day_seed, generate_traffic
from rushhour.settings import Settings
from rushhour.store.db import Store, series_key
from rushhour.timeutil import from_epoch, zone

SOURCE = "demo"
DEMO_SPIKE_AFTER = timedelta(minutes=20)
DEMO_SPIKE_LENGTH = timedelta(minutes=6)
MAX_BATCH = 60

Progress = Callable[[int, int, str], None]


def demo_series(settings: Settings) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, scale) of each demo series: a service's successes and failures, and another."""
    service = settings.demo.series
    return [
        ("requests", {"service": service, "status": "ok", "region": "eu-west-1"}, 1.0),
        ("requests", {"service": service, "status": "failed", "region": "eu-west-1"}, 0.05),
        ("requests", {"service": "remote-services", "status": "ok", "region": "us-east-1"}, 0.35),
    ]


def choose_live_start(now: float, tz: str, width: int) -> int:
    """The most recent working-day 07:00 (local) at or before ``now``: the demo opens at rush hour."""
    local = datetime.fromtimestamp(now, tz=zone(tz))
    day = local.replace(hour=7, minute=0, second=0, microsecond=0)
    if day > local:
        day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    epoch = int(day.astimezone(UTC).timestamp())
    return epoch - epoch % width


class DemoTraffic:
    """Endless synthetic traffic per demo series: each UTC day is generated alone from its own seed."""

    def __init__(self, settings: Settings, origin: int, live_start: int) -> None:
        self.s = settings
        self.origin = origin
        self.live_start = live_start
        self.width = settings.bucket_width()
        self.series = demo_series(settings)
        self._cache: dict[tuple[int, int], tuple[pd.Series, list[AnomalyWindow]]] = {}

    def day(self, which: int, day_start: int) -> tuple[pd.Series, list[AnomalyWindow]]:
        if (which, day_start) not in self._cache:
            if len(self._cache) > 4 * len(self.series):
                self._cache.clear()
            start = from_epoch(day_start)
            _, _, scale = self.series[which]
            traffic = generate_traffic(
                start,
                days=1,
                freq=f"{self.width}s",
                seed=day_seed(self.s.demo.seed * 31 + which, start.date()),
                anomalies_per_day=self.s.demo.anomalies_per_day,
                tz=self.s.timezone,
                holidays_country=self.s.holidays_country,
                holidays_subdiv=self.s.holidays_subdiv,
                shape=TrafficShape(base_rpm=self.s.demo.base_rpm * scale),
                growth_origin=from_epoch(self.origin),
            )
            values, windows = traffic.series.astype(float), list(traffic.anomalies)
            if which == 0:
                values, windows = self._demo_spike(day_start, values, windows)
            self._cache[(which, day_start)] = (values, windows)
        return self._cache[(which, day_start)]

    def _demo_spike(
        self, day_start: int, values: pd.Series, windows: list[AnomalyWindow]
    ) -> tuple[pd.Series, list[AnomalyWindow]]:
        """A guaranteed spike shortly after the live start, so a new user sees one within seconds."""
        lo = pd.Timestamp(from_epoch(self.live_start) + DEMO_SPIKE_AFTER)
        hi = lo + pd.Timedelta(DEMO_SPIKE_LENGTH)
        if not (day_start <= lo.timestamp() < day_start + 86400):
            return values, windows
        mask = (values.index >= lo) & (values.index < hi)
        values = values.copy()
        values[mask] = np.round(values[mask] * 3.0)
        end = hi - pd.Timedelta(seconds=self.width)
        spike = AnomalyWindow(lo.to_pydatetime(), end.to_pydatetime(), "spike", 3.0)
        return values, sorted([*windows, spike], key=lambda w: w.start)

    def values(self, which: int, start: int, count: int) -> pd.Series:
        """Values of ``count`` buckets of one series from ``start``."""
        parts = []
        end = start + count * self.width
        day = start - start % 86400
        while day < end:
            values, _ = self.day(which, day)
            parts.append(
                values[(values.index >= from_epoch(start)) & (values.index < from_epoch(end))]
            )
            day += 86400
        return pd.concat(parts)


def prepare_demo(
    settings: Settings, store: Store, clock: Clock, progress: Progress | None = None
) -> dict[str, Any]:
    """First start: history and trained models. Later starts: the committed position."""
    position = store.checkpoint(f"source:{SOURCE}")
    if position is not None:
        return {**position, "first_start": False}
    width = settings.bucket_width()
    live_start = choose_live_start(clock.wall(), settings.timezone, width)
    origin = live_start - settings.demo.history_weeks * 7 * 86400
    traffic = DemoTraffic(settings, origin, live_start)
    days = (live_start - origin) // 86400 + 1
    labelled: dict[str, list[tuple[datetime, datetime]]] = {}
    steps = len(traffic.series) * days + 1
    for which, (name, labels, _) in enumerate(traffic.series):
        parts = []
        for i in range(days):
            values, windows = traffic.day(which, origin - origin % 86400 + i * 86400)
            parts.append(values)
            labelled.setdefault(series_key(name, labels), []).extend(
                (w.start, w.end) for w in windows
            )
            if progress:
                progress(
                    which * days + i + 1,
                    steps,
                    f"generating history of {labels['service']} {labels['status']}",
                )
        history = pd.concat(parts)
        history = history[
            (history.index >= from_epoch(origin)) & (history.index < from_epoch(live_start))
        ]
        with store.begin() as tx:
            ref = store.ensure_series(tx, name, labels, width)
            store.write_buckets(
                tx, ref.id, (history.index.asi8 // 1_000_000_000).tolist(), history.tolist()
            )
    if progress:
        progress(steps - 1, steps, "training the Mean Predictor of each series")
    train(settings, store, from_epoch(live_start), exclude=labelled)
    position = {"origin": origin, "live_start": live_start, "next": live_start}
    with store.begin() as tx:
        # the live pipeline starts where history ends: everything before live_start is closed
        store.set_checkpoint(
            tx, CHECKPOINT, {"bucketizer": {"max_event": live_start, "closed_until": live_start}}
        )
        store.set_checkpoint(tx, f"source:{SOURCE}", position)
    if progress:
        progress(steps, steps, "ready")
    return {**position, "first_start": True}


@register("demo")
class DemoSource:
    """Live synthetic traffic of the demo series, paced by the clock at ``demo.speed``."""

    def __init__(
        self, spec: Any, *, settings: Settings, clock: Clock | None = None, **_: Any
    ) -> None:
        self.spec = spec
        self.s = settings
        self.name = SOURCE
        self.finished = False
        self.clock = clock or SystemClock()
        self.width = settings.bucket_width()
        self.traffic: DemoTraffic | None = None
        self.next = 0
        self._resume = 0
        self._mono0 = 0.0

    async def open(self, position: dict[str, Any] | None) -> None:
        if position is None:
            from rushhour.errors import StoreError

            raise StoreError(
                "the demo has not been prepared", hint="run `rushhour run` without sources first"
            )
        self.traffic = DemoTraffic(self.s, position["origin"], position["live_start"])
        self.position = dict(position)
        self.next = self._resume = int(position["next"])
        self._mono0 = self.clock.monotonic()

    async def close(self) -> None:
        return None

    def sim_now(self) -> float:
        return self._resume + (self.clock.monotonic() - self._mono0) * self.s.demo.speed * 60.0

    async def next_batch(self) -> Batch | None:
        assert self.traffic is not None
        ready = int((self.sim_now() - self.next) // self.width)
        if ready <= 0:
            return None
        count = min(ready, MAX_BATCH)
        rows: list[tuple[str, dict[str, str], float, float]] = []
        for which, (name, labels, _) in enumerate(self.traffic.series):
            values = self.traffic.values(which, self.next, count)
            for t, v in zip(values.index.asi8 // 1_000_000_000, values.tolist(), strict=True):
                rows.append((name, labels, float(t), float(v)))
        start, self.next = self.next, self.next + count * self.width
        position = {**self.position, "next": self.next}
        return Batch(
            source=SOURCE,
            points=PointBatch.from_rows(rows),
            position=position,
            dedupe=f"demo:{start}",
            label=from_epoch(start).isoformat(),
        )
