"""The processing step: one batch in, one transaction out.

For each batch the processor adds its points to the event-time bucketizer, then writes in ONE
transaction: bucket deltas (open and late), scores and anomalies of the buckets that closed, the
notifier's state (episodes, pending alerts), due default-detector snapshots, the watermark, the
source's new position and the batch's dedupe key. Only after the commit does the source acknowledge
(NATS ack, inbox move) and does the notifier write its outbox rows. A crash at any
point therefore either loses the whole batch (it is redelivered, and its dedupe key is absent) or
keeps it whole (a redelivery finds the key and is skipped): nothing is lost or counted twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rushhour.detect.base import Verdict
from rushhour.pipeline.bucketizer import ClosedBucket, EventTimeBucketizer
from rushhour.pipeline.clock import Clock
from rushhour.pipeline.detectors import DEFAULT, DetectorBank
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.warmup import snapshot_due, snapshot_name, snapshot_of, warm_up
from rushhour.settings import Settings
from rushhour.store.db import AnomalyRecord, SeriesRef, Store

CHECKPOINT = "pipeline"


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
    #: messages in this batch that a stopped run had received but not committed, read back at
    #: start ahead of newer ones (set by ``reconcile``, counted once the batch commits)
    recovered: int = 0


@dataclass
class Outcome:
    """What processing one batch did."""

    points: int = 0
    closed: int = 0
    late_records: int = 0
    #: anomaly records stored, one per detector that flagged a bucket
    anomalies: int = 0
    #: closed buckets the deciding detector flagged (what alerts are made of)
    flagged: int = 0
    duplicate: bool = False
    #: messages a stopped run had left uncommitted, committed by this batch
    recovered: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    close_latency: list[float] = field(default_factory=list)


class Processor:
    """Owns the bucketizer and the detector bank of one pipeline; alerts (episodes, hygiene, the
    outbox) are the notifier's."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bank: DetectorBank,
        clock: Clock,
        notifier: Any = None,
    ) -> None:
        self.s = settings
        self.store = store
        self.bank = bank
        self.clock = clock
        self.width = settings.bucket_width()
        self.bucketizer = EventTimeBucketizer(self.width, int(settings.pipeline.lateness_seconds()))
        self.series: dict[str, SeriesRef] = {}
        # alert hygiene and the outbox (rushhour.notify.Notifier); its state commits with each batch
        self.notifier = notifier
        self._event_now = 0.0

    # -- restart --------------------------------------------------------------------------------
    def restore(self) -> dict[str, Any]:
        """Resume from the store: watermark, open buckets, known series, detectors, notifier."""
        state = self.store.checkpoint(CHECKPOINT) or {}
        by_id = self.store.series_by_id()
        self.series = {ref.key: ref for ref in by_id.values()}
        bucket_state = state.get("bucketizer", {})
        closed_until = bucket_state.get("closed_until")
        # before anything closed, every stored bucket is open
        open_rows = self.store.buckets_since(int(closed_until) if closed_until is not None else 0)
        open_buckets = {by_id[sid].key: rows for sid, rows in open_rows.items() if sid in by_id}
        first = {
            by_id[sid].key: st for sid, st in self.store.first_buckets().items() if sid in by_id
        }
        self.bucketizer.restore(bucket_state, open_buckets, first)
        self._warm_up(by_id, closed_until)
        if self.notifier is not None:
            self.notifier.restore(state.get("notifier", {}))
            # the groups the last batch left due were flushed after its commit, or were about to
            # be when the process died: flush them again at the same event time, before anything
            # new joins them, so they are the same groups (same dedupe keys: a no-op if written)
            self._event_now = float(state.get("event_now", 0.0))
            self.notifier.flush(self._event_now, wall=self.clock.wall())
        return state

    def _warm_up(self, by_id: dict[int, SeriesRef], closed_until: int | None) -> None:
        """Rebuild the forests and default detectors from stored buckets (one query for all series);
        series replayed from their first bucket get a snapshot at once, so the next start is short."""
        done = warm_up(self.bank, self.store, by_id, closed_until, self.width)
        if done.from_scratch and closed_until is not None:
            ids = {ref.key: ref.id for ref in by_id.values()}
            snaps = {
                snapshot_name(ids[key]): snap
                for key in done.from_scratch
                if (snap := snapshot_of(self.bank, key, int(closed_until))) is not None
            }
            with self.store.begin() as tx:
                self.store.set_checkpoints(tx, snaps)

    def settle(self) -> None:
        """Let the forests learn the buckets the last batch scored (its commit is done), then
        score each series' next bucket to close at its value so far, where that bucket has ended
        (only a late record can still change it): both off the path from bucket close to commit,
        before the next batch is scored. A bucket that closes with the value it was scored at is
        not scored again (the same numbers); one that changed is scored when it closes. A batch
        that fails to commit restores the detectors from the store instead, dropping what it left
        to learn and what was scored ahead."""
        self.bank.learn_pending()
        self.bank.score_ahead(*self.bucketizer.upcoming())

    def source_position(self, source: str) -> dict[str, Any] | None:
        return self.store.checkpoint(f"source:{source}")

    # -- processing -----------------------------------------------------------------------------
    def process(self, batch: Batch) -> Outcome:
        outcome = Outcome(points=len(batch.points), rejected=dict(batch.points.rejected))
        applied = False
        try:
            with self.store.begin() as tx:
                if batch.dedupe is not None and self.store.checkpoint_in(
                    tx, f"seen:{batch.dedupe}"
                ):
                    outcome.duplicate = True
                    if batch.position is not None:
                        self.store.set_checkpoint(tx, f"source:{batch.source}", batch.position)
                    return outcome
                if batch.reconcile is not None:
                    stored = self.store.checkpoint_in(tx, f"source:{batch.source}")
                    points, position = batch.reconcile(stored)
                    batch.points, batch.position = points, position
                    outcome.points = len(points)
                applied = True
                self._apply(tx, batch, outcome)
        except BaseException:
            if applied:
                # the transaction rolled back (in _apply, or at the commit itself: a locked or lost
                # database): put the in-memory state (bucketizer, detectors learned from the batch)
                # back the way the store has it, so a retried batch is not learned twice
                self.bank.drop_pending()
                notifier, self.notifier = self.notifier, None
                self.restore()
                self.notifier = notifier
            raise
        outcome.recovered = batch.recovered
        if self.notifier is not None:
            # after the commit: the checkpoint holds the alerts still pending, and outbox rows carry
            # stable dedupe keys, so a crash on either side of this neither loses nor repeats one
            self.notifier.flush(self._event_now, wall=self.clock.wall())
        return outcome

    def _apply(self, tx: Any, batch: Batch, outcome: Outcome) -> None:
        points = batch.points
        for key in dict.fromkeys(points.keys):
            if key not in self.series:
                name, labels = points.labels.get(key, (key, {}))
                self.series[key] = self.store.ensure_series(tx, name, labels, self.width)
        update = self.bucketizer.add(points.keys, points.times, points.values)
        ids = {k: ref.id for k, ref in self.series.items()}
        # one statement for the batch: open buckets' deltas, late updates (flagged), and the zeros
        # of covered buckets without records (0 in the store too, not missing)
        rows = [(ids[k], s, v, 0) for (k, s), v in update.deltas.items()]
        rows += [(ids[k], s, v, 1) for (k, s), v in update.late.items()]
        rows += [(ids[c.key], c.start, 0.0, 0) for c in update.closed if c.value == 0.0]
        self.store.add_to_buckets(tx, rows)
        outcome.late_records = update.late_records
        outcome.closed = len(update.closed)
        self._score(tx, update.closed, outcome)
        state: dict[str, Any] = {"bucketizer": self.bucketizer.snapshot()}
        if self.notifier is not None:
            state["notifier"] = self.notifier.snapshot()
            state["event_now"] = self._event_now
        checkpoints: dict[str, dict[str, Any]] = {CHECKPOINT: state}
        if batch.position is not None:
            checkpoints[f"source:{batch.source}"] = batch.position
        if batch.dedupe is not None:
            checkpoints[f"seen:{batch.dedupe}"] = {
                "at": int(self.clock.wall()),
                "label": batch.label,
            }
        self.store.set_checkpoints(tx, checkpoints)  # one statement for the batch's checkpoints

    def _score(self, tx: Any, closed: list[ClosedBucket], outcome: Outcome) -> None:
        if not closed:
            return
        now = self.clock.wall()
        models = (
            self.bank.models
        )  # one model set for the whole batch, even if a swap happens meanwhile
        keys = [c.key for c in closed]
        starts = np.fromiter((c.start for c in closed), dtype=np.int64, count=len(closed))
        values = np.fromiter((c.value for c in closed), dtype=float, count=len(closed))
        verdicts = self.bank.score_closed(keys, starts, values, models)
        defaults = self.bank.default_scores(keys, starts, values)
        # the forests score the batch now and learn its buckets after the commit (settle)
        forests = self.bank.rcf_scores(keys, values)
        outcome.close_latency.extend((now - (starts + self.width)).tolist())
        rows = _Rows(int(now))
        decider = self.bank.decider
        # the notifier's clock is event time, so grouping and cooldowns behave the same at any speed
        self._event_now = max(self._event_now, float(starts.max()) + self.width)
        notify = self.notifier is not None
        for i, (b, v) in enumerate(zip(closed, verdicts, strict=True)):
            ref = self.series[b.key]
            rows.add(ref, b, self.bank.name, v, flagged=v.anomalous and v.expected is not None)
            decision, by = v, self.bank.name
            if defaults is not None:
                d = defaults[0][i]
                rows.add(ref, b, DEFAULT, d)
                # cold start: while the series' default detector warms up, the band decides (its own
                # model, or the fleet baseline with confidence low)
                if decider == DEFAULT and defaults[1][i]:
                    # a band without a model of its own says so: its confidence rides along (the
                    # merged explanation only matters to the notifier: its alerts carry it)
                    decision = (
                        replace(d, explanation={**v.explanation, **d.explanation}) if notify else d
                    )
                    by = DEFAULT
            forest = forests[i]
            if forest is not None:
                rows.add(ref, b, "rcf", forest, expected=decision.expected)
                if notify:
                    decision = _with_attribution(decision, forest, numeric=by != DEFAULT)
            outcome.flagged += bool(decision.anomalous)
            if self.notifier is not None:
                self.notifier.observe(
                    series=ref.name,
                    labels=ref.labels,
                    start=b.start,
                    value=b.value,
                    verdict=decision,
                    now=self._event_now,
                    series_id=ref.id,
                    detector=by,
                    key=b.key,
                )
        self.store.write_scores(tx, rows.scores)
        outcome.anomalies += self.store.add_anomalies(tx, rows.anomalies)
        if defaults is not None:
            self._snapshot_defaults(tx, keys, starts)

    def _snapshot_defaults(self, tx: Any, keys: list[str], starts: np.ndarray) -> None:
        """Store the default detector state of the series due for a snapshot, in this transaction."""
        every = self.s.detect.default_snapshot
        latest: dict[str, list[int]] = {}
        for key, st in zip(keys, starts.tolist(), strict=True):
            latest.setdefault(key, []).append(st)
        snaps = {}
        for key, sts in latest.items():
            ref = self.series[key]
            if snapshot_due(ref.id, sts, self.width, every):
                snap = snapshot_of(self.bank, key, max(sts) + self.width)
                if snap is not None:
                    snaps[snapshot_name(ref.id)] = snap
        self.store.set_checkpoints(tx, snaps)


