"""The demo main job of ``rushhour run`` without sources.

On first start it generates weeks of history into the store and fits the Mean Predictor on it, leaving
out the labelled anomalies. Then it streams endless synthetic live traffic bucket by bucket, at
``speed`` simulated minutes per wall second, scoring each closed bucket against the band. Each batch of
buckets, its scores, its anomalies and the checkpoint commit in one transaction, so a restart continues
exactly where the last commit stopped, with nothing counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from rushhour.detect.mean_band import MeanBandDetector
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.notify.episodes import EpisodeChange, EpisodeTracker
from rushhour.pipeline.clock import Clock
from rushhour.records import AnomalyEvent
from rushhour.series.generate import AnomalyWindow, day_seed, generate_traffic
from rushhour.settings import Settings
from rushhour.store.db import AnomalyRecord, SeriesRef, Store
from rushhour.timeutil import from_epoch, zone

SOURCE = "demo"
MODEL = "demo/mean_predictor"
DEMO_SPIKE_AFTER = timedelta(minutes=20)
DEMO_SPIKE_LENGTH = timedelta(minutes=6)
BATCH = 60


class Channel(Protocol):
    def send(self, event: AnomalyEvent) -> None: ...


Progress = Callable[[int, int, str], None]


@dataclass
class RunStats:
    """What one run did."""

    buckets: int = 0
    anomalies: int = 0
    sim_time: datetime | None = None
    events: list[AnomalyEvent] = field(default_factory=list)


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
    """Endless synthetic traffic: each UTC day is generated alone from its own seed."""

    def __init__(self, settings: Settings, origin: int, live_start: int) -> None:
        self.s = settings
        self.origin = origin
        self.live_start = live_start
        self.width = settings.bucket_width()
        self._cache: dict[int, tuple[pd.Series, list[AnomalyWindow]]] = {}

    def day(self, day_start: int) -> tuple[pd.Series, list[AnomalyWindow]]:
        if day_start not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            start = from_epoch(day_start)
            traffic = generate_traffic(
                start,
                days=1,
                freq=f"{self.width}s",
                seed=day_seed(self.s.demo.seed, start.date()),
                anomalies_per_day=self.s.demo.anomalies_per_day,
                tz=self.s.timezone,
                holidays_country=self.s.holidays_country,
                holidays_subdiv=self.s.holidays_subdiv,
                shape=_shape(self.s),
                growth_origin=from_epoch(self.origin),
            )
            values = traffic.series.astype(float)
            windows = list(traffic.anomalies)
            values, windows = self._demo_spike(day_start, values, windows)
            self._cache[day_start] = (values, windows)
        return self._cache[day_start]

    def _demo_spike(
        self, day_start: int, values: pd.Series, windows: list[AnomalyWindow]
    ) -> tuple[pd.Series, list[AnomalyWindow]]:
        """A guaranteed spike shortly after the live start, so a new user sees one within a minute."""
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

    def values(self, start: int, count: int) -> pd.Series:
        """Values of ``count`` buckets from ``start``."""
        parts = []
        end = start + count * self.width
        day = start - start % 86400
        while day < end:
            values, _ = self.day(day)
            parts.append(
                values[(values.index >= from_epoch(start)) & (values.index < from_epoch(end))]
            )
            day += 86400
        return pd.concat(parts)


def _shape(settings: Settings) -> Any:
    from rushhour.series.generate import TrafficShape

    return TrafficShape(base_rpm=settings.demo.base_rpm)


class DemoJob:
    """Prepare once, then stream. ``channels`` receive each newly stored anomaly."""

    def __init__(self, settings: Settings, store: Store, clock: Clock, channels: Sequence[Channel]):
        self.s = settings
        self.store = store
        self.clock = clock
        self.channels = list(channels)
        self.width = settings.bucket_width()
        self.stopping = False
        self.series: SeriesRef | None = None
        self.detector: MeanBandDetector | None = None
        self.traffic: DemoTraffic | None = None
        self.position: dict[str, Any] = {}
        self.episodes = EpisodeTracker(settings.detect.resolve_after)
        self._peaks: dict[int, tuple[float, Any]] = {}

    # -- preparation ----------------------------------------------------------------------------
    def prepare(self, progress: Progress | None = None) -> dict[str, Any]:
        """Generate history and fit the model on first start; load both on later starts."""
        position = self.store.checkpoint(SOURCE)
        with self.store.begin() as tx:
            self.series = self.store.ensure_series(
                tx, self.s.demo.series, {"demo": "true"}, self.width
            )
        if position is None:
            live_start = choose_live_start(self.clock.wall(), self.s.timezone, self.width)
            origin = live_start - self.s.demo.history_weeks * 7 * 86400
            self.traffic = DemoTraffic(self.s, origin, live_start)
            model = self._generate_history(origin, live_start, progress)
            position = {
                "origin": origin,
                "live_start": live_start,
                "next": live_start,
                "buckets": 0,
                "anomalies": 0,
                "first_start": True,
            }
            with self.store.begin() as tx:
                self.store.set_checkpoint(tx, SOURCE, position)
        else:
            self.traffic = DemoTraffic(self.s, position["origin"], position["live_start"])
            model = self._load_model()
            position["first_start"] = False
        self.episodes.restore(position.get("episodes", {}))
        self.position = position
        self.detector = MeanBandDetector(
            model,
            k=self.s.detect.k,
            min_relative_deviation=self.s.detect.min_relative_deviation,
        )
        return position

    def _generate_history(
        self, origin: int, live_start: int, progress: Progress | None
    ) -> MeanPredictor:
        assert self.traffic is not None and self.series is not None
        days = (live_start - origin) // 86400 + 1
        parts, windows = [], []
        for i in range(days):
            values, labels = self.traffic.day(origin - origin % 86400 + i * 86400)
            parts.append(values)
            windows.extend(labels)
            if progress:
                progress(i + 1, days + 1, "generating history")
        history = pd.concat(parts)
        history = history[
            (history.index >= from_epoch(origin)) & (history.index < from_epoch(live_start))
        ]
        with self.store.begin() as tx:
            starts = (history.index.asi8 // 1_000_000_000).tolist()
            self.store.write_buckets(tx, self.series.id, starts, history.to_numpy().tolist())
        model = MeanPredictor(
            key=self.s.detect.key,
            deviation=self.s.detect.deviation,
            timezone=self.s.timezone,
            freq=f"{self.width}s",
            smooth=3,
            holidays_country=self.s.holidays_country,
            holidays_subdiv=self.s.holidays_subdiv,
        ).fit(history, exclude=[(w.start, w.end) for w in windows], exclude_holidays=True)
        self.store.save_model(
            MODEL,
            "mean_predictor",
            json.dumps(model.snapshot()).encode(),
            series_id=self.series.id,
            params={
                "key": model.key,
                "deviation": model.deviation,
                "excluded_windows": len(windows),
            },
            trained_at=live_start,
        )
        if progress:
            progress(days + 1, days + 1, "fitted the Mean Predictor")
        return model

    def _load_model(self) -> MeanPredictor:
        row = self.store.load_model(MODEL)
        if row is None or row["artifact"] is None:
            from rushhour.errors import StoreError

            raise StoreError(
                "the demo's checkpoint exists but its model is missing",
                hint="delete the data directory (.rushhour/) to start the demo afresh",
            )
        return MeanPredictor.restore(json.loads(bytes(row["artifact"]).decode()))

    # -- streaming ------------------------------------------------------------------------------
    def sim_time(self) -> datetime:
        return from_epoch(self.position["next"])

    def run(
        self, duration: float | None = None, on_tick: Callable[[RunStats], None] | None = None
    ) -> RunStats:
        """Stream until ``stop()`` is called or ``duration`` wall seconds pass."""
        stats = RunStats()
        per_bucket_wall = self.width / (self.s.demo.speed * 60.0)
        resume = self.position["next"]
        wall0 = self.clock.monotonic()
        while not self.stopping:
            elapsed = self.clock.monotonic() - wall0
            if duration is not None:
                elapsed = min(elapsed, duration)
            sim_now = resume + elapsed / per_bucket_wall * self.width
            ready = int((sim_now - self.position["next"]) // self.width)
            if ready > 0:  # buckets closed by now, including one that closes right at the deadline
                self.step(min(ready, BATCH), stats)
                if on_tick:
                    on_tick(stats)
                continue
            if duration is not None and elapsed >= duration:
                break
            wait = (self.position["next"] + self.width - sim_now) / self.width * per_bucket_wall
            if duration is not None:
                wait = min(wait, duration - elapsed)
            self.clock.sleep(min(max(wait, 0.001), 0.25))
        stats.sim_time = self.sim_time()
        return stats

    def stop(self) -> None:
        self.stopping = True

    def step(self, count: int, stats: RunStats) -> None:
        """Process ``count`` closed buckets in one transaction, then announce episode changes."""
        assert self.traffic is not None and self.detector is not None and self.series is not None
        start = int(self.position["next"])
        values = self.traffic.values(start, count)
        verdicts = self.detector.score_many(values.index, values.to_numpy())
        starts = (values.index.asi8 // 1_000_000_000).tolist()
        xs = values.to_numpy().tolist()
        announce: list[AnomalyEvent] = []
        stored = 0
        position = dict(self.position)
        with self.store.begin() as tx:
            self.store.write_buckets(tx, self.series.id, starts, xs)
            self.store.write_scores(
                tx,
                [
                    {
                        "series_id": self.series.id,
                        "start": s,
                        "detector": self.detector.name,
                        "score": v.score,
                        "expected": v.expected,
                        "deviation": v.deviation,
                        "explanation": None,
                    }
                    for s, v in zip(starts, verdicts, strict=True)
                ],
            )
            for s, x, v in zip(starts, xs, verdicts, strict=True):
                if v.anomalous:
                    record = AnomalyRecord(
                        series_id=self.series.id,
                        start=s,
                        detector=self.detector.name,
                        value=x,
                        expected=v.expected,
                        deviation=v.deviation,
                        sigma=v.sigma,
                        score=v.score,
                        direction=v.direction,
                        severity=v.severity,
                        detected_at=int(self.clock.wall()),
                    )
                    stored += int(self.store.add_anomaly(tx, record))
                changes = self.episodes.observe(
                    self.series.key, s, v.anomalous, v.direction, v.severity, v.score
                )
                announce.extend(self._event(c, s, x, v) for c in changes)
            position.update(
                next=start + count * self.width,
                buckets=position["buckets"] + count,
                anomalies=position["anomalies"] + stored,
                episodes=self.episodes.snapshot(),
            )
            position.pop("first_start", None)
            self.store.set_checkpoint(tx, SOURCE, position)
        first_start = self.position.get("first_start", False)
        self.position = {**position, "first_start": first_start}
        stats.buckets += count
        stats.anomalies += stored
        stats.events.extend(announce)
        for event in announce:
            for channel in self.channels:
                channel.send(event)

    def _event(self, change: EpisodeChange, start: int, value: float, v: Any) -> AnomalyEvent:
        assert self.series is not None and self.detector is not None
        resolved = change.status == "resolved"
        return AnomalyEvent(
            series=self.series.name,
            labels=self.series.labels,
            start=from_epoch(change.start),
            value=value,
            expected=v.expected,
            deviation=v.deviation,
            sigma=None if resolved else v.sigma,
            direction=change.direction,
            severity=change.severity,
            detector=self.detector.name,
            score=change.peak_score if resolved else v.score,
            status=change.status,
            end=from_epoch(start) if resolved else None,
            buckets=change.buckets,
        )
