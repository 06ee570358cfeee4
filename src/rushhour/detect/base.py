"""The detector contract and the verdict a detector gives for one bucket."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

Direction = Literal["spike", "drop", "none"]
Severity = Literal["warning", "critical"]


@dataclass(frozen=True)
class Verdict:
    """What a detector says about one bucket.

    ``score`` follows the detector's own scale; ``anomalous`` is its decision with its own threshold.
    ``expected`` and ``deviation`` describe the band where the detector has one.
    """

    score: float
    anomalous: bool
    expected: float | None = None
    deviation: float | None = None
    direction: Direction = "none"
    severity: Severity = "warning"
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def sigma(self) -> float | None:
        """Signed distance from expected in deviations, where a band exists."""
        if self.expected is None or not self.deviation:
            return None
        return self.score if self.direction == "spike" else -self.score


@runtime_checkable
class StreamingDetector(Protocol):
    """A detector that scores and learns one point at a time."""

    def score_one(self, t: datetime, x: float) -> Verdict: ...

    def learn_one(self, t: datetime, x: float) -> None: ...
