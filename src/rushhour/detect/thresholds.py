"""Turning scores into decisions: thresholds, severity levels and alert hygiene.

* :func:`static_threshold` and :func:`learned_threshold` (``mean + k·std`` of training scores, over all
  of them or per local hour of day) give a threshold;
* :class:`AlertPolicy` applies one causally: a bucket alerts when its score reaches the threshold,
  after a warm-up, and not within ``holdoff`` buckets of the previous alert (one page per incident,
  not one per minute); severity is ``critical`` from ``critical`` upwards.

>>> import numpy as np
>>> policy = AlertPolicy(threshold=0.5, critical=0.8, holdoff=3, warmup=1)
>>> alerts, severity = policy.apply(np.array([0.9, 0.6, 0.6, 0.1, 0.1, 0.6, 0.85]))
>>> alerts.astype(int).tolist(), severity.tolist()
([0, 1, 0, 0, 0, 1, 0], ['', 'warning', '', '', '', 'warning', ''])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from rushhour.errors import UsageError


def static_threshold(value: float) -> float:
    """A fixed threshold on the detector's score scale, checked to lie in ``[0, 1]``."""
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"threshold must be in [0, 1], got {value}")
    return value


def learned_threshold(
    train_scores: np.ndarray,
    k: float = 3.0,
    hours: np.ndarray | None = None,
) -> float | np.ndarray:
    """``mean + k·std`` of training scores: one number, or 24 (per local hour) when ``hours`` is given.

    An hour without training scores gets the global threshold.

    >>> learned_threshold(np.array([0.0, 0.2, 0.0, 0.2]), k=1.0)
    0.2
    >>> learned_threshold(np.array([0.0, 0.2, 0.0, 0.2]), k=1.0, hours=np.array([0, 0, 1, 1]))[:3].tolist()
    [0.2, 0.2, 0.2]
    """
    s = np.asarray(train_scores, dtype=float)
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise UsageError("need at least one training score to learn a threshold")
    overall = float(s.mean() + k * s.std())
    if hours is None:
        return overall
    h = np.asarray(hours)[~np.isnan(np.asarray(train_scores, dtype=float))]
    out = np.full(24, overall)
    for hour in range(24):
        part = s[h == hour]
        if part.size:
            out[hour] = part.mean() + k * part.std()
    return out


@dataclass
class AlertPolicy:
    """Causal alert hygiene over a stream of scores (state: buckets seen and since the last alert)."""

    threshold: float = 0.5
    critical: float = 0.8
    holdoff: int = 120
    warmup: int = 0
    #: within the holdoff, alert again anyway when the score beats the last alert's by this much
    escalate: float = float("inf")
    seen_: int = field(default=0, repr=False)
    last_score_: float = field(default=0.0, repr=False)
    since_alert_: int = field(default=1 << 30, repr=False)

    def __post_init__(self) -> None:
        static_threshold(self.threshold)
        if not self.threshold <= self.critical <= 1.0:
            raise UsageError(
                f"critical must be in [threshold, 1] = [{self.threshold}, 1], got {self.critical}"
            )
        if self.holdoff < 0 or self.warmup < 0:
            raise UsageError(f"holdoff and warmup must be >= 0, got {self.holdoff}, {self.warmup}")

    def apply(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alert flags and severities (``""`` where no alert) for the next scores, in order."""
        st = np.array([self.seen_, self.since_alert_, self.last_score_], dtype=float)
        alerts = _apply(
            np.asarray(scores, dtype=float),
            st,
            self.threshold,
            self.holdoff,
            self.warmup,
            self.escalate,
        )
        self.seen_, self.since_alert_, self.last_score_ = int(st[0]), int(st[1]), float(st[2])
        sev = np.where(
            alerts, np.where(np.asarray(scores) >= self.critical, "critical", "warning"), ""
        )
        return alerts, sev.astype(str)


@nb.njit(cache=True)
def _apply(
    s: np.ndarray, st: np.ndarray, thr: float, holdoff: int, warmup: int, escalate: float
) -> np.ndarray:  # pragma: no cover - compiled
    # st: buckets seen, buckets since the last alert, score of the last alert
    out = np.zeros(s.shape[0], dtype=np.bool_)
    for i in range(s.shape[0]):
        st[1] += 1
        free = st[1] > holdoff or s[i] >= st[2] + escalate
        if st[0] >= warmup and s[i] >= thr and free:
            out[i] = True
            st[1] = 0
            st[2] = s[i]
        st[0] += 1
    return out


def refractory(
    scores: np.ndarray, history: np.ndarray, damp: float
) -> tuple[np.ndarray, np.ndarray]:
    """Damp each score that does not exceed the largest of the previous ``len(history)`` scores.

    Threshold-free "one incident, one peak": the first bucket of an incident keeps its score, the
    buckets that merely continue it are multiplied by ``damp``. ``history`` holds the previous raw
    scores (oldest first, NaN where unknown) and is returned updated, so chunks join up exactly.

    >>> out, hist = refractory(np.array([0.2, 0.9, 0.8, 0.95]), np.full(2, np.nan), 0.5)
    >>> out.tolist(), hist.tolist()
    ([0.2, 0.9, 0.4, 0.95], [0.8, 0.95])
    """
    s = np.asarray(scores, dtype=float)
    h = np.asarray(history, dtype=float)
    if h.size == 0:
        return s.copy(), h.copy()
    ext = np.r_[h, s]
    out = _refractory(ext, h.size, damp)
    return out, ext[-h.size :].copy()


@nb.njit(cache=True)
def _refractory(ext: np.ndarray, hn: int, damp: float) -> np.ndarray:  # pragma: no cover
    n = ext.shape[0] - hn
    out = np.empty(n)
    for i in range(n):
        j = i + hn
        m = -1.0
        for k in range(j - hn, j):
            v = ext[k]
            if not np.isnan(v) and v > m:
                m = v
        out[i] = ext[j] if ext[j] > m else ext[j] * damp
    return out
