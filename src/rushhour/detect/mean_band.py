"""The Mean Predictor band: a bucket is anomalous outside ``mean ± k·deviation``.

The score is the absolute distance from the expected value in deviations (``|x - mean| / dev``), on a
scale from 0 upwards. A bucket is anomalous when the score exceeds ``k`` *and* the deviation is at least
``min_relative_deviation`` of the expected value: a 3σ wobble of 2% on a quiet series pages nobody.
Severity is ``critical`` at ``critical_k`` deviations or more.

>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> hist = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=3, seed=2, anomalies_per_day=0).series
>>> det = MeanBandDetector(MeanPredictor().fit(hist))
>>> t = datetime(2026, 1, 26, 8, 15, tzinfo=UTC)
>>> det.score_one(t, 40_000).direction, det.score_one(t, 40_000).anomalous
('spike', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from rushhour.detect.base import Verdict
from rushhour.errors import UsageError
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.timeutil import utc

_UNKNOWN = Verdict(score=0.0, anomalous=False)


@dataclass
class MeanBandDetector:
    """Flags buckets outside the Mean Predictor's band. Learning is done by refitting the predictor."""

    predictor: MeanPredictor
    k: float = 3.5
    critical_k: float = 6.0
    min_relative_deviation: float = 0.1
    name: str = "mean_band"

    def __post_init__(self) -> None:
        if self.k <= 0 or self.critical_k < self.k:
            raise UsageError(
                f"need 0 < k <= critical_k, got k={self.k}, critical_k={self.critical_k}"
            )

    def score_one(self, t: datetime, x: float) -> Verdict:
        index = pd.DatetimeIndex([pd.Timestamp(utc(t))])
        return self.score_many(index, np.array([x], dtype=float))[0]

    def learn_one(self, t: datetime, x: float) -> None:
        """The band learns in batch (``rushhour train``); single points do not move it."""

    def score_many(self, index: pd.DatetimeIndex, values: np.ndarray) -> list[Verdict]:
        mean, dev = self.predictor.expected(index)
        return self.verdicts(np.asarray(values, dtype=float), mean, dev)

    def verdicts(self, x: np.ndarray, mean: np.ndarray, dev: np.ndarray) -> list[Verdict]:
        """Vectorised decision for values against their expected band."""
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.abs(x - mean) / dev
            relative = np.abs(x - mean) / np.maximum(mean, 1.0)
        known = np.isfinite(score)
        anomalous = known & (score > self.k) & (relative >= self.min_relative_deviation)
        critical = score >= self.critical_k
        out = []
        for i in range(len(x)):
            if not known[i]:
                out.append(_UNKNOWN)
                continue
            xi, mi = float(x[i]), float(mean[i])
            out.append(
                Verdict(
                    score=float(score[i]),
                    anomalous=bool(anomalous[i]),
                    expected=mi,
                    deviation=float(dev[i]),
                    direction="none" if xi == mi else ("spike" if xi > mi else "drop"),
                    severity="critical" if critical[i] else "warning",
                )
            )
        return out

    def _verdict(self, x: float, mean: float, dev: float) -> Verdict:
        return self.verdicts(np.array([x]), np.array([mean]), np.array([dev]))[0]
