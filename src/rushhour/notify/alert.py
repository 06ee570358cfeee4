"""The alert: what people read when a series leaves its band, and the one sentence that says it.

An :class:`Alert` carries the series and its labels, the episode's window (start, detection, end once
resolved), actual against the expected band, the deviation in % and in σ, the direction, score,
severity, the features that drove the score, and a link to the dashboard view. It round-trips through
plain JSON so the outbox can store it.

>>> from datetime import datetime, UTC
>>> a = Alert(series="connected-drive", labels={"region": "eu"}, status="firing",
...           start=datetime(2026, 3, 2, 8, 12, tzinfo=UTC),
...           detected_at=datetime(2026, 3, 2, 8, 15, tzinfo=UTC),
...           value=38_440, expected=12_400, deviation=900, score=28.9, severity="critical",
...           explanation={"value": 0.91, "hour_of_week": 0.09})
>>> print(a.sentence())
Requests to connected-drive were 3.1x the expected 12,400/min for a Monday 08:15 (±900), starting 08:12: +210% (+28.9σ), spike, critical, score 28.90, driven mostly by value.
>>> a.direction, round(a.deviation_pct, 1), round(a.sigma or 0, 1)
('spike', 210.0, 28.9)
>>> Alert.from_json(a.to_json()) == a
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from rushhour.detect.base import signed_sigma
from rushhour.records import AnomalyEvent
from rushhour.timeutil import zone

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: str) -> int:
    """Order of severities, so that ``min_severity`` can compare them.

    >>> severity_rank("critical") > severity_rank("warning") > severity_rank("info")
    True
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(
            f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}"
        ) from None


