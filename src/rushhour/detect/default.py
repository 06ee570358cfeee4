"""The default detector for request-rate series: an ensemble of causal components.

Pipeline, strictly online (each bucket is scored with what was learned from earlier buckets, then
learned):

1. :class:`~rushhour.detect.seasonal_residual.SeasonalResidual` gives the expected value and the
   standardized residual ``z`` (best of level / daily / weekly forecasters, with level-shift offset).
2. Components turn that into raw anomaly signals (pluggable: ``components`` names them, and
   :data:`COMPONENTS` maps names to factories, so e.g. an RCF component can be registered later):

   * ``residual``: ``|z|``, a single surprising bucket;
   * ``shift``: ``|EWMA(z)|`` normalised to unit variance, a sustained small deviation (partial drop,
     missing rush hour) that no single bucket shows;
   * ``range``: how far a value lies beyond everything seen so far, in units of the range seen.

3. Each raw signal is normalised by its own :class:`~rushhour.detect.likelihood.Likelihood`
   (its tail probability against its own history), and the score is the largest. For count series
   whose residuals look Gaussian, :class:`~rushhour.detect.calibrated.Calibrated` also reads ``|z|``'s
   own tail (no likelihood widening on traffic with frequent incidents); the larger of the two wins.
4. A refractory step damps the buckets that merely continue an incident (one incident, one peak).
5. :class:`~rushhour.detect.thresholds.AlertPolicy` decides twice: ``anomalous`` flags every bucket
   whose undamped score reaches ``threshold`` after the warm-up (how long an incident lasts: what the
   live pipeline stores and turns into one episode), ``alert`` pages on the damped score, at most once
   per ``holdoff`` buckets (what ``rushhour evaluate`` scores as shipped).

**Meaning of the score**: ``s`` in ``[0, 1)`` stands for a tail probability ``Q = 10^(-5·s/(1-s))`` of
the most unusual component for this series: 0.5 means ``Q = 1e-5``, 0.75 means ``Q = 1e-15``.

>>> import numpy as np
>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> tr = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=2, freq="5min", seed=3,
...                       anomalies_per_day=0)
>>> x = tr.frame["value"].to_numpy(dtype=float); x[3000] *= 3
>>> det = DefaultDetector()
>>> res = det.run(tr.frame.index, x)
>>> float(res.score[3000]) > 0.9, int(res.alert.sum()) <= 3, float(res.score.max()) < 1.0
(True, True, True)
>>> bool(res.anomalous[3000]), bool(np.all(res.anomalous[res.alert]))
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import log_ndtr
from scipy.stats import chi2

from rushhour.detect.base import Direction, Severity, Verdict
from rushhour.detect.calibrated import Calibrated
from rushhour.detect.discord import Discord
from rushhour.detect.likelihood import Likelihood, score_from_tail
from rushhour.detect.seasonal_residual import ResidualOutput, SeasonalResidual
from rushhour.detect.thresholds import AlertPolicy, refractory
from rushhour.errors import UsageError
from rushhour.timeutil import utc, zone


class Component(Protocol):
    """A raw anomaly signal (>= 0, larger = stranger) computed causally from a stretch of buckets."""

    name: str

    def raw(self, values: np.ndarray, base: ResidualOutput) -> np.ndarray: ...


@dataclass
class ResidualComponent:
    """``|z|``: how surprising this one bucket is against the seasonal baseline."""

    name: str = "residual"
    #: derived from the baseline, whose first buckets are start-up noise (see ``run``)
    from_baseline: ClassVar[bool] = True

    def raw(self, values: np.ndarray, base: ResidualOutput) -> np.ndarray:
        return np.abs(base.z)


@dataclass
class ShiftComponent:
    """``|EWMA(z)| / sqrt(alpha / (2 - alpha))``: a sustained deviation, in units of its null std."""

    alpha: float = 0.2
    name: str = "shift"
    from_baseline: ClassVar[bool] = True
    zi_: np.ndarray = field(default_factory=lambda: np.zeros(1), repr=False)

    def raw(self, values: np.ndarray, base: ResidualOutput) -> np.ndarray:
        a = self.alpha
        ew, self.zi_ = lfilter([a], [1.0, -(1.0 - a)], base.z_slow, zi=self.zi_)
        return np.asarray(np.abs(ew) / np.sqrt(a / (2.0 - a)))


@dataclass
class RangeComponent:
    """How far a value lies beyond the running minimum/maximum, in units of the range seen (×20).

    After Numenta's "spatial anomaly": a value no earlier bucket came near is suspicious whatever the
    rhythm says. Values inside the range give 0.
    """

    name: str = "range"
    lo_: float = float("inf")
    hi_: float = float("-inf")

    def raw(self, values: np.ndarray, base: ResidualOutput) -> np.ndarray:
        v = np.where(np.isnan(values), self.hi_ if np.isfinite(self.hi_) else 0.0, values)
        hi = np.maximum.accumulate(np.r_[self.hi_, v])[:-1]
        lo = np.minimum.accumulate(np.r_[self.lo_, v])[:-1]
        span = hi - lo
        ok = np.isfinite(span) & (span > 0)
        safe = np.where(ok, span, 1.0)
        excess = np.where(ok, np.maximum(np.maximum(v - hi, lo - v), 0.0) / safe, 0.0)
        if v.size:
            self.hi_, self.lo_ = float(max(self.hi_, v.max())), float(min(self.lo_, v.min()))
        return np.asarray(20.0 * excess)


COMPONENTS: dict[str, Callable[[], Component]] = {
    "residual": ResidualComponent,
    "shift": ShiftComponent,
    "range": RangeComponent,
    "discord": Discord,
}


REFERENCE_SECONDS = 300.0
COMBINERS = ("max", "fisher")


def combine(surprises: list[np.ndarray], how: str) -> np.ndarray:
    """Join per-component surprises (``-log10 Q``) into one.

    ``max``: the most surprising component. ``fisher``: Fisher's method, ``-2 Σ ln Q_i`` read against
    a chi-square with ``2k`` degrees of freedom — several mildly surprising components add up, one
    extreme component is discounted by the number of components.

    >>> combine([np.array([5.0]), np.array([0.0])], "max").tolist()
    [5.0]
    >>> round(float(combine([np.array([5.0]), np.array([0.0])], "fisher")[0]), 2)
    3.9
    """
    stack = np.nan_to_num(np.vstack(surprises), nan=0.0)
    if how == "max" or len(surprises) == 1:
        return np.asarray(stack.max(axis=0))
    k = stack.shape[0]
    stat = 2.0 * np.log(10.0) * stack.sum(axis=0)
    return np.asarray(-chi2.logsf(stat, 2 * k) / np.log(10.0))


def _per_bucket(alpha: float, k: float) -> float:
    """The smoothing factor per bucket that forgets as fast in time as ``alpha`` per 5 minutes."""
    return float(1.0 - (1.0 - alpha) ** k)


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the default detector (few, and none per series)."""

    components: tuple[str, ...] = ("residual", "shift", "range")
    likelihood: bool = True
    threshold: float = 0.5
    critical: float = 0.75
    holdoff: int = 60
    warmup: int = 150
    refractory: int = 120
    time_scaled: bool = False
    escalate: float = float("inf")
    combine: str = "max"
    damp: float = 0.5
    timezone: str = "UTC"
    #: weight at which the baseline's noise scales and profiles learn residuals beyond 4σ
    #: (:attr:`SeasonalResidual.outlier_weight`; 1 = as if at the limit)
    outlier_weight: float = 0.35
    #: the level votes in the weekly forecaster's median while its error is within this factor of
    #: the weekly's (:attr:`SeasonalResidual.level_vote`; 0 = no median)
    level_vote: float = 2.0
    #: also read ``|z|``'s Gaussian tail directly while the series is count-like and its noise model
    #: calibrated (:mod:`rushhour.detect.calibrated`); the score is the larger of the two paths
    calibrated: bool = True

    def validate(self) -> None:
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise UsageError(
                f"components must be a non-empty subset of {sorted(COMPONENTS)}, got "
                f"{list(self.components)}"
            )
        if self.combine not in COMBINERS:
            raise UsageError(f"combine must be one of {COMBINERS}, got {self.combine!r}")
        AlertPolicy(self.threshold, self.critical, self.holdoff, self.warmup)
        SeasonalResidual(
            bucket_seconds=60.0, outlier_weight=self.outlier_weight, level_vote=self.level_vote
        )


