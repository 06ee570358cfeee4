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
   (its tail probability against its own history), and the score is the largest.
4. :class:`~rushhour.detect.thresholds.AlertPolicy` decides: alert at ``score >= threshold``, at most
   one alert per ``holdoff`` buckets.

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
>>> bool(res.alert[3000]), int(res.alert.sum()) <= 3, float(res.score.max()) < 1.0
(True, True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from rushhour.detect.base import Direction, Severity, Verdict
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

    def raw(self, values: np.ndarray, base: ResidualOutput) -> np.ndarray:
        return np.abs(base.z)


@dataclass
class ShiftComponent:
    """``|EWMA(z)| / sqrt(alpha / (2 - alpha))``: a sustained deviation, in units of its null std."""

    alpha: float = 0.2
    name: str = "shift"
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
}


REFERENCE_SECONDS = 300.0


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
    holdoff: int = 120
    warmup: int = 150
    refractory: int = 120
    time_scaled: bool = False
    damp: float = 0.5
    timezone: str = "UTC"

    def validate(self) -> None:
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise UsageError(
                f"components must be a non-empty subset of {sorted(COMPONENTS)}, got "
                f"{list(self.components)}"
            )
        AlertPolicy(self.threshold, self.critical, self.holdoff, self.warmup)


@dataclass(frozen=True)
class Detections:
    """Per bucket: score in [0, 1), alert, severity, expected value, residual z, component scores."""

    score: np.ndarray
    alert: np.ndarray
    severity: np.ndarray
    expected: np.ndarray
    z: np.ndarray
    components: dict[str, np.ndarray]


class DefaultDetector:
    """The shipped ensemble. ``run`` for stretches of buckets; ``score_one``/``learn_one`` for streams."""

    def __init__(self, config: DetectorConfig | None = None, bucket_seconds: float | None = None):
        self.config = config or DetectorConfig()
        self.config.validate()
        self.bucket_seconds = bucket_seconds
        self.baseline_: SeasonalResidual | None = None
        self.components_: list[Component] = [COMPONENTS[c]() for c in self.config.components]
        self.likelihoods_: list[Likelihood] = []
        self.policy_ = AlertPolicy(
            self.config.threshold, self.config.critical, self.config.holdoff, self.config.warmup
        )
        self.history_ = np.full(self.config.refractory, np.nan)
        self._pending: tuple[datetime, float, Verdict] | None = None
        self._trial: DefaultDetector | None = None

    def _build(self, width: float) -> None:
        # memories are set for 5-minute buckets and kept constant in *time* for other widths
        k = width / REFERENCE_SECONDS if self.config.time_scaled else 1.0
        base = SeasonalResidual(bucket_seconds=width)
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
        scores: dict[str, np.ndarray] = {}
        for comp, lk in zip(self.components_, self.likelihoods_, strict=True):
            raw = comp.raw(x, base)
            if self.config.likelihood:
                scores[comp.name] = lk.run(raw)
            else:
                # without normalisation the raw signal is read as a Gaussian z directly
                from scipy.special import log_ndtr

                u = -log_ndtr(-raw) / np.log(10.0)
                u[: max(self.config.warmup - self.policy_.seen_, 0)] = 0.0
                scores[comp.name] = score_from_tail(u, lk.scale)
        score = np.max(np.vstack(list(scores.values())), axis=0)
        score = np.nan_to_num(score, nan=0.0)
        score, self.history_ = refractory(score, self.history_, self.config.damp)
        alert, sev = self.policy_.apply(score)
        return Detections(score, alert, sev, base.expected, base.z, scores)

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
            score=float(res.score[0]),
            anomalous=bool(res.alert[0]),
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
            self.history_ = trial.history_
        else:
            self.run(pd.DatetimeIndex([pd.Timestamp(utc(t))]), np.array([x], dtype=float))
        self._pending = None

    def snapshot(self) -> dict[str, Any]:
        """Learned state as plain data (JSON-safe)."""
        return {
            "config": self.config.__dict__ | {"components": list(self.config.components)},
            "bucket_seconds": self.baseline_.bucket_seconds if self.baseline_ else None,
            "baseline": self.baseline_.snapshot() if self.baseline_ else None,
            "components": [_plain(vars(c)) for c in self.components_],
            "likelihoods": [lk.snapshot() for lk in self.likelihoods_],
            "policy": {"seen": self.policy_.seen_, "since_alert": self.policy_.since_alert_},
        }


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in d.items()}
