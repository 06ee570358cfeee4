"""Core records that cross module boundaries. Times are timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AnomalyEvent:
    """An anomalous bucket of one series, ready to be reported."""

    series: str
    labels: dict[str, str]
    start: datetime
    value: float
    expected: float | None
    deviation: float | None
    sigma: float | None
    direction: str
    severity: str
    detector: str
    score: float
    explanation: dict[str, Any] = field(default_factory=dict)
    status: str = "firing"
    end: datetime | None = None
    buckets: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "anomaly",
            "status": self.status,
            "end": None if self.end is None else self.end.isoformat(),
            "buckets": self.buckets,
            "series": self.series,
            "labels": self.labels,
            "time": self.start.isoformat(),
            "value": self.value,
            "expected": None if self.expected is None else round(self.expected, 2),
            "deviation": None if self.deviation is None else round(self.deviation, 2),
            "sigma": None if self.sigma is None else round(self.sigma, 2),
            "direction": self.direction,
            "severity": self.severity,
            "detector": self.detector,
            "score": round(self.score, 4),
            "explanation": self.explanation,
        }

    def display_name(self) -> str:
        """``requests[connected-drive failed eu-west-1]``: the name with its label values."""
        if not self.labels:
            return self.series
        return f"{self.series}[{' '.join(str(self.labels[k]) for k in sorted(self.labels))}]"

    def sentence(self, tz: Any = None) -> str:
        """One plain line: ``08:15 connected-drive 31,200/min, expected 12,400 ±900 (+20.3σ, spike)``."""
        when = self.start.astimezone(tz) if tz is not None else self.start
        name = self.display_name()
        if self.status == "resolved" and self.end is not None:
            lasted = int((self.end - self.start).total_seconds() // 60)
            return (
                f"{when:%Y-%m-%d %H:%M} {self.series} {self.direction} resolved after {lasted} min "
                f"({self.buckets} anomalous buckets, peak {self.score:.1f}σ, {self.severity})"
            )
        head = f"{when:%Y-%m-%d %H:%M} {name} {self.value:,.0f}/bucket"
        if self.expected is None:
            return f"{head} ({self.direction}, score {self.score:.2f})"
        dev = f" ±{self.deviation:,.0f}" if self.deviation else ""
        sig = f"{self.sigma:+.1f}σ, " if self.sigma is not None else ""
        return (
            f"{head}, expected {self.expected:,.0f}{dev} ({sig}{self.direction}, {self.severity})"
        )
