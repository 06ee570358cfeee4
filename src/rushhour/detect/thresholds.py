"""Turning scores into decisions: thresholds, severity levels and alert hygiene.

* :func:`static_threshold` and :func:`learned_threshold` (``mean + k·std`` of training scores, over all
  of them or per group: local hour of day, or day of week) give a threshold;
* :class:`AlertPolicy` applies one causally, with two decisions per bucket:

  - the **flag** (``anomalous``): this bucket is anomalous, its (undamped) score reached the threshold
    after the warm-up. Every bucket of an incident is flagged, so a run of flags shows how long it
    lasted; the live pipeline stores flagged buckets as anomalies and its episode tracker turns a run
    of them into one notification;
  - the **page** (``alert``): a flagged bucket whose (refractory-damped) score reaches the threshold
    and that is not within ``holdoff`` buckets of the previous page (one page per incident, not one per
    minute). This is the decision ``rushhour evaluate`` scores as shipped.

  Severity is ``critical`` from ``critical`` upwards, ``warning`` below, for every flagged bucket.

  Within the holdoff a bucket still pages when it is a *new* incident (``repage``, in σ of the
  baseline's residual ``z``; off by default here, on in the default detector): its score reaches
  ``critical``, ``|z| >= repage``, and either the last page was no residual excursion
  (``|z| < REPAGE_QUIET`` there: a rhythm or calibrated-path page) or this one goes the other way
  *beyond* the last page's expectation by ``repage`` of that page's σ — not the recovery of the
  incident paged, which returns to that expectation.

>>> import numpy as np
>>> policy = AlertPolicy(threshold=0.5, critical=0.8, holdoff=3, warmup=1)
>>> d = policy.decide(np.array([0.9, 0.6, 0.6, 0.1, 0.1, 0.6, 0.85]))
>>> d.anomalous.astype(int).tolist(), d.alert.astype(int).tolist(), d.severity.tolist()
([0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 0, 0, 1, 0], ['', 'warning', 'warning', '', '', 'warning', 'critical'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numba as nb
import numpy as np

from rushhour.detect.likelihood import surprise_from_score
from rushhour.errors import UsageError

#: a page whose residual was within this many σ was no excursion of the baseline's residual (the
#: rhythm or the calibrated path paged): a later residual excursion of ``repage`` σ is a new incident
REPAGE_QUIET = 3.0


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
    #: within the holdoff, page a new incident anyway (see the module doc; inf: never)
    repage: float = float("inf")
    seen_: int = field(default=0, repr=False)
    last_score_: float = field(default=0.0, repr=False)
    since_alert_: int = field(default=1 << 30, repr=False)
    #: the last page's residual ``z``, expected value and σ (what a new incident is compared with)
    page_: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0), repr=False)

    def __post_init__(self) -> None:
        static_threshold(self.threshold)
        if not self.threshold <= self.critical <= 1.0:
            raise UsageError(
                f"critical must be in [threshold, 1] = [{self.threshold}, 1], got {self.critical}"
            )
        if self.holdoff < 0 or self.warmup < 0:
            raise UsageError(f"holdoff and warmup must be >= 0, got {self.holdoff}, {self.warmup}")
        if not self.repage > 0:
            raise UsageError(f"repage must be > 0 (inf: off), got {self.repage}")

    def decide(
        self,
        scores: np.ndarray,
        flag_scores: np.ndarray | None = None,
        residual: Residual | None = None,
    ) -> Decisions:
        """Flags, pages and severities of the next buckets, in order.

        ``scores`` are what pages read (damped after an incident's peak, see :func:`refractory`);
        ``flag_scores`` (default: ``scores``) what flags and severities read: a page is always flagged.
        ``residual`` (the baseline's per bucket) lets a new incident page within the holdoff.
        """
        st = np.array([[self.seen_, self.since_alert_, self.last_score_, *self.page_]], dtype=float)
        s = np.asarray(scores, dtype=float)
        out = self.decide_rows(s, np.zeros(s.shape[0], dtype=np.int64), st, flag_scores, residual)
        self.seen_, self.since_alert_, self.last_score_ = (
            int(st[0, 0]),
            int(st[0, 1]),
            float(st[0, 2]),
        )
        self.page_ = (float(st[0, 3]), float(st[0, 4]), float(st[0, 5]))
        return out

    def apply(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pages and their severities (``""`` where no page) for the next scores, in order."""
        d = self.decide(scores)
        return d.alert, np.where(d.alert, d.severity, "").astype(str)

    def initial_state(self) -> np.ndarray:
        """The state of one series for :meth:`decide_rows`: buckets seen, since the last alert, the
        last alert's score, and its residual ``z``, expected value and σ."""
        return np.array([0.0, float(1 << 30), 0.0, 0.0, 0.0, 0.0])

    def decide_rows(
        self,
        scores: np.ndarray,
        rows: np.ndarray,
        states: np.ndarray,
        flag_scores: np.ndarray | None = None,
        residual: Residual | None = None,
    ) -> Decisions:
        """:meth:`decide` for many series at once: score ``i`` belongs to the series whose state is
        ``states[rows[i]]`` (rows of :meth:`initial_state`, moved on in place); each series' scores
        in time order."""
        s = np.asarray(scores, dtype=float)
        f = s if flag_scores is None else np.maximum(np.asarray(flag_scores, dtype=float), s)
        if residual is None:
            nan = np.full(s.shape[0], np.nan)
            residual = Residual(nan, nan, nan, nan)
        x, expected, z, sigma = (np.asarray(v, dtype=float) for v in residual)
        alerts, warm = _apply(
            s,
            rows,
            states,
            self.threshold,
            self.holdoff,
            self.warmup,
            self.escalate,
            x,
            expected,
            z,
            sigma,
            self.critical,
            self.repage,
            REPAGE_QUIET,
        )
        flags = warm & (f >= self.threshold)
        sev = np.where(flags, np.where(f >= self.critical, "critical", "warning"), "")
        return Decisions(flags, alerts, sev.astype(str), warm)


class Residual(NamedTuple):
    """The baseline's view of each bucket: value, expected value, standardized residual ``z`` and
    the σ it was standardized with (NaN where unknown)."""

    x: np.ndarray
    expected: np.ndarray
    z: np.ndarray
    sigma: np.ndarray


class Decisions(NamedTuple):
    """Per bucket: the flag (anomalous), the page (alert), the severity of flagged buckets, and
    whether the warm-up was over (before it, nothing is flagged or paged)."""

    anomalous: np.ndarray
    alert: np.ndarray
    severity: np.ndarray
    warm: np.ndarray


@nb.njit(cache=True)
def _apply(
    s: np.ndarray,
    rows: np.ndarray,
    states: np.ndarray,
    thr: float,
    holdoff: int,
    warmup: int,
    escalate: float,
    x: np.ndarray,
    expected: np.ndarray,
    z: np.ndarray,
    sigma: np.ndarray,
    critical: float,
    repage: float,
    quiet: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    # a state row: buckets seen, buckets since the last alert, score of the last alert, and the
    # last alert's residual z, expected value and sigma
    out = np.zeros(s.shape[0], dtype=np.bool_)
    warm = np.zeros(s.shape[0], dtype=np.bool_)
    for i in range(s.shape[0]):
        st = states[rows[i]]
        st[1] += 1
        free = st[1] > holdoff or s[i] >= st[2] + escalate
        zi = z[i] if np.isfinite(z[i]) else 0.0
        if not free and s[i] >= critical and abs(zi) >= repage:
            # a new incident: after a page that was no residual excursion, or the other way and
            # beyond the paged bucket's expectation (not the return from the incident paged)
            zp = st[3]
            if abs(zp) < quiet:
                free = True
            elif (zi > 0) != (zp > 0):
                away = (x[i] - st[4]) if zi > 0 else (st[4] - x[i])
                free = away >= repage * st[5]
        warm[i] = st[0] >= warmup
        if warm[i] and s[i] >= thr and free:
            out[i] = True
            st[1] = 0
            st[2] = s[i]
            ok = np.isfinite(z[i]) and np.isfinite(expected[i]) and np.isfinite(sigma[i])
            st[3] = z[i] if ok else 0.0
            st[4] = expected[i] if ok else 0.0
            st[5] = sigma[i] if ok else 0.0
        st[0] += 1
    return out, warm


#: a series' rise-chain state (:func:`refractory_rows`): buckets since its last new peak, and the
#: score of the chain's last undamped peak
RISE_STATE = 2


def rise_initial() -> np.ndarray:
    """One series' rise-chain state before any bucket: no peak yet."""
    return np.array([np.inf, 0.0])


def refractory(
    scores: np.ndarray,
    history: np.ndarray,
    damp: float,
    rise: tuple[int, float, float] | None = None,
    chain: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Damp each score that does not exceed the largest of the previous ``len(history)`` scores.

    Threshold-free "one incident, one peak": the first bucket of an incident keeps its score, the
    buckets that merely continue it are multiplied by ``damp``. ``history`` holds the previous raw
    scores (oldest first, NaN where unknown) and is returned updated, so chunks join up exactly.

    >>> out, hist = refractory(np.array([0.2, 0.9, 0.8, 0.95]), np.full(2, np.nan), 0.5)
    >>> out.tolist(), hist.tolist()
    ([0.2, 0.9, 0.4, 0.95], [0.8, 0.95])

    ``rise = (within, decades, scale)`` also damps an incident that *rises*: a new peak within
    ``within`` buckets of the previous new peak continues the same incident, and keeps its score
    only if its surprise (``u = scale·s/(1-s)``, the inverse of the score's scale) exceeds that of
    the chain's last undamped peak by ``decades`` (``chain``, :func:`rise_initial`, is moved on
    in place). A score creeping up bucket by bucket gets one peak per ``decades``, not one per
    bucket:

    >>> s = np.array([0.2, 0.52, 0.53, 0.54, 0.55, 0.6])
    >>> refractory(s, np.full(3, np.nan), 0.5, (10, 1.0, 5.0))[0].tolist()
    [0.2, 0.52, 0.265, 0.27, 0.275, 0.6]
    """
    s = np.asarray(scores, dtype=float)
    h = np.array(history, dtype=float)
    if h.size == 0:
        return s.copy(), h
    c = rise_initial() if chain is None else chain
    out = refractory_rows(s, np.zeros(s.shape[0], dtype=np.int64), h[None], damp, rise, c[None])
    if chain is not None:
        chain[:] = c
    return out, h


def refractory_rows(
    scores: np.ndarray,
    rows: np.ndarray,
    histories: np.ndarray,
    damp: float,
    rise: tuple[int, float, float] | None = None,
    chains: np.ndarray | None = None,
    quiet: tuple[int, float] = (0, 0.0),
    calm_ok: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`refractory` for many series at once: score ``i`` belongs to the series whose history
    is ``histories[rows[i]]`` (updated in place, as is ``chains[rows[i]]`` with ``rise``); each
    series' scores in time order.

    ``quiet = (length, level)``: where ``calm_ok`` (per score; default everywhere) holds, once the
    last ``length`` scores all lie under ``level`` the incident before them is over: the history
    older than them is forgotten, so the next incident need only rise above the calm.

    >>> s = np.array([0.9, 0.1, 0.1, 0.6])
    >>> h = np.full(4, np.nan)
    >>> refractory_rows(s, np.zeros(4, dtype=np.int64), h[None].copy(), 0.5).tolist()
    [0.9, 0.05, 0.05, 0.3]
    >>> refractory_rows(s, np.zeros(4, dtype=np.int64), h[None], 0.5, quiet=(2, 0.25)).tolist()
    [0.9, 0.05, 0.05, 0.6]
    """
    s = np.asarray(scores, dtype=float)
    if histories.shape[1] == 0:
        return s.copy()
    ok = np.ones(s.shape[0], dtype=np.bool_) if calm_ok is None else np.asarray(calm_ok, bool)
    if rise is None or chains is None or rise[0] <= 0:
        # no rise chains: a state nobody reads
        rise, chains = (0, 0.0, 1.0), np.zeros((histories.shape[0], RISE_STATE))
    within, decades, scale = rise
    return _refractory(
        s,
        rows,
        histories,
        damp,
        chains,
        int(within),
        float(decades),
        float(scale),
        int(quiet[0]),
        float(quiet[1]),
        ok,
    )


@nb.njit(cache=True)
def _refractory(
    s: np.ndarray,
    rows: np.ndarray,
    histories: np.ndarray,
    damp: float,
    chains: np.ndarray,
    within: int,
    decades: float,
    scale: float,
    quiet_len: int,
    quiet_level: float,
    calm_ok: np.ndarray,
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
        if s[i] > m:
            out[i] = s[i]
            if within > 0:
                c = chains[rows[i]]
                if c[0] <= within:
                    # a new peak right after another: the same incident rising, unless it is
                    # ``decades`` more surprising than the chain's last undamped peak
                    if (
                        surprise_from_score(s[i], scale)
                        <= surprise_from_score(c[1], scale) + decades
                    ):
                        out[i] = s[i] * damp
                    else:
                        c[1] = s[i]
                else:
                    c[1] = s[i]
                c[0] = 0.0
        else:
            out[i] = s[i] * damp
        if within > 0:
            chains[rows[i]][0] += 1.0
        for k in range(hn - 1):
            h[k] = h[k + 1]
        h[hn - 1] = s[i]
        if quiet_len > 0 and quiet_len < hn and calm_ok[i]:
            # the last ``quiet_len`` scores were all quiet: the incident before them is over, and
            # the next one is judged against those quiet scores only
            calm = True
            for k in range(hn - quiet_len, hn):
                if not h[k] < quiet_level:
                    calm = False
                    break
            if calm:
                for k in range(hn - quiet_len):
                    h[k] = np.nan
    return out
