"""Anomaly episodes: consecutive anomalous buckets of a series become one firing, then one resolved.

An episode opens at the first anomalous bucket and resolves after ``resolve_after`` quiet buckets in a
row. The tracker is pure: it is fed verdicts in bucket order, returns what to announce, and its state
round-trips through :meth:`snapshot` so a restart neither re-fires nor forgets an open episode.

>>> tr = EpisodeTracker(resolve_after=2)
>>> [e.status for e in tr.observe("s", 0, True, "spike", "warning", 3.0)]
['firing']
>>> tr.observe("s", 60, True, "spike", "critical", 9.0), tr.observe("s", 120, False)
([], [])
>>> [(e.status, e.buckets, e.severity, e.duration) for e in tr.observe("s", 180, False)]
[('resolved', 2, 'critical', 180)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Episode:
    """An open or closed run of anomalous buckets of one series (epoch seconds)."""

    series: str
    start: int
    last: int
    buckets: int
    direction: str
    severity: str
    peak_score: float


@dataclass(frozen=True)
class EpisodeChange:
    """``firing`` when an episode opens, ``resolved`` when it closes."""

    status: str
    series: str
    start: int
    end: int | None
    buckets: int
    direction: str
    severity: str
    peak_score: float

    @property
    def duration(self) -> int | None:
        """Seconds from the first anomalous bucket to the resolve; None while firing."""
        return None if self.end is None else self.end - self.start


class EpisodeTracker:
    """Turns per-bucket decisions into episode openings and closings."""

    def __init__(self, resolve_after: int = 3) -> None:
        if resolve_after < 1:
            raise ValueError(f"resolve_after must be >= 1, got {resolve_after}")
        self.resolve_after = resolve_after
        self._open: dict[str, Episode] = {}
        self._quiet: dict[str, int] = {}

    def observe(
        self,
        series: str,
        start: int,
        anomalous: bool,
        direction: str = "none",
        severity: str = "warning",
        score: float = 0.0,
    ) -> list[EpisodeChange]:
        ep = self._open.get(series)
        if anomalous:
            self._quiet[series] = 0
            if ep is None:
                ep = Episode(series, start, start, 1, direction, severity, score)
                self._open[series] = ep
                return [self._change("firing", ep, None)]
            ep.last, ep.buckets = start, ep.buckets + 1
            if score > ep.peak_score:
                ep.peak_score, ep.direction = score, direction
            if severity == "critical":
                ep.severity = "critical"
            return []
        if ep is None:
            return []
        self._quiet[series] = self._quiet.get(series, 0) + 1
        if self._quiet[series] < self.resolve_after:
            return []
        del self._open[series]
        self._quiet.pop(series, None)
        return [self._change("resolved", ep, start)]

    def open_episodes(self) -> list[Episode]:
        return list(self._open.values())

    @staticmethod
    def _change(status: str, ep: Episode, end: int | None) -> EpisodeChange:
        return EpisodeChange(
            status, ep.series, ep.start, end, ep.buckets, ep.direction, ep.severity, ep.peak_score
        )

    def snapshot(self) -> dict[str, Any]:
        return {"open": [asdict(e) for e in self._open.values()], "quiet": dict(self._quiet)}

    def restore(self, state: dict[str, Any]) -> EpisodeTracker:
        self._open = {e["series"]: Episode(**e) for e in state.get("open", [])}
        self._quiet = {k: int(v) for k, v in state.get("quiet", {}).items()}
        return self
