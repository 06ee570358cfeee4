"""What the live pipeline calls: scored buckets in, alerts into the outbox.

For each scored bucket of a series, :meth:`Notifier.observe` applies the filters (minimum absolute
and relative deviation, direction), the M-of-N trigger and the episode tracker, so each anomaly
episode becomes one *firing* and later one *resolved* alert (with its duration). The cooldown holds
flapping episodes back, the repeat interval re-sends long ones, and the grouper collects alerts
that arrive together. :meth:`Notifier.flush` drops silenced alerts, routes each alert to the
channels whose ``min_severity`` it reaches, renders the plot and writes the outbox rows. Delivery
is the worker's job (:mod:`rushhour.notify.worker`).

Its state round-trips through :meth:`snapshot` / :meth:`restore` (plain data), for the pipeline's
checkpoint. The pipeline builds it with ``Notifier.from_settings(settings, store)``, calls
``observe`` per scored bucket and ``flush(now)`` after each batch, and runs ``notifier.worker(clock)``
(``run_once()`` between batches, or ``run()`` in a thread) to deliver.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rushhour.detect.base import Verdict
from rushhour.notify.alert import Alert, severity_rank
from rushhour.notify.episodes import EpisodeTracker
from rushhour.notify.hygiene import AlertFilter, Grouper, MofN, RepeatCooldown
from rushhour.notify.outbox import Outbox
from rushhour.notify.registry import Channel, channels_from_settings
from rushhour.notify.silences import list_silences, silenced_by
from rushhour.notify.worker import DeliveryWorker
from rushhour.pipeline.clock import Clock
from rushhour.settings import AlertSettings, Settings
from rushhour.store.db import Store
from rushhour.timeutil import from_epoch, parse_duration

PlotSource = Callable[[Alert], bytes | None]


@dataclass
class FlushStats:
    enqueued: int = 0
    silenced: list[str] = field(default_factory=list)
    unrouted: list[str] = field(default_factory=list)


class Notifier:
    """Turns scored buckets into outbox rows."""

    def __init__(
        self,
        store: Store,
        channels: Sequence[Channel],
        *,
        settings: AlertSettings | None = None,
        resolve_after: int = 3,
        timezone: str = "UTC",
        plot: PlotSource | None = None,
        outbox: Outbox | None = None,
        bucket_seconds: int = 60,
    ) -> None:
        cfg = settings or AlertSettings()
        self.cfg = cfg
        self.store = store
        self.channels = list(channels)
        self.timezone = timezone
        self.outbox = outbox or Outbox(store, retry_base=cfg.retry_base, retry_max=cfg.retry_max)
        self.filter = AlertFilter(cfg.min_abs_deviation, cfg.min_rel_deviation, cfg.direction)
        self.trigger = MofN(cfg.m, cfg.n)
        self.episodes = EpisodeTracker(resolve_after)
        self.policy = RepeatCooldown(
            parse_duration(cfg.repeat_interval).total_seconds(),
            parse_duration(cfg.cooldown).total_seconds(),
        )
        self.grouper = Grouper(cfg.group_by, parse_duration(cfg.group_wait).total_seconds())
        self.plot = plot if plot is not None else self._plot_from_store
        self.bucket_seconds = bucket_seconds
        self._open: dict[str, Alert] = {}
        self._recent: dict[str, deque[int]] = {}
        self._last: dict[str, int] = {}  # last triggered bucket of each open episode

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, environ: Mapping[str, str] | None = None
    ) -> Notifier:
        """The notifier of a pipeline run: channels, filters and timings from the settings."""
        return cls(
            store,
            channels_from_settings(settings, environ),
            settings=settings.alerts,
            resolve_after=settings.detect.resolve_after,
            timezone=settings.timezone,
            bucket_seconds=settings.bucket_width(),
        )

    def worker(self, clock: Clock, **kw: Any) -> DeliveryWorker:
        """A delivery worker over this notifier's outbox and channels.

        Built once at pipeline start: when a channel shows the plot, the cold first render (fonts,
        figure) is paid here rather than by the first alert.
        """
        if self.plot == self._plot_from_store and any(self._shows_image(c) for c in self.channels):
            from rushhour.notify.plot import warm_up

            warm_up()
        return DeliveryWorker(self.outbox, {c.name: c for c in self.channels}, clock, **kw)

    @staticmethod
    def _shows_image(channel: Channel) -> bool:
        return bool(getattr(channel, "uses_image", True))

    # -- per bucket -------------------------------------------------------------------------------
    def observe(
        self,
        *,
        series: str,
        labels: dict[str, str],
        start: int,
        value: float,
        verdict: Verdict,
        now: float,
        series_id: int | None = None,
        detector: str = "mean_band",
        threshold: float | None = None,
        key: str | None = None,
    ) -> list[Alert]:
        """Feed one scored bucket (``start`` in epoch seconds); returns alerts queued for grouping."""
        key = key or series + "".join(f",{k}={labels[k]}" for k in sorted(labels))
        counts = verdict.anomalous and self.filter.passes(value, verdict.expected)
        recent = self._recent.setdefault(key, deque(maxlen=self.trigger.n))
        recent.append(start if counts else -1)
        triggered = self.trigger.observe(key, counts)
        changes = self.episodes.observe(
            key, start, triggered, verdict.direction, verdict.severity, verdict.score
        )
        queued: list[Alert] = []
        if triggered:
            self._last[key] = start
        ep = self._open.get(key)
        if ep is not None and triggered:
            peak = max(ep.peak_value or ep.value, value, key=lambda v: abs(v - (ep.expected or 0)))
            worse = severity_rank(verdict.severity) > severity_rank(ep.severity)
            self._open[key] = replace(
                ep,
                score=max(ep.score, verdict.score),
                severity=verdict.severity if worse else ep.severity,
                peak_value=peak,
                buckets=ep.buckets + 1,
            )
            n = self.policy.escalate(key, now) if worse else None
            if n is not None:  # re-announce: the paging channels hear of it now
                queued.append(
                    replace(self._open[key], repeat=n, value=value, detected_at=from_epoch(start))
                )
        for change in changes:
            if change.status == "firing":
                first = min((s for s in recent if s >= 0), default=start)
                alert = Alert(
                    series=series,
                    labels=dict(labels),
                    status="firing",
                    start=from_epoch(first),
                    detected_at=from_epoch(start),
                    value=value,
                    expected=verdict.expected,
                    deviation=verdict.deviation,
                    score=verdict.score,
                    severity=verdict.severity,
                    direction=verdict.direction if verdict.direction in ("spike", "drop") else "",
                    threshold=threshold,
                    explanation={
                        str(k): float(v)
                        for k, v in verdict.explanation.items()
                        if isinstance(v, int | float)
                    },
                    detector=detector,
                    series_id=series_id,
                    dashboard=self.cfg.dashboard_url,
                    timezone=self.timezone,
                    peak_value=value,
                )
                self._open[key] = alert
                if self.policy.on_firing(key, now):
                    queued.append(alert)
            else:
                opened = self._open.pop(key, None)
                last = self._last.pop(key, start)
                if opened is not None and self.policy.on_resolved(key, now):
                    # the episode ends where its last anomalous bucket ends
                    end = from_epoch(last + self.bucket_seconds)
                    queued.append(replace(opened.resolved(end), repeat=0))
        for series_key, n in self.policy.due_repeats(now):
            if series_key in self._open:
                queued.append(replace(self._open[series_key], repeat=n))
        for series_key in self.policy.release_held(now):
            if series_key in self._open:
                queued.append(self._open[series_key])
        for a in queued:
            self.grouper.add(a, now)
        return queued

    # -- out --------------------------------------------------------------------------------------
    def flush(self, now: float, *, wall: float | None = None, force: bool = False) -> FlushStats:
        """Enqueue groups whose ``group_wait`` has passed (all of them with ``force``).

        ``now`` is event time; ``wall`` the wall clock's time: the rows are due at the earlier of
        the two, so events ahead of the wall clock (the demo's accelerated day, a producer's clock
        running fast) are delivered at once rather than when the wall clock catches up."""
        stats = FlushStats()
        groups = self.grouper.due(now, force=force)
        if not groups:
            return stats
        silences = list_silences(self.store, now=now)
        images: dict[str, bytes | None] = {}

        def image_of(alert: Alert) -> bytes | None:
            # rendering costs 0.1-0.3 s: only for channels that show a picture, once per alert
            if alert.id not in images:
                images[alert.id] = self.plot(alert)
            return images[alert.id]

        for group in groups:
            alerts = []
            for a in group.alerts:
                if silenced_by(silences, a.all_labels, now) is not None:
                    stats.silenced.append(a.id)
                else:
                    alerts.append(a)
            alerts.sort(key=lambda a: (-severity_rank(a.severity), -a.score))
            if not alerts:
                continue
            routed = False
            for ch in self.channels:
                rank = severity_rank(ch.min_severity)
                subset = [a for a in alerts if severity_rank(a.severity) >= rank]
                if subset:
                    routed = True
                    stats.enqueued += self.outbox.enqueue(
                        subset,
                        [ch.name],
                        now=now,
                        due=now if wall is None else min(now, wall),
                        image=image_of(subset[0]) if self._shows_image(ch) else None,
                        group_labels=group.labels,
                    )
            if not routed:
                stats.unrouted.extend(a.id for a in alerts)
        return stats

    def _plot_from_store(self, alert: Alert) -> bytes | None:
        from rushhour.notify.plot import from_store, render

        data = from_store(self.store, alert, hours=self.cfg.plot_hours)
        return None if data is None else render(alert, data)

    # -- state ------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes.snapshot(),
            "trigger": self.trigger.snapshot(),
            "policy": self.policy.snapshot(),
            "open": {k: a.to_json() for k, a in self._open.items()},
            "recent": {k: list(v) for k, v in self._recent.items()},
            "last": dict(self._last),
            "pending": [
                {"now": g.first_seen, "alerts": [a.to_json() for a in g.alerts]}
                for g in self.grouper._groups.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> Notifier:
        self.episodes.restore(state.get("episodes", {}))
        self.trigger.restore(state.get("trigger", {}))
        self.policy.restore(state.get("policy", {}))
        self._open = {k: Alert.from_json(v) for k, v in state.get("open", {}).items()}
        self._recent = {
            k: deque(v, maxlen=self.trigger.n) for k, v in state.get("recent", {}).items()
        }
        self._last = {k: int(v) for k, v in state.get("last", {}).items()}
        for g in state.get("pending", []):
            for a in g["alerts"]:
                self.grouper.add(Alert.from_json(a), float(g["now"]))
        return self
