"""Turning scores into decisions: thresholds, severity levels and alert hygiene.

* :func:`static_threshold` and :func:`learned_threshold` (``mean + k·std`` of training scores, over all
  of them or per group: local hour of day, or day of week) give a threshold;
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
    groups: np.ndarray | None = None,
    n_groups: int = 24,
) -> float | np.ndarray:
    """``mean + k·std`` of training scores: one global number, or one per group.

    ``groups`` labels each training score with an integer in ``[0, n_groups)``: the local hour (24
    groups) for a threshold per time of day, or the day of the week (7) for one per day. A group
    without training scores gets the global threshold; a threshold never exceeds 1.

    >>> learned_threshold(np.array([0.0, 0.2, 0.0, 0.2]), k=1.0)
    0.2
    >>> t = learned_threshold(np.array([0.0, 0.2, 0.4, 0.4]), k=1.0,
    ...                       groups=np.array([0, 0, 1, 1]), n_groups=3)
    >>> [round(float(v), 3) for v in t]
    [0.2, 0.4, 0.416]
    """
    raw = np.asarray(train_scores, dtype=float)
    keep = ~np.isnan(raw)
    s = raw[keep]
    if s.size == 0:
        raise UsageError("need at least one training score to learn a threshold")
    if k < 0:
        raise UsageError(f"k must be >= 0, got {k}")
    overall = min(float(s.mean() + k * s.std()), 1.0)
    if groups is None:
        return overall
    g = np.asarray(groups)
    if g.shape != raw.shape:
        raise UsageError(f"groups must label every score: {g.shape} labels for {raw.shape} scores")
    g = g[keep]
    if g.size and (g.min() < 0 or g.max() >= n_groups):
        raise UsageError(f"groups must lie in [0, {n_groups}), got {g.min()}..{g.max()}")
    out = np.full(n_groups, overall)
    for group in range(n_groups):
        part = s[g == group]
        if part.size:
            out[group] = min(part.mean() + k * part.std(), 1.0)
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
        st = np.array([[self.seen_, self.since_alert_, self.last_score_]], dtype=float)
        s = np.asarray(scores, dtype=float)
        out = self.apply_rows(s, np.zeros(s.shape[0], dtype=np.int64), st)
        self.seen_, self.since_alert_, self.last_score_ = (
            int(st[0, 0]),
            int(st[0, 1]),
            float(st[0, 2]),
        )
        return out

    def initial_state(self) -> np.ndarray:
        """The state of one series for :meth:`apply_rows`: buckets seen, since the last alert, and
        the last alert's score."""
        return np.array([0.0, float(1 << 30), 0.0])

    def apply_rows(
        self, scores: np.ndarray, rows: np.ndarray, states: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply` for many series at once: score ``i`` belongs to the series whose state is
        ``states[rows[i]]`` (rows of :meth:`initial_state`, moved on in place); each series' scores
        in time order."""
        s = np.asarray(scores, dtype=float)
        alerts = _apply(s, rows, states, self.threshold, self.holdoff, self.warmup, self.escalate)
        sev = np.where(alerts, np.where(s >= self.critical, "critical", "warning"), "")
        return alerts, sev.astype(str)


@nb.njit(cache=True)
def _apply(
    s: np.ndarray,
    rows: np.ndarray,
    states: np.ndarray,
    thr: float,
    holdoff: int,
    warmup: int,
    escalate: float,
) -> np.ndarray:  # pragma: no cover - compiled
    # a state row: buckets seen, buckets since the last alert, score of the last alert
    out = np.zeros(s.shape[0], dtype=np.bool_)
    for i in range(s.shape[0]):
        st = states[rows[i]]
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
    h = np.array(history, dtype=float)
    if h.size == 0:
        return s.copy(), h
    out = refractory_rows(s, np.zeros(s.shape[0], dtype=np.int64), h[None], damp)
    return out, h


def refractory_rows(
    scores: np.ndarray, rows: np.ndarray, histories: np.ndarray, damp: float
) -> np.ndarray:
    """:func:`refractory` for many series at once: score ``i`` belongs to the series whose history
    is ``histories[rows[i]]`` (updated in place); each series' scores in time order."""
    s = np.asarray(scores, dtype=float)
    if histories.shape[1] == 0:
        return s.copy()
    return _refractory(s, rows, histories, damp)


@nb.njit(cache=True)
def _refractory(
    s: np.ndarray, rows: np.ndarray, histories: np.ndarray, damp: float
) -> np.ndarray:  # pragma: no cover
    n = s.shape[0]
    hn = histories.shape[1]
    out = np.empty(n)
    for i in range(n):
        h = histories[rows[i]]
        m = -1.0
        for k in range(hn):
            v = h[k]
            if not np.isnan(v) and v > m:
                m = v
        out[i] = s[i] if s[i] > m else s[i] * damp
        for k in range(hn - 1):
            h[k] = h[k + 1]
        h[hn - 1] = s[i]
    return out