@dataclass(frozen=True)
class Alert:
    """One anomaly episode of one series, firing or resolved. Datetimes are UTC."""

    series: str
    labels: dict[str, str]
    status: str
    start: datetime
    detected_at: datetime
    value: float
    expected: float | None
    deviation: float | None
    score: float
    severity: str
    end: datetime | None = None
    direction: str = ""
    threshold: float | None = None
    lower: float | None = None
    upper: float | None = None
    explanation: dict[str, float] = field(default_factory=dict)
    detector: str = "mean_band"
    series_id: int | None = None
    dashboard: str = ""
    unit: str = "/min"
    timezone: str = "UTC"
    buckets: int = 1
    peak_value: float | None = None
    repeat: int = 0

    def __post_init__(self) -> None:
        if not self.direction:
            spike = self.expected is None or self.value >= self.expected
            object.__setattr__(self, "direction", "spike" if spike else "drop")
        if self.deviation is not None and self.expected is not None:
            if self.lower is None:
                object.__setattr__(self, "lower", self.expected - 3.0 * self.deviation)
            if self.upper is None:
                object.__setattr__(self, "upper", self.expected + 3.0 * self.deviation)

    # -- derived ----------------------------------------------------------------------------------
    @property
    def ratio(self) -> float | None:
        """Actual over expected (3.1 means 3.1x)."""
        if not self.expected:
            return None
        return self.value / self.expected

    @property
    def deviation_pct(self) -> float | None:
        """Deviation from expected in percent of expected."""
        if not self.expected:
            return None
        return (self.value - self.expected) / self.expected * 100.0

    @property
    def sigma(self) -> float | None:
        """Signed distance from expected in deviations."""
        return signed_sigma(self.value, self.expected, self.deviation)

    @property
    def fingerprint(self) -> str:
        """Identity of the episode: the series with its labels and the episode start.

        >>> from datetime import datetime, UTC
        >>> t = datetime(2026, 1, 5, tzinfo=UTC)
        >>> a = Alert("a", {}, "firing", t, t, 1, 1, 1, 1, "warning")
        >>> a.fingerprint == a.resolved(t).fingerprint, len(a.fingerprint)
        (True, 16)
        """
        labels = ",".join(f"{k}={self.labels[k]}" for k in sorted(self.labels))
        raw = f"{self.series}{{{labels}}}@{int(self.start.timestamp())}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def id(self) -> str:
        """Identity of this announcement: episode and status (firing and resolved differ)."""
        tail = f"-r{self.repeat}" if self.repeat else ""
        return f"{self.fingerprint}-{self.status}{tail}"

    @property
    def duration(self) -> timedelta | None:
        return None if self.end is None else self.end - self.start

    @property
    def all_labels(self) -> dict[str, str]:
        """Labels for matching and routing: the series' labels plus series, severity, direction."""
        return {
            **self.labels,
            "series": self.series,
            "severity": self.severity,
            "direction": self.direction,
        }

    def link(self, hours: float = 6.0) -> str:
        """The dashboard view of the episode, or empty without a configured base URL."""
        return dashboard_link(
            self.dashboard,
            self.series_id if self.series_id is not None else self.series,
            self.start - timedelta(hours=hours),
            (self.end or self.detected_at) + timedelta(hours=1),
        )

    def top_features(self, n: int = 2) -> list[str]:
        """The features that drove the score, strongest first."""
        ranked = sorted(self.explanation.items(), key=lambda kv: -abs(kv[1]))
        return [k for k, _ in ranked[:n]]

    # -- words ------------------------------------------------------------------------------------
    def sentence(self) -> str:
        """One plain sentence with everything a person needs to act."""
        tz = zone(self.timezone)
        at = self.detected_at.astimezone(tz)
        began = self.start.astimezone(tz)
        what = f"{self.noun().capitalize()} to {self.target()}"
        if self.status == "resolved":
            end = (self.end or self.detected_at).astimezone(tz)
            mins = int((self.duration or timedelta()).total_seconds() // 60)
            peak = f", peak {self.peak_value:,.0f}{self.unit}" if self.peak_value else ""
            return (
                f"Resolved: {what} are back in the expected band since {end:%H:%M} after a "
                f"{mins} min {self.direction} starting {began:%H:%M} ({self.buckets} anomalous "
                f"buckets{peak}, {self.severity}, peak score {self.score:.2f})."
            )
        if self.expected is None:
            return (
                f"{what} were {self.value:,.0f}{self.unit} at {at:%A %H:%M}, starting "
                f"{began:%H:%M}: {self.direction}, {self.severity}, score {self.score:.2f}."
            )
        ratio = self.ratio
        times = f"{ratio:.1f}x" if ratio is not None else f"{self.value:,.0f}{self.unit} against"
        band = f" (±{self.deviation:,.0f})" if self.deviation else ""
        parts = []
        if self.deviation_pct is not None:
            parts.append(f"{self.deviation_pct:+.0f}%")
        if self.sigma is not None:
            parts[-1:] = [f"{parts[-1]} ({self.sigma:+.1f}σ)"] if parts else [f"{self.sigma:+.1f}σ"]
        parts += [self.direction, self.severity, f"score {self.score:.2f}"]
        drivers = self.top_features(1)
        driven = f", driven mostly by {drivers[0]}" if drivers else ""
        return (
            f"{what} were {times} the expected {self.expected:,.0f}{self.unit} for a "
            f"{at:%A %H:%M}{band}, starting {began:%H:%M}: {', '.join(parts)}{driven}."
        )

    def target(self) -> str:
        """What people call the thing: the ``service`` label when there is one, else the series."""
        return self.labels.get("service") or self.series

    def noun(self) -> str:
        """``requests``, or ``failed requests`` for a series labelled ``status=failed``."""
        status = self.labels.get("status")
        return "failed requests" if status == "failed" else "requests"

    def title(self) -> str:
        """A short headline: ``[CRITICAL] connected-drive spike``."""
        if self.status == "resolved":
            return f"[RESOLVED] {self.target()} {self.direction}"
        return f"[{self.severity.upper()}] {self.target()} {self.direction}"

    # -- plain data ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            data[name] = v.isoformat() if isinstance(v, datetime) else v
        data["labels"] = dict(self.labels)
        data["explanation"] = dict(self.explanation)
        return data

    def summary_json(self) -> dict[str, Any]:
        """The fields people and machines read, with derived numbers: for JSON lines and webhooks."""
        return {
            **self.to_json(),
            "id": self.id,
            "fingerprint": self.fingerprint,
            "ratio": _round(self.ratio, 3),
            "deviation_pct": _round(self.deviation_pct, 1),
            "sigma": _round(self.sigma, 2),
            "sentence": self.sentence(),
            "link": self.link(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        kw = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for name in ("start", "detected_at", "end"):
            if kw.get(name) is not None:
                kw[name] = datetime.fromisoformat(kw[name])
        return cls(**kw)

    def resolved(self, end: datetime, *, buckets: int | None = None) -> Alert:
        """The resolved announcement of this episode."""
        return replace(self, status="resolved", end=end, buckets=buckets or self.buckets)


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def dashboard_link(base: str, series: int | str, start: datetime, end: datetime) -> str:
    """``<base>/series/<id>?from=..&to=..`` (ISO UTC), or empty without a base.

    >>> from datetime import datetime, UTC
    >>> dashboard_link("http://127.0.0.1:8080/", 3, datetime(2026, 3, 2, 8, tzinfo=UTC),
    ...                datetime(2026, 3, 2, 9, tzinfo=UTC))
    'http://127.0.0.1:8080/series/3?from=2026-03-02T08%3A00%3A00Z&to=2026-03-02T09%3A00%3A00Z'
    """
    if not base:
        return ""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    query = urlencode({"from": f"{start:{fmt}}", "to": f"{end:{fmt}}"})
    return f"{base.rstrip('/')}/series/{quote(str(series), safe='')}?{query}"


def image_link(base: str, alert_id: str) -> str:
    """Where rushhour serves an alert's PNG (``GET /alerts/<id>/plot.png``), or empty."""
    return f"{base.rstrip('/')}/alerts/{alert_id}/plot.png" if base else ""


def from_event(
    event: AnomalyEvent,
    *,
    detected_at: datetime,
    series_id: int | None = None,
    dashboard: str = "",
    timezone: str = "UTC",
    threshold: float | None = None,
) -> Alert:
    """An alert from the pipeline's :class:`~rushhour.records.AnomalyEvent`."""
    expl = {str(k): float(v) for k, v in event.explanation.items() if isinstance(v, int | float)}
    return Alert(
        series=event.series,
        labels=dict(event.labels),
        status=event.status,
        start=event.start,
        detected_at=detected_at,
        end=event.end,
        value=event.value,
        expected=event.expected,
        deviation=event.deviation,
        score=event.score,
        severity=event.severity,
        direction=event.direction if event.direction in ("spike", "drop") else "",
        threshold=threshold,
        explanation=expl,
        detector=event.detector,
        series_id=series_id,
        dashboard=dashboard,
        timezone=timezone,
        buckets=event.buckets,
    )
