"""The processing step: one batch in, one transaction out.

For each batch the processor adds its points to the event-time bucketizer, then writes in ONE
transaction: bucket deltas (open and late), scores and anomalies of the buckets that closed, episode
state, the watermark, the source's new position and the batch's dedupe key. Only after the commit
does the source acknowledge (NATS ack, inbox move) and do channels hear of new episodes. A crash at any
point therefore either loses the whole batch (it is redelivered, and its dedupe key is absent) or
keeps it whole (a redelivery finds the key and is skipped): nothing is lost or counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from rushhour.detect.base import Verdict
from rushhour.notify.episodes import EpisodeTracker
from rushhour.pipeline.bucketizer import ClosedBucket, EventTimeBucketizer
from rushhour.pipeline.clock import Clock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.points import PointBatch
from rushhour.records import AnomalyEvent
from rushhour.settings import Settings
from rushhour.store.db import AnomalyRecord, SeriesRef, Store
from rushhour.timeutil import from_epoch

CHECKPOINT = "pipeline"


class Channel(Protocol):
    def send(self, event: AnomalyEvent) -> None: ...


@dataclass
class Batch:
    """A unit of work from a source.

    ``position`` is the source's resume point after this batch (committed with it). ``dedupe`` names
    the batch's content (a file hash, a message id) so that a redelivery after a crash is skipped.
    ``after_commit`` runs once the batch is durable (ack, move the file).
    """

    source: str
    points: PointBatch
    position: dict[str, Any] | None = None
    dedupe: str | None = None
    after_commit: Callable[[], Awaitable[None] | None] | None = None
    label: str = ""
    # For sources that must dedupe per message: given the source position stored in the store (read
    # inside the commit transaction), return the points not yet committed and the new position.
    reconcile: Callable[[dict[str, Any] | None], tuple[PointBatch, dict[str, Any]]] | None = None


@dataclass
class Outcome:
    """What processing one batch did."""

    points: int = 0
    closed: int = 0
    late_records: int = 0
    anomalies: int = 0
    duplicate: bool = False
    rejected: dict[str, int] = field(default_factory=dict)
    events: list[AnomalyEvent] = field(default_factory=list)
    close_latency: list[float] = field(default_factory=list)


class Processor:
    """Owns the bucketizer, the detector bank and the episode tracker of one pipeline."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bank: DetectorBank,
        clock: Clock,
        channels: Sequence[Channel] = (),
        notifier: Any = None,
    ) -> None:
        self.s = settings
        self.store = store
        self.bank = bank
        self.clock = clock
        self.channels = list(channels)
        self.width = settings.bucket_width()
        self.bucketizer = EventTimeBucketizer(self.width, int(settings.pipeline.lateness_seconds()))
        self.episodes = EpisodeTracker(settings.detect.resolve_after)
        self.series: dict[str, SeriesRef] = {}
        # alert hygiene and the outbox (rushhour.notify.Notifier); its state commits with each batch
        self.notifier = notifier
        self._event_now = 0.0

    # -- restart --------------------------------------------------------------------------------
    def restore(self) -> dict[str, Any]:
        """Resume from the store: watermark, open buckets, episodes, known series."""
        state = self.store.checkpoint(CHECKPOINT) or {}
        by_id = self.store.series_by_id()
        self.series = {ref.key: ref for ref in by_id.values()}
        bucket_state = state.get("bucketizer", {})
        closed_until = bucket_state.get("closed_until")
        open_rows = self.store.buckets_since(int(closed_until)) if closed_until is not None else {}
        open_buckets = {by_id[sid].key: rows for sid, rows in open_rows.items() if sid in by_id}
        first = {
            by_id[sid].key: st for sid, st in self.store.first_buckets().items() if sid in by_id
        }
        if closed_until is None:
            open_buckets = {
                by_id[sid].key: rows for sid, rows in self.store.buckets_since(0).items()
            }
        self.bucketizer.restore(bucket_state, open_buckets, first)
        self.episodes.restore(state.get("episodes", {}))
        if self.s.detect.rcf:
            self._warm_forests(by_id, closed_until)
        if self.notifier is not None:
            self.notifier.restore(state.get("notifier", {}))
        return state

    def _warm_forests(self, by_id: dict[int, SeriesRef], closed_until: int | None) -> None:
        """Rebuild each series' forest from its newest closed buckets: deterministic, so a restart
        gives the same forests whatever happened before it."""
        if closed_until is None:
            self.bank.warm_up({})
            return
        from rushhour.pipeline.detectors import RCF_HISTORY

        since = int(closed_until) - RCF_HISTORY * self.width
        rows = self.store.buckets_since(since)
        history = {
            by_id[sid].key: [v for st, v in sorted(buckets.items()) if st < int(closed_until)]
            for sid, buckets in rows.items()
            if sid in by_id
        }
        self.bank.warm_up(history)

    def source_position(self, source: str) -> dict[str, Any] | None:
        return self.store.checkpoint(f"source:{source}")

    # -- processing -----------------------------------------------------------------------------
    def process(self, batch: Batch) -> Outcome:
        outcome = Outcome(points=len(batch.points), rejected=dict(batch.points.rejected))
        with self.store.begin() as tx:
            if batch.dedupe is not None and self.store.checkpoint_in(tx, f"seen:{batch.dedupe}"):
                outcome.duplicate = True
                if batch.position is not None:
                    self.store.set_checkpoint(tx, f"source:{batch.source}", batch.position)
                return outcome
            if batch.reconcile is not None:
                stored = self.store.checkpoint_in(tx, f"source:{batch.source}")
                points, position = batch.reconcile(stored)
                batch.points, batch.position = points, position
                outcome.points = len(points)
            try:
                events = self._apply(tx, batch, outcome)
            except BaseException:
                # the transaction rolls back: put the in-memory state back the way the store has it
                notifier, self.notifier = self.notifier, None
                self.restore()
                self.notifier = notifier
                raise
        outcome.events = events
        if self.notifier is not None:
            # after the commit: the checkpoint holds the alerts still pending, and outbox rows carry
            # stable dedupe keys, so a crash on either side of this neither loses nor repeats one
            self.notifier.flush(self._event_now)
        for event in events:
            for channel in self.channels:
                channel.send(event)
        return outcome

    def _apply(self, tx: Any, batch: Batch, outcome: Outcome) -> list[AnomalyEvent]:
        points = batch.points
        for key in dict.fromkeys(points.keys):
            if key not in self.series:
                name, labels = points.labels.get(key, (key, {}))
                self.series[key] = self.store.ensure_series(tx, name, labels, self.width)
        update = self.bucketizer.add(points.keys, points.times, points.values)
        self.store.add_to_buckets(
            tx, [(self.series[k].id, s, v) for (k, s), v in update.deltas.items()]
        )
        self.store.add_to_buckets(
            tx, [(self.series[k].id, s, v) for (k, s), v in update.late.items()], late=True
        )
        # a covered bucket without records is 0 in the store too, not missing
        zeros = [(self.series[c.key].id, c.start, 0.0) for c in update.closed if c.value == 0.0]
        self.store.add_to_buckets(tx, zeros)
        outcome.late_records = update.late_records
        outcome.closed = len(update.closed)
        events = self._score(tx, update.closed, outcome)
        state: dict[str, Any] = {
            "bucketizer": self.bucketizer.snapshot(),
            "episodes": self.episodes.snapshot(),
        }
        if self.notifier is not None:
            state["notifier"] = self.notifier.snapshot()
        self.store.set_checkpoint(tx, CHECKPOINT, state)
        if batch.position is not None:
            self.store.set_checkpoint(tx, f"source:{batch.source}", batch.position)
        if batch.dedupe is not None:
            self.store.set_checkpoint(
                tx, f"seen:{batch.dedupe}", {"at": int(self.clock.wall()), "label": batch.label}
            )
        return events

    def _score(self, tx: Any, closed: list[ClosedBucket], outcome: Outcome) -> list[AnomalyEvent]:
        if not closed:
            return []
        now = self.clock.wall()
        models = (
            self.bank.models
        )  # one model set for the whole batch, even if a swap happens meanwhile
        keys = [c.key for c in closed]
        starts = np.fromiter((c.start for c in closed), dtype=np.int64, count=len(closed))
        values = np.fromiter((c.value for c in closed), dtype=float, count=len(closed))
        verdicts = self.bank.score_closed(keys, starts, values, models)
        outcome.close_latency.extend((now - (starts + self.width)).tolist())
        events: list[AnomalyEvent] = []
        scores: list[dict[str, Any]] = []
        anomalies: list[AnomalyRecord] = []
        # the notifier's clock is event time, so grouping and cooldowns behave the same at any speed
        self._event_now = max(self._event_now, float(starts.max()) + self.width)
        for b, v in zip(closed, verdicts, strict=True):
            ref = self.series[b.key]
            scores.append(self._score_row(ref, b, v))
            band_flagged = v.anomalous and v.expected is not None
            forest = self.bank.rcf_score(b.key, b.value)
            if forest is not None:
                v = self._with_forest(ref, b, v, forest, scores, anomalies, now)
            if self.notifier is not None:
                self.notifier.observe(
                    series=ref.name,
                    labels=ref.labels,
                    start=b.start,
                    value=b.value,
                    verdict=v,
                    now=self._event_now,
                    series_id=ref.id,
                    detector=self.bank.name,
                    key=b.key,
                )
            if band_flagged:
                anomalies.append(
                    AnomalyRecord(
                        series_id=ref.id,
                        start=b.start,
                        detector=self.bank.name,
                        value=b.value,
                        expected=v.expected,
                        deviation=v.deviation,
                        sigma=v.sigma,
                        score=v.score,
                        direction=v.direction,
                        severity=v.severity,
                        detected_at=int(now),
                        explanation=json.dumps(v.explanation) if v.explanation else None,
                    )
                )
            for change in self.episodes.observe(
                b.key, b.start, v.anomalous, v.direction, v.severity, v.score
            ):
                events.append(self._event(ref, change, b, v))
        self.store.write_scores(tx, scores)
        outcome.anomalies += self.store.add_anomalies(tx, anomalies)
        return events

    def _with_forest(
        self,
        ref: SeriesRef,
        b: ClosedBucket,
        band: Verdict,
        forest: Verdict,
        scores: list[dict[str, Any]],
        anomalies: list[AnomalyRecord],
        now: float,
    ) -> Verdict:
        """Store the forest's score; attach its attribution to the band's verdict.

        The band (or, for a series without one yet, the fleet baseline) makes the alerting decision;
        the forest's own anomalies are stored under detector ``rcf`` and its attribution rides along."""
        scores.append(
            {
                "series_id": ref.id,
                "start": b.start,
                "detector": "rcf",
                "score": forest.score,
                "expected": None,
                "deviation": None,
                "explanation": json.dumps(forest.explanation) if forest.explanation else None,
            }
        )
        if forest.anomalous:
            anomalies.append(
                AnomalyRecord(
                    series_id=ref.id,
                    start=b.start,
                    detector="rcf",
                    value=b.value,
                    expected=band.expected,
                    deviation=band.deviation,
                    sigma=None,
                    score=forest.score,
                    direction=forest.direction,
                    severity=forest.severity,
                    detected_at=int(now),
                    explanation=json.dumps(forest.explanation),
                )
            )
        # numbers in an explanation are feature attributions (alerts rank them); the rest is text
        attribution: dict[str, Any] = {"rcf_score": f"{forest.score:.3f}"}
        value = forest.explanation.get("value") if forest.explanation else None
        if isinstance(value, dict) and "ATTRIBUTION_SCORE" in value:
            attribution["value"] = float(value["ATTRIBUTION_SCORE"])
            attribution["rcf_direction"] = str(value.get("DIRECTION", ""))
        return replace(band, explanation={**band.explanation, **attribution})

    def _score_row(self, ref: SeriesRef, b: ClosedBucket, v: Verdict) -> dict[str, Any]:
        return {
            "series_id": ref.id,
            "start": b.start,
            "detector": self.bank.name,
            "score": v.score,
            "expected": v.expected,
            "deviation": v.deviation,
            "explanation": json.dumps(v.explanation) if v.explanation else None,
        }

    def _event(self, ref: SeriesRef, change: Any, b: ClosedBucket, v: Verdict) -> AnomalyEvent:
        resolved = change.status == "resolved"
        return AnomalyEvent(
            series=ref.name,
            labels=ref.labels,
            start=from_epoch(change.start),
            value=b.value,
            expected=v.expected,
            deviation=v.deviation,
            sigma=None if resolved else v.sigma,
            direction=change.direction,
            severity=change.severity,
            detector=self.bank.name,
            score=change.peak_score if resolved else v.score,
            explanation=dict(v.explanation),
            status=change.status,
            end=from_epoch(b.start) if resolved else None,
            buckets=change.buckets,
        )
