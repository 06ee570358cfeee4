"""The streaming forest as a per-series :class:`~rushhour.detect.base.StreamingDetector`.

``score_one`` scores a bucket against the forest (without learning it) and calls it anomalous when
the score exceeds ``mean + k·std`` of the scores seen so far (the seed report's threshold, kept as a
running estimate); ``learn_one`` then adds the bucket. The verdict's explanation carries the
attribution in the Kinesis shape and the threshold used.

>>> from datetime import datetime, timedelta, UTC
>>> det = RCFDetector(RCFConfig(number_of_trees=20, sub_sample_size=32, shingle_size=4, seed=1))
>>> t0 = datetime(2026, 1, 5, tzinfo=UTC)
>>> for i in range(400):
...     t = t0 + timedelta(minutes=i)
...     _ = det.score_one(t, 100.0 + i % 5)
...     det.learn_one(t, 100.0 + i % 5)
>>> v = det.score_one(t0 + timedelta(minutes=400), 900.0)
>>> v.anomalous, v.direction, v.explanation["value"]["DIRECTION"]
(True, 'spike', 'HIGH')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from rushhour.detect.base import Direction, Verdict
from rushhour.detect.rcf.forest import RandomCutForest, RCFConfig, RCFResult
from rushhour.detect.rcf.kinesis import explanation
from rushhour.errors import UsageError


@dataclass
class RCFDetector:
    """Random cut forest over one series (one input column, shingled)."""

    config: RCFConfig = field(default_factory=lambda: RCFConfig(shingle_size=8))
    k: float = 3.0
    critical_k: float = 5.0
    name: str = "rcf"
    forest_: RandomCutForest | None = None
    n_: int = 0
    mean_: float = 0.0
    m2_: float = 0.0

    def __post_init__(self) -> None:
        if self.k <= 0 or self.critical_k < self.k:
            raise UsageError(
                f"need 0 < k <= critical_k, got k={self.k}, critical_k={self.critical_k}"
            )
        if self.forest_ is None:
            self.forest_ = RandomCutForest(self.config, dimensions=1)

    @property
    def forest(self) -> RandomCutForest:
        assert self.forest_ is not None
        return self.forest_

    def threshold(self, k: float | None = None) -> float:
        """``mean + k·std`` of the (post warm-up) scores so far; infinite before 30 scores."""
        if self.n_ < 30:
            return math.inf
        return self.mean_ + (self.k if k is None else k) * math.sqrt(self.m2_ / self.n_)

    def score_one(self, t: datetime, x: float) -> Verdict:
        if not self.forest.is_warm:
            return Verdict(score=0.0, anomalous=False)
        return self._verdict(self.forest.score_and_explain([x]))

    def _verdict(self, result: RCFResult) -> Verdict:
        assert result.high is not None and result.low is not None
        score = float(result.scores[0])
        limit = self.threshold()
        high, low = float(result.high[0, 0]), float(result.low[0, 0])
        direction: Direction = "spike" if high >= low else "drop"
        info = explanation(["value"], result.high[0], result.low[0], with_directionality=True)
        return Verdict(
            score=score,
            anomalous=score > limit,
            direction=direction if score > limit else "none",
            severity="critical" if score > self.threshold(self.critical_k) else "warning",
            explanation={**info, "threshold": limit},
        )

    def score_and_learn(self, t: datetime, x: float) -> Verdict:
        """``score_one`` then ``learn_one`` in one kernel call that scores, attributes and learns
        the bucket (the live pipeline's path: the score that judged the bucket also feeds the
        running threshold)."""
        if not self.forest.is_warm:
            self.forest.update([x])
            return Verdict(score=0.0, anomalous=False)
        verdict = self._verdict(self.forest.process([x], explain=True))
        self._observe(verdict.score)
        return verdict

    def query(self, x: float) -> np.ndarray:
        """The shingled point (float32) that scoring ``x`` next would use; nothing is learned."""
        shingler = self.forest.shingler_
        assert shingler is not None
        return shingler.peek(np.array([x]))[0]

    def judge(self, score: float, high: np.ndarray, low: np.ndarray) -> Verdict:
        """The verdict on a record scored (and attributed: ``high``/``low`` per input column) by
        this forest, before the record is learned: what :meth:`score_and_learn` returns for it."""
        return self._verdict(RCFResult(np.array([score]), high.reshape(1, -1), low.reshape(1, -1)))

    def learn_scored(self, x: float, score: float) -> None:
        """Learn ``x`` after :meth:`judge` (its ``score`` feeds the running threshold): with
        :meth:`judge`, exactly :meth:`score_and_learn` split in two."""
        self.forest.update([x])
        self._observe(score)

    def _observe(self, score: float) -> None:
        self.n_ += 1
        delta = score - self.mean_
        self.mean_ += delta / self.n_
        self.m2_ += delta * (score - self.mean_)

    def learn_one(self, t: datetime, x: float) -> None:
        if self.forest.is_warm:
            self._observe(self.forest.score([x]))
        self.forest.update([x])