@dataclass(frozen=True)
class Detections:
    """Per bucket: score in [0, 1), page, severity, expected value, residual z, component scores, flag
    and the score before refractory damping.

    ``alert`` is the page (one per incident, ``holdoff`` apart; read from ``score``), ``anomalous`` the
    flag (every bucket of the incident; read from ``undamped``), ``severity`` that of flagged buckets;
    ``warm`` is False during the warm-up (nothing is flagged or paged yet).
    """

    score: np.ndarray
    alert: np.ndarray
    severity: np.ndarray
    expected: np.ndarray
    z: np.ndarray
    components: dict[str, np.ndarray]
    anomalous: np.ndarray
    undamped: np.ndarray
    warm: np.ndarray


class DefaultDetector:
    """The shipped ensemble. ``run`` for stretches of buckets; ``score_one``/``learn_one`` for streams."""

    def __init__(self, config: DetectorConfig | None = None, bucket_seconds: float | None = None):
        self.config = config or DetectorConfig()
        self.config.validate()
        self.bucket_seconds = bucket_seconds
        self.baseline_: SeasonalResidual | None = None
        self.components_: list[Component] = [COMPONENTS[c]() for c in self.config.components]
        self.likelihoods_: list[Likelihood] = []
        self.calibrated_ = Calibrated()
        self.policy_ = AlertPolicy(
            self.config.threshold,
            self.config.critical,
            self.config.holdoff,
            self.config.warmup,
            self.config.escalate,
        )
        self.history_ = np.full(self.config.refractory, np.nan)
        self._pending: tuple[datetime, float, Verdict] | None = None
        self._trial: DefaultDetector | None = None

    def _build(self, width: float) -> None:
        # memories are set for 5-minute buckets and kept constant in *time* for other widths
        k = width / REFERENCE_SECONDS if self.config.time_scaled else 1.0
        base = SeasonalResidual(
            bucket_seconds=width,
            outlier_weight=self.config.outlier_weight,
            level_vote=self.config.level_vote,
        )
        base.level_alpha = _per_bucket(base.level_alpha, k)
        base.offset_alpha = _per_bucket(base.offset_alpha, k)
        base.error_alpha = _per_bucket(base.error_alpha, k)
        self.baseline_ = base
        self.likelihoods_ = [
            Likelihood(alpha=_per_bucket(Likelihood.alpha, k), warmup=self.config.warmup)
            for _ in self.components_
        ]

    def _seconds(self, index: pd.DatetimeIndex | Sequence[datetime]) -> np.ndarray:
        idx = pd.DatetimeIndex(index)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx
        local = idx.tz_convert(zone(self.config.timezone)).tz_localize(None)
        return np.asarray(local.asi8, dtype=np.int64) / 1e9

    def run(self, index: pd.DatetimeIndex | Sequence[datetime], values: np.ndarray) -> Detections:
        """Score then learn each bucket in order; the result is identical however it is chunked."""
        secs = self._seconds(index)
        x = np.asarray(values, dtype=float)
        if self.baseline_ is None:
            width = self.bucket_seconds or (
                float(np.median(np.diff(secs))) if len(secs) > 1 else 60
            )
            self._build(max(width, 1.0))
        assert self.baseline_ is not None
        base = self.baseline_.run(secs, x)
        surprise: dict[str, np.ndarray] = {}
        # the baseline's first buckets (before any rhythm is learned) would teach the likelihood a
        # start-up noise it never sees again: signals derived from it are learned after the warm-up
        settle = max(self.config.warmup - self.policy_.seen_, 0)
        for comp, lk in zip(self.components_, self.likelihoods_, strict=True):
            raw = comp.raw(x, base)
            if getattr(comp, "from_baseline", False):
                raw[:settle] = np.nan
            if self.config.likelihood:
                surprise[comp.name] = lk.surprise(raw)
            else:
                # without normalisation the raw signal is read as a Gaussian z directly
                u = -log_ndtr(-raw) / np.log(10.0)
                u[:settle] = 0.0
                surprise[comp.name] = u
        scale = Likelihood.scale
        total = combine(list(surprise.values()), self.config.combine)
        undamped = np.nan_to_num(score_from_tail(total, scale), nan=0.0)
        score, self.history_ = refractory(undamped, self.history_, self.config.damp)
        if self.config.calibrated and self.config.likelihood:
            calibrated = self.calibrated_.surprise(x, base.z)
            surprise["calibrated"] = calibrated
            cal = score_from_tail(calibrated, scale)
            score, undamped = np.maximum(score, cal), np.maximum(undamped, cal)
        scores = {k: score_from_tail(v, scale) for k, v in surprise.items()}
        d = self.policy_.decide(score, undamped)
        return Detections(
            score, d.alert, d.severity, base.expected, base.z, scores, d.anomalous, undamped, d.warm
        )

    # -- the StreamingDetector protocol ----------------------------------------------------------
    def score_one(self, t: datetime, x: float) -> Verdict:
        """Score one bucket; the state moves on when ``learn_one`` is called with the same bucket."""
        import copy

        self._pending, self._trial = None, None
        trial = copy.deepcopy(self)
        res = trial.run(pd.DatetimeIndex([pd.Timestamp(utc(t))]), np.array([x], dtype=float))
        exp = float(res.expected[0])
        direction: Direction = (
            "none" if np.isnan(exp) or x == exp else ("spike" if x > exp else "drop")
        )
        severity: Severity = "critical" if res.severity[0] == "critical" else "warning"
        verdict = Verdict(
            score=float(res.undamped[0]),
            anomalous=bool(res.anomalous[0]),
            expected=None if np.isnan(exp) else exp,
            deviation=None,
            direction=direction,
            severity=severity,
            explanation={k: float(v[0]) for k, v in res.components.items()}
            | {"z": float(res.z[0])},
        )
        self._pending = (t, x, verdict)
        self._trial = trial
        return verdict

    def learn_one(self, t: datetime, x: float) -> None:
        if self._pending is not None and self._pending[0] == t and self._pending[1] == x:
            trial = self._trial
            assert trial is not None
            self.baseline_, self.components_ = trial.baseline_, trial.components_
            self.likelihoods_, self.policy_ = trial.likelihoods_, trial.policy_
            self.calibrated_ = trial.calibrated_
            self.history_ = trial.history_
        else:
            self.run(pd.DatetimeIndex([pd.Timestamp(utc(t))]), np.array([x], dtype=float))
        self._pending = None

    def snapshot(self) -> dict[str, Any]:
        """Config and learned state as plain, JSON-safe data (no pickle); see :meth:`restore`."""
        return {
            "config": _plain(vars(self.config) | {"components": list(self.config.components)}),
            "bucket_seconds": self.baseline_.bucket_seconds if self.baseline_ else None,
            "baseline": self.baseline_.snapshot() if self.baseline_ else None,
            "components": [_plain(vars(c)) for c in self.components_],
            "likelihoods": [lk.snapshot() for lk in self.likelihoods_],
            "calibrated": _plain(self.calibrated_.snapshot()),
            "history": _plain({"h": self.history_})["h"],
            "policy": _plain(
                {
                    "seen": self.policy_.seen_,
                    "since_alert": self.policy_.since_alert_,
                    "last_score": self.policy_.last_score_,
                }
            ),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> DefaultDetector:
        """A detector that continues exactly where the snapshotted one stopped."""
        cfg = {k: _unplain(v) for k, v in state["config"].items()}
        cfg["components"] = tuple(cfg["components"])
        det = cls(DetectorConfig(**cfg), bucket_seconds=state["bucket_seconds"])
        if state["baseline"] is not None:
            det._build(float(state["bucket_seconds"]))
            assert det.baseline_ is not None
            det.baseline_.restore_state(state["baseline"])
            for lk, saved in zip(det.likelihoods_, state["likelihoods"], strict=True):
                lk.restore_state(saved)
        for comp, saved in zip(det.components_, state["components"], strict=True):
            for key, value in saved.items():
                current = getattr(comp, key)
                if isinstance(current, np.ndarray) or (current is None and isinstance(value, list)):
                    dtype = current.dtype if isinstance(current, np.ndarray) else float
                    setattr(comp, key, np.array(_unplain(value), dtype=dtype))
                else:
                    setattr(comp, key, _unplain(value))
        det.calibrated_.restore_state(_unplain(state.get("calibrated")))
        det.history_ = np.array(_unplain(state["history"]), dtype=float)
        policy = state["policy"]
        det.policy_.seen_ = int(policy["seen"])
        det.policy_.since_alert_ = int(policy["since_alert"])
        det.policy_.last_score_ = float(_unplain(policy["last_score"]))
        return det


def _plain(value: Any) -> Any:
    """numpy arrays to lists; NaN and infinities to strings, so that the result is strict JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return str(float(value))
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value
