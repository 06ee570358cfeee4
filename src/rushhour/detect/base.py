"""The detector contract and the verdict a detector gives for one bucket."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
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

    @cached_property
    def explanation_json(self) -> str | None:
        """The explanation as the store keeps it (JSON text; None when empty), encoded once: a
        verdict judged ahead of its bucket's close is encoded then (a verdict is never changed,
        :func:`dataclasses.replace` makes a new one)."""
        return json.dumps(self.explanation) if self.explanation else None

    def sigma_at(self, value: float) -> float | None:
        """How far ``value`` (the bucket this verdict judged) lies from expected, in deviations."""
        return signed_sigma(value, self.expected, self.deviation)


def signed_sigma(value: float, expected: float | None, deviation: float | None) -> float | None:
    """``(value - expected) / deviation``, None without an expected value or a deviation.

    >>> signed_sigma(130.0, 100.0, 10.0), signed_sigma(70.0, 100.0, 0.0)
    (3.0, None)
    """
    if expected is None or not deviation:
        return None
    return (value - expected) / deviation


@runtime_checkable
class StreamingDetector(Protocol):
    """A detector that scores and learns one point at a time."""

    def score_one(self, t: datetime, x: float) -> Verdict: ...

    def learn_one(self, t: datetime, x: float) -> None: ...