class _Rows:
    """The score rows and anomaly records of one batch."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.scores: list[tuple[Any, ...]] = []
        self.anomalies: list[AnomalyRecord] = []

    def add(
        self,
        ref: SeriesRef,
        b: ClosedBucket,
        detector: str,
        v: Verdict,
        *,
        flagged: bool | None = None,
        expected: float | None = None,
    ) -> None:
        """A detector's score of a bucket; an anomaly record when it flagged the bucket. ``expected``
        stands in for detectors without an expected value of their own (the forest)."""
        explanation = v.explanation_json
        # in SCORE_COLUMNS order
        self.scores.append(
            (ref.id, b.start, detector, v.score, v.expected, v.deviation, explanation)
        )
        if not (v.anomalous if flagged is None else flagged):
            return
        own = v.expected is not None
        self.anomalies.append(
            AnomalyRecord(
                series_id=ref.id,
                start=b.start,
                detector=detector,
                value=b.value,
                expected=v.expected if own else expected,
                deviation=v.deviation,
                sigma=v.sigma_at(b.value),
                score=v.score,
                direction=v.direction,
                severity=v.severity,
                detected_at=self.now,
                explanation=explanation,
            )
        )


def _with_attribution(decision: Verdict, forest: Verdict, *, numeric: bool) -> Verdict:
    """The deciding verdict with the forest's score and attribution attached.

    Numbers in an explanation are feature attributions (alerts rank them), the rest is text: the
    forest's attribution ranks beside the band's, while the default detector's component scores
    stay the drivers of its own decisions (the forest's attribution then rides along as text)."""
    attribution: dict[str, Any] = {"rcf_score": f"{forest.score:.3f}"}
    value = forest.explanation.get("value") if forest.explanation else None
    if isinstance(value, dict) and "ATTRIBUTION_SCORE" in value:
        score = float(value["ATTRIBUTION_SCORE"])
        attribution["value" if numeric else "rcf_value"] = score if numeric else f"{score:.3f}"
        attribution["rcf_direction"] = str(value.get("DIRECTION", ""))
    return replace(decision, explanation={**decision.explanation, **attribution})
