"""Likelihood-style score normalisation, after Numenta's anomaly likelihood.

A raw anomaly signal (any non-negative number, larger = stranger) is compared with its own recent
distribution: an EWMA mean and variance of the raw values seen so far (``alpha`` sets the memory,
about ``1/alpha`` buckets; values beyond ``clip`` standard deviations are learned as if at that
limit; off by default, as winsorizing scored worse in the ablation). The tail probability of the current value, ``Q = P(N(m, s²) >= raw)`` with
the Gaussian Q-function, says how unusual it is *for this series*: a noisy series that often jumps by
5σ earns smaller scores for such jumps than a calm one does.

The score is ``u / (u + scale)`` with ``u = -log10(Q)``: 0 for an ordinary value, 0.5 at
``Q = 10^-scale`` (1e-5 by default, Numenta's "red" level), tending to 1 and never saturating, so scores
stay rankable. Before ``warmup`` values the score is 0. Strictly causal: each value is scored against
the distribution of earlier ones, then learned.

>>> import numpy as np
>>> lk = Likelihood()
>>> raw = np.abs(np.random.default_rng(0).normal(size=2000)); raw[1500] = 12.0
>>> s = lk.run(raw)
>>> int(np.argmax(s)), bool(s[1500] > 0.5), bool(np.median(s[200:]) < 0.1)
(1500, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from rushhour.errors import UsageError

LN10 = float(np.log(10.0))


def score_from_tail(neg_log10_q: np.ndarray, scale: float) -> np.ndarray:
    """Map ``-log10(Q)`` to ``[0, 1)``.

    >>> score_from_tail(np.array([0.0, 5.0, 45.0]), 5.0).tolist()
    [0.0, 0.5, 0.9]
    """
    u = np.clip(np.nan_to_num(np.asarray(neg_log10_q, dtype=float), nan=0.0), 0.0, 1e12)
    return u / (u + scale)


def tail_from_score(score: float, scale: float) -> float:
    """The tail probability a score stands for (inverse of :func:`score_from_tail`).

    >>> tail_from_score(0.5, 5.0)
    1e-05
    """
    return float(10.0 ** -surprise_from_score(score, scale))


@nb.njit(cache=True)
def surprise_from_score(score: float, scale: float) -> float:  # pragma: no cover - compiled
    """The surprise ``-log10 Q`` a score stands for (inverse of :func:`score_from_tail`; a score of
    1 is infinitely surprising)."""
    return np.inf if score >= 1.0 else scale * score / (1.0 - score)


def gaussian_surprise(z: np.ndarray) -> np.ndarray:
    """``-log10 Q(z)``, ``Q`` the standard Gaussian upper tail, accurate far into the tail.

    >>> [round(float(u), 3) for u in gaussian_surprise(np.array([0.0, 5.0, 40.0]))]
    [0.301, 6.543, 349.437]
    """
    from scipy.special import log_ndtr

    return np.asarray(-log_ndtr(-np.asarray(z, dtype=float)) / LN10)


def two_sided_surprise(z: np.ndarray) -> np.ndarray:
    """``-log10(2·Q(|z|))``, the two-sided Gaussian tail (``-0.0`` at ``z = 0``; NaN read as 0).

    >>> [round(float(u), 3) for u in two_sided_surprise(np.array([np.nan, 0.0, -5.0, 5.0]))]
    [-0.0, -0.0, 6.242, 6.242]
    """
    from scipy.special import log_ndtr

    return np.asarray(-(log_ndtr(-np.abs(np.nan_to_num(z))) + np.log(2.0)) / LN10)


def tail_surprise(u: np.ndarray) -> np.ndarray:
    """``-log10 Q(u)``, the Gaussian upper tail of standardized values (0 where ``u`` is NaN)."""
    return gaussian_surprise(np.nan_to_num(u, nan=-np.inf))


#: state per series: count, then centre and spread (mean and variance, or median and 84th percentile)
N_STATE = 3


@dataclass
class Likelihood:
    """Config (``alpha``, ``warmup``, ``min_std``, ``scale``) and state (``state_``)."""

    alpha: float = 0.002
    warmup: int = 150
    min_std: float = 0.05
    scale: float = 5.0
    clip: float = float("inf")
    #: judge ``log1p(raw)`` rather than ``raw``: heavy-tailed signals then have a finite variance
    compress: bool = True
    #: estimate centre and spread as the running median and 84th percentile (robust to anomalies)
    robust: bool = False
    state_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise UsageError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.warmup < 0 or self.min_std <= 0 or self.scale <= 0:
            raise UsageError(
                f"need warmup >= 0, min_std > 0, scale > 0; got {self.warmup}, "
                f"{self.min_std}, {self.scale}"
            )

    def standardize(self, raw: np.ndarray) -> np.ndarray:
        """Per value, ``(raw - mean) / std`` against the earlier values (NaN during warm-up)."""
        if self.state_ is None:
            self.state_ = np.zeros(N_STATE)
        r = np.asarray(raw, dtype=float)
        return self.standardize_rows(r, np.zeros(r.shape[0], dtype=np.int64), self.state_[None])

    def standardize_rows(self, raw: np.ndarray, rows: np.ndarray, states: np.ndarray) -> np.ndarray:
        """:meth:`standardize` for many series at once: value ``i`` belongs to the series whose
        state is ``states[rows[i]]`` (one row of ``N_STATE`` each, zeros to start); each series'
        values are in time order, and its state moves on in place."""
        r = np.asarray(raw, dtype=float)
        fn = _standardize_robust if self.robust else _standardize
        p = np.array([self.alpha, self.warmup, self.min_std, self.clip], dtype=float)
        return fn(np.log1p(np.maximum(r, 0.0)) if self.compress else r, rows, states, p)

    def run(self, raw: np.ndarray) -> np.ndarray:
        """Scores in ``[0, 1)`` for a stretch of raw values, learning as it goes."""
        return score_from_tail(self.surprise(raw), self.scale)

    def surprise(self, raw: np.ndarray) -> np.ndarray:
        """``-log10 Q`` per value (0 during warm-up), learning as it goes."""
        return tail_surprise(self.standardize(raw))

    def surprise_rows(self, raw: np.ndarray, rows: np.ndarray, states: np.ndarray) -> np.ndarray:
        """:meth:`surprise` for many series at once (see :meth:`standardize_rows`)."""
        return tail_surprise(self.standardize_rows(raw, rows, states))


@nb.njit(cache=True)
def _standardize(
    raw: np.ndarray, rows: np.ndarray, states: np.ndarray, p: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    # st: count, mean, variance; p: alpha, warmup, min_std, clip
    alpha, warmup, min_std, clip = p[0], p[1], p[2], p[3]
    n = raw.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        r = raw[i]
        if np.isnan(r):
            continue
        st = states[rows[i]]
        if st[0] >= warmup and st[0] >= 2:
            sd = max(np.sqrt(st[2]), min_std)
            out[i] = (r - st[1]) / sd
            # learn from a winsorized value, so anomalies do not widen the distribution they are
            # judged against
            r = min(r, st[1] + clip * sd)
        # bias-corrected start: plain averages until 1/alpha values, then exponential forgetting
        a = max(alpha, 1.0 / (st[0] + 1.0))
        d = r - st[1]
        st[1] += a * d
        st[2] = (1.0 - a) * (st[2] + a * d * d)
        st[0] += 1.0
    return out


@nb.njit(cache=True)
def _standardize_robust(
    raw: np.ndarray, rows: np.ndarray, states: np.ndarray, p: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    # st: count, running median, running 84th percentile (stochastic-approximation quantiles);
    # p: alpha, warmup, min_std (clip unused)
    alpha, warmup, min_std = p[0], p[1], p[2]
    n = raw.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        r = raw[i]
        if np.isnan(r):
            continue
        st = states[rows[i]]
        spread = max(st[2] - st[1], min_std)
        if st[0] >= warmup and st[0] >= 2:
            out[i] = (r - st[1]) / spread
        if st[0] == 0:
            st[1] = r
            st[2] = r + min_std
        else:
            a = max(alpha, 1.0 / (st[0] + 1.0)) * 2.0 * spread
            st[1] += a * (0.5 - (1.0 if r < st[1] else 0.0))
            st[2] += a * (0.8413 - (1.0 if r < st[2] else 0.0))
            if st[2] < st[1]:
                st[2] = st[1]
        st[0] += 1.0
    return out
