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
   (its tail probability against its own history), bounded by how often comparable surprises
   recurred (:mod:`~rushhour.detect.novelty`) and whether recent days showed them at this time of
   day (:mod:`~rushhour.detect.recurrence`, read on the largest surprise of any component), and
   the score is the largest. For count series
   whose residuals look Gaussian, :class:`~rushhour.detect.calibrated.Calibrated` also reads ``|z|``'s
   own tail (no likelihood widening on traffic with frequent incidents); the larger of the two wins.
   For count series with a repeating day-class rhythm, :class:`~rushhour.detect.rhythm.Rhythm`
   judges each bucket against the weekday or weekend profile, which absorbs nothing (ramps and
   missing rush hours the baseline follows); where it finds a value normal for the time of day, the
   calibrated path does not score it.
4. A refractory step damps the buckets that merely continue an incident (one incident, one peak),
   and the new peaks of an incident that rises by less than a decade of surprise at a time; where
   the rhythm path judges, an incident followed by ``quiet`` calm buckets is over and forgotten.
5. :class:`~rushhour.detect.thresholds.AlertPolicy` decides twice: ``anomalous`` flags every bucket
   whose undamped score reaches ``threshold`` after the warm-up (how long an incident lasts: what the
   live pipeline stores and turns into one episode), ``alert`` pages on the damped score, at most once
   per ``holdoff`` buckets unless a new incident starts within it (``repage``; what ``rushhour
   evaluate`` scores as shipped).

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
>>> float(res.score[3000]) > 0.9, int(res.alert.sum()) <= 4, float(res.score.max()) < 1.0
(True, True, True)

The spike pages although a false page (a morning ramp, ``z`` 2.6) came 21 buckets before it, within
the holdoff: it is a residual excursion (``z`` 33) where that page was none (``repage``).

>>> bool(res.alert[3000]), int(res.alert[2900:3000].sum())
(True, 1)
>>> bool(res.anomalous[3000]), bool(np.all(res.anomalous[res.alert]))
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Protocol

import numba as nb
import numpy as np
import pandas as pd

from rushhour.detect.base import Direction, Severity, Verdict
from rushhour.detect.calibrated import Calibrated
from rushhour.detect.calibrated import initial_state as calibrated_initial
from rushhour.detect.discord import Discord
from rushhour.detect.holiday_calendar import HolidayCalendar
from rushhour.detect.likelihood import N_STATE as LIKELIHOOD_STATE
from rushhour.detect.likelihood import Likelihood, gaussian_surprise, score_from_tail
from rushhour.detect.novelty import Novelty
from rushhour.detect.recurrence import Recurrence
from rushhour.detect.rhythm import Rhythm, RhythmOutput
from rushhour.detect.seasonal_residual import (
    ResidualOutput,
    SeasonalResidual,
    count_scale,
    per_bucket,
    restore_arrays,
    snapshot_arrays,
)
from rushhour.detect.thresholds import AlertPolicy, Residual, refractory_rows, rise_initial
from rushhour.errors import UsageError
from rushhour.timeutil import utc, zone

#: stacked state arrays by name, a row per series
Arrays = dict[str, np.ndarray]


class Component(Protocol):
    """A raw anomaly signal (>= 0, larger = stranger) computed causally from a stretch of buckets.

    A component holds its configuration; the state of each series lives in the detector's stacked
    arrays (one row per series), laid out by :meth:`initial`."""

    name: str

    def initial(self) -> Arrays:
        """One series' state arrays before any bucket (empty for a stateless component)."""
        ...

    def raw(self, x: np.ndarray, base: ResidualOutput, rows: np.ndarray, st: Arrays) -> np.ndarray:
        """Raw signals of buckets ``x`` of many series: bucket ``i`` belongs to the series whose
        state is row ``rows[i]`` of each array in ``st`` (moved on in place); each series' buckets
        in time order."""
        ...


@dataclass
class ResidualComponent:
    """``|z|``: how surprising this one bucket is against the seasonal baseline."""

    name: str = "residual"
    #: derived from the baseline, whose first buckets are start-up noise (see ``run``)
    from_baseline: ClassVar[bool] = True

    def initial(self) -> Arrays:
        return {}

    def raw(self, x: np.ndarray, base: ResidualOutput, rows: np.ndarray, st: Arrays) -> np.ndarray:
        return np.abs(base.z)


@dataclass
class ShiftComponent:
    """``|EWMA(z)| / sqrt(alpha / (2 - alpha))``: a sustained deviation, in units of its null std."""

    alpha: float = 0.2
    name: str = "shift"
    from_baseline: ClassVar[bool] = True

    def initial(self) -> Arrays:
        return {"zi_": np.zeros(1)}

    def raw(self, x: np.ndarray, base: ResidualOutput, rows: np.ndarray, st: Arrays) -> np.ndarray:
        a = self.alpha
        ew = _ewma(np.asarray(base.z_slow, dtype=float), rows, st["zi_"], a)
        return np.asarray(np.abs(ew) / np.sqrt(a / (2.0 - a)))


@nb.njit(cache=True)
def _ewma(
    x: np.ndarray, rows: np.ndarray, zi: np.ndarray, a: float
) -> np.ndarray:  # pragma: no cover - compiled
    # scipy's lfilter([a], [1, -(1 - a)]) step by step (its transposed direct form, the same
    # arithmetic), with the filter state of each series in zi[row, 0]
    b0, b1, a1 = a, 0.0, -(1.0 - a)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        z = zi[rows[i]]
        y = z[0] + b0 * x[i]
        z[0] = x[i] * b1 - y * a1
        out[i] = y
    return out


@dataclass
class RangeComponent:
    """How far a value lies beyond the running minimum/maximum, in units of the range seen (×20).

    After Numenta's "spatial anomaly": a value no earlier bucket came near is suspicious whatever the
    rhythm says. Values inside the range give 0; a missing value stands in as the maximum so far
    (0 before any value).
    """

    name: str = "range"

    def initial(self) -> Arrays:
        return {"lo_": np.array(np.inf), "hi_": np.array(-np.inf)}

    def raw(self, x: np.ndarray, base: ResidualOutput, rows: np.ndarray, st: Arrays) -> np.ndarray:
        return _range(np.asarray(x, dtype=float), rows, st["lo_"], st["hi_"])


@nb.njit(cache=True)
def _range(
    x: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        r = rows[i]
        v = x[i]
        if np.isnan(v):
            v = hi[r] if np.isfinite(hi[r]) else 0.0
        span = hi[r] - lo[r]
        if np.isfinite(span) and span > 0:
            out[i] = 20.0 * (max(max(v - hi[r], lo[r] - v), 0.0) / span)
        hi[r] = max(hi[r], v)
        lo[r] = min(lo[r], v)
    return out


COMPONENTS: dict[str, Callable[[], Component]] = {
    "residual": ResidualComponent,
    "shift": ShiftComponent,
    "range": RangeComponent,
    "discord": Discord,
}


REFERENCE_SECONDS = 300.0
#: where the rhythm path judges a bucket and its residual against the day-class profile is within
#: this many σ, the value is normal for the time of day: the calibrated path does not score it
RHYTHM_NORMAL = 3.0
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
    from scipy.stats import chi2  # imported here: scipy is off the live pipeline's start

    k = stack.shape[0]
    stat = 2.0 * np.log(10.0) * stack.sum(axis=0)
    return np.asarray(-chi2.logsf(stat, 2 * k) / np.log(10.0))


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
    #: within the holdoff, a bucket at a ``critical`` score whose residual reaches this many σ still
    #: pages when it is a new incident: the last page was no residual excursion (``|z| < 3``), or this
    #: one goes the other way, beyond the last page's expectation by as many of its σ (not the
    #: recovery of the incident paged); inf: the holdoff holds every page
    repage: float = 6.0
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
    #: bound each component's surprise by how often comparable surprises were seen in the last
    #: ~2,000 buckets (:mod:`rushhour.detect.novelty`): recurring spikes stop scoring as new ones
    novelty: bool = True
    #: also judge each bucket against the day-class profile, which absorbs nothing
    #: (:mod:`rushhour.detect.rhythm`): ramps and missing rush hours the baseline follows
    rhythm: bool = True
    #: bound a surprise that recent days showed at the same time of day (±30 minutes) to
    #: ``Q = 1e-3`` (:mod:`rushhour.detect.recurrence`): a daily job's spike stops paging
    recurrence: bool = True
    #: public holidays (``holidays`` library country code, and subdivision): the rhythm path reads
    #: a holiday as a weekend day; None: no holidays (every Monday-Friday is a working day)
    holidays_country: str | None = None
    holidays_subdiv: str | None = None
    #: an incident that rises (:func:`~rushhour.detect.thresholds.refractory`): a new peak within
    #: ``rise_within`` buckets of the previous new peak is damped like a continuation unless its
    #: surprise exceeds that of the rise's last undamped peak by ``rise_decades`` (a tail ten
    #: times smaller at 1); ``rise_within = 0``: every new peak keeps its score
    rise_within: int = 10
    rise_decades: float = 1.0
    #: where the rhythm path judges (request traffic), an incident is over once ``quiet`` buckets
    #: in a row scored under ``quiet_level``: the refractory then forgets it, and the next incident
    #: is damped only if it fails to rise above those quiet buckets (the rhythm path's capped
    #: surprise would otherwise tie every incident of the last ``refractory`` buckets, and lose);
    #: 0: an incident is remembered for all of ``refractory``
    quiet: int = 30
    quiet_level: float = 0.25

    def validate(self) -> None:
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise UsageError(
                f"components must be a non-empty subset of {sorted(COMPONENTS)}, got "
                f"{list(self.components)}"
            )
        if self.combine not in COMBINERS:
            raise UsageError(f"combine must be one of {COMBINERS}, got {self.combine!r}")
        AlertPolicy(self.threshold, self.critical, self.holdoff, self.warmup, repage=self.repage)
        if self.quiet < 0 or not 0 <= self.quiet_level <= 1:
            raise UsageError(
                f"quiet must be >= 0 and quiet_level in [0, 1], got {self.quiet} and "
                f"{self.quiet_level}"
            )
        if self.rise_within < 0 or self.rise_decades < 0:
            raise UsageError(
                "rise_within and rise_decades must be >= 0, got "
                f"{self.rise_within} and {self.rise_decades}"
            )
        SeasonalResidual(
            bucket_seconds=60.0, outlier_weight=self.outlier_weight, level_vote=self.level_vote
        )
        HolidayCalendar(self.holidays_country, self.holidays_subdiv)


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


class DefaultFleet:
    """The default detector of many series at once: one configuration, one bucket width, and the
    state of every series stacked in arrays (a row per series), stepped by the same kernels.

    ``run`` takes buckets of any of its series (a row number each, each series' buckets in time
    order): a batch may hold several buckets of a series, or none. The result for a series does not
    depend on how its buckets are chunked into calls, nor on which other series share a call.
    :class:`DefaultDetector` is a view of one row (a fleet of one when built alone).
    """

    def __init__(self, config: DetectorConfig | None = None, bucket_seconds: float | None = None):
        self.config = config or DetectorConfig()
        self.config.validate()
        self.bucket_seconds = bucket_seconds or None
        self.components: list[Component] = [COMPONENTS[c]() for c in self.config.components]
        #: each component's state array names (its initial state is built once per fleet)
        self.component_keys = [tuple(c.initial()) for c in self.components]
        self.calibrated = Calibrated()
        self.novelty = Novelty()
        self.recurrence = Recurrence()
        self.holidays = HolidayCalendar(self.config.holidays_country, self.config.holidays_subdiv)
        self.policy = AlertPolicy(
            self.config.threshold,
            self.config.critical,
            self.config.holdoff,
            self.config.warmup,
            self.config.escalate,
            self.config.repage,
        )
        #: built at the first bucket (the width is then known)
        self.baseline: SeasonalResidual | None = None
        self.likelihoods: list[Likelihood] = []
        self.rhythm: Rhythm | None = None
        #: rows in use; the arrays below hold ``capacity`` rows (those beyond ``size`` unset)
        self.size = 0
        self.arrays: dict[str, np.ndarray] = {}
        #: one series' state before any bucket (known once the baseline is built)
        self.initial: dict[str, np.ndarray] = {}
        if self.bucket_seconds is not None:
            self._build(float(self.bucket_seconds))

    @property
    def capacity(self) -> int:
        return next(iter(self.arrays.values())).shape[0] if self.arrays else 0

    def _build(self, width: float) -> None:
        # memories are set for 5-minute buckets and kept constant in *time* for other widths
        k = width / REFERENCE_SECONDS if self.config.time_scaled else 1.0
        base = SeasonalResidual(
            bucket_seconds=width,
            outlier_weight=self.config.outlier_weight,
            level_vote=self.config.level_vote,
            count_scale=count_scale(width),
        )
        base.level_alpha = per_bucket(base.level_alpha, k)
        base.offset_alpha = per_bucket(base.offset_alpha, k)
        base.error_alpha = per_bucket(base.error_alpha, k)
        self.baseline = base
        self.rhythm = Rhythm(bucket_seconds=width) if self.config.rhythm else None
        self.likelihoods = [
            Likelihood(alpha=per_bucket(Likelihood.alpha, k), warmup=self.config.warmup)
            for _ in self.components
        ]
        self.initial = self._layout()
        self.arrays = {
            name: np.empty((self.size, *init.shape), dtype=init.dtype)
            for name, init in self.initial.items()
        }
        for name, init in self.initial.items():
            self.arrays[name][:] = init

    def _layout(self) -> dict[str, np.ndarray]:
        """One series' state before any bucket, by array name."""
        out = {}
        if self.baseline is not None:
            out = {f"base.{k}": v for k, v in self.baseline.initial().items()}
        for i, comp in enumerate(self.components):
            out |= {f"comp{i}.{k}": v for k, v in comp.initial().items()}
            out[f"likelihood{i}"] = np.zeros(LIKELIHOOD_STATE)
            out[f"novelty{i}"] = self.novelty.initial_state()
        out["recurrence"] = self.recurrence.initial_state()
        out["calibrated"] = calibrated_initial()
        if self.rhythm is not None:
            out |= {f"rhythm.{k}": v for k, v in self.rhythm.initial().items()}
        out["history"] = np.full(self.config.refractory, np.nan)
        out["rise"] = rise_initial()
        out["policy"] = self.policy.initial_state()
        return out

    def add(self, n: int = 1) -> np.ndarray:
        """``n`` new series (their row numbers), each starting from nothing."""
        rows = np.arange(self.size, self.size + n, dtype=np.int64)
        if self.arrays and self.size + n > self.capacity:
            # room for more at once (not yet written, so not yet resident memory)
            cap = max(self.size + n, 2 * self.capacity)
            for name, old in self.arrays.items():
                new = np.empty((cap, *old.shape[1:]), dtype=old.dtype)
                new[: self.size] = old[: self.size]
                self.arrays[name] = new
        self.size += n
        self.reset(slice(self.size - n, self.size))
        return rows

    def reset(self, rows: int | slice) -> None:
        """Start a series (or a slice of rows) afresh."""
        for name, init in self.initial.items():
            self.arrays[name][rows] = init

    def run(self, rows: np.ndarray, utc_ns: np.ndarray, values: np.ndarray) -> Detections:
        """Score then learn buckets: bucket ``i`` of series ``rows[i]`` starts at ``utc_ns[i]``
        (epoch nanoseconds, UTC); each series' buckets in time order. Results in the same order."""
        rows = np.asarray(rows, dtype=np.int64)
        x = np.asarray(values, dtype=float)
        if rows.size and (rows.min() < 0 or rows.max() >= self.size):
            raise UsageError(f"rows must lie in [0, {self.size}), got {rows.min()}..{rows.max()}")
        secs = local_seconds(utc_ns, self.config.timezone)
        if self.baseline is None:
            first = secs[rows == rows[0]] if rows.size else secs
            width = float(np.median(np.diff(first))) if len(first) > 1 else 60
            self._build(max(width, 1.0))
        assert self.baseline is not None
        a = self.arrays
        base = self.baseline.run_rows(
            secs,
            x,
            rows,
            a["base.state"],
            a["base.day"],
            a["base.day_n"],
            a["base.week"],
            a["base.week_n"],
        )
        # the baseline's first buckets (before any rhythm is learned) would teach the likelihood a
        # start-up noise it never sees again: signals derived from it are learned after the warm-up
        settling = _ordinals(rows, a["policy"][:, 0]) < self.config.warmup
        surprise: dict[str, np.ndarray] = {}
        seen_any: np.ndarray | None = None
        for i, (comp, lk) in enumerate(zip(self.components, self.likelihoods, strict=True)):
            state = {k: a[f"comp{i}.{k}"] for k in self.component_keys[i]}
            raw = comp.raw(x, base, rows, state)
            if getattr(comp, "from_baseline", False):
                raw[settling] = np.nan
            if self.config.likelihood:
                seen = lk.surprise_rows(raw, rows, a[f"likelihood{i}"])
                u = seen
                if self.config.novelty:
                    u = self.novelty.cap_rows(seen, rows, a[f"novelty{i}"])
                seen_any = seen if seen_any is None else np.fmax(seen_any, seen)
                surprise[comp.name] = u
            else:
                # without normalisation the raw signal is read as a Gaussian z directly
                u = gaussian_surprise(raw)
                u[settling] = 0.0
                surprise[comp.name] = u
        if self.config.recurrence and seen_any is not None:
            # the daily recurrence reads the largest surprise of any component: a daily job's
            # burst is one recurrence whichever component finds it most surprising on a given day
            daily = self.recurrence.cap_rows(secs, seen_any, rows, a["recurrence"])
            surprise = {k: np.where(daily < v, daily, v) for k, v in surprise.items()}
        scale = Likelihood.scale
        total = combine(list(surprise.values()), self.config.combine)
        rh = self._rhythm(secs, x, base, rows)
        if rh is not None:
            surprise["rhythm"] = rh.surprise
            total = np.maximum(total, rh.surprise)
        undamped = np.nan_to_num(score_from_tail(total, scale), nan=0.0)
        rise = (self.config.rise_within, self.config.rise_decades, scale)
        quiet = (self.config.quiet, self.config.quiet_level)
        calm_ok = np.zeros(len(x), dtype=bool) if rh is None else rh.open
        score = refractory_rows(
            undamped, rows, a["history"], self.config.damp, rise, a["rise"], quiet, calm_ok
        )
        if self.config.calibrated and self.config.likelihood:
            # where the rhythm judges a bucket, it replaces the calibrated path's return rule: a
            # value normal for the time of day is no incident whatever the baseline forecast, and
            # an abnormal one is no return to normal either
            judged = None if rh is None else rh.open & np.isfinite(rh.z)
            calibrated = self.calibrated.surprise_rows(x, base.z, rows, a["calibrated"], judged)
            if rh is not None and judged is not None:
                normal = judged & (np.abs(np.nan_to_num(rh.z)) < RHYTHM_NORMAL)
                calibrated = np.where(normal, 0.0, calibrated)
            surprise["calibrated"] = calibrated
            cal = score_from_tail(calibrated, scale)
            score, undamped = np.maximum(score, cal), np.maximum(undamped, cal)
        scores = {k: score_from_tail(v, scale) for k, v in surprise.items()}
        d = self.policy.decide_rows(
            score, rows, a["policy"], undamped, Residual(x, base.expected, base.z, base.sigma)
        )
        return Detections(
            score, d.alert, d.severity, base.expected, base.z, scores, d.anomalous, undamped, d.warm
        )

    def _rhythm(
        self, secs: np.ndarray, x: np.ndarray, base: ResidualOutput, rows: np.ndarray
    ) -> RhythmOutput | None:
        """The rhythm path's verdicts (None when it is off; it needs the likelihood stage's scale)."""
        if not (self.config.rhythm and self.config.likelihood) or self.rhythm is None:
            return None
        a = self.arrays
        holiday = self.holidays.mask(secs) if self.holidays.country else None
        return self.rhythm.run_rows(
            secs,
            x,
            base.expected,
            base.sigma,
            rows,
            a["rhythm.state"],
            a["rhythm.profile"],
            holiday,
            base.power,
        )

    def copy_row(self, row: int, source: DefaultFleet, source_row: int) -> None:
        """Make series ``row`` continue exactly where ``source``'s series ``source_row`` stands."""
        if source.baseline is None:
            self.reset(row)
            return
        if self.baseline is None:
            self._build(source.baseline.bucket_seconds)
        for name, arr in self.arrays.items():
            arr[row] = source.arrays[name][source_row]

    def snapshot(self, row: int) -> dict[str, Any]:
        """A series' config and learned state as plain, JSON-safe data (no pickle)."""
        state = self.arrays if self.arrays else {k: v[None] for k, v in self._layout().items()}
        r = row if self.arrays else 0
        base = self.baseline
        return {
            "config": _plain(vars(self.config) | {"components": list(self.config.components)}),
            "bucket_seconds": base.bucket_seconds if base else None,
            "baseline": None
            if base is None
            else snapshot_arrays(
                *(state[f"base.{k}"][r] for k in ("state", "day", "day_n", "week", "week_n"))
            ),
            "components": [
                _plain(
                    {k: v for k, v in vars(c).items() if not k.endswith("_")}
                    | {k: state[f"comp{i}.{k}"][r] for k in self.component_keys[i]}
                )
                for i, c in enumerate(self.components)
            ],
            "likelihoods": [
                {"state": state[f"likelihood{i}"][r].tolist()} for i in range(len(self.components))
            ],
            "novelty": [state[f"novelty{i}"][r].tolist() for i in range(len(self.components))],
            "daily_recurrence": state["recurrence"][r].tolist(),
            "calibrated": _plain({"state": state["calibrated"][r]}),
            "rhythm": None
            if "rhythm.state" not in state
            else _plain({"state": state["rhythm.state"][r], "profile": state["rhythm.profile"][r]}),
            "history": _plain({"h": state["history"][r]})["h"],
            "rise": _plain({"r": state["rise"][r]})["r"],
            "policy": _plain(
                {
                    "seen": int(state["policy"][r, 0]),
                    "since_alert": int(state["policy"][r, 1]),
                    "last_score": float(state["policy"][r, 2]),
                    "page_z": float(state["policy"][r, 3]),
                    "page_expected": float(state["policy"][r, 4]),
                    "page_sigma": float(state["policy"][r, 5]),
                }
            ),
        }

    def restore(self, row: int, state: dict[str, Any]) -> None:
        """Make series ``row`` continue exactly where the snapshotted one stopped."""
        taken = snapshot_config(state)
        if "holidays_country" not in state["config"]:
            # a snapshot from before the holiday calendar existed: it takes this one's
            taken = replace(
                taken,
                holidays_country=self.config.holidays_country,
                holidays_subdiv=self.config.holidays_subdiv,
            )
        if taken != self.config:
            raise UsageError(
                "the snapshot was taken with another detector configuration: "
                f"{taken} here {self.config}"
            )
        self.reset(row)
        if state["baseline"] is None:
            return
        width = float(state["bucket_seconds"])
        if self.baseline is None:
            self._build(width)
        assert self.baseline is not None
        if width != self.baseline.bucket_seconds:
            raise UsageError(
                f"the snapshot is of {width:g}-second buckets, this detector's are "
                f"{self.baseline.bucket_seconds:g} seconds"
            )
        a = self.arrays
        for k, v in restore_arrays(state["baseline"], self.baseline.shapes()).items():
            a[f"base.{k}"][row] = v
        for i, (_, saved) in enumerate(zip(self.components, state["components"], strict=True)):
            for k in self.component_keys[i]:
                if saved.get(k) is not None:
                    init = self.initial[f"comp{i}.{k}"]
                    value = np.array(_unplain(saved[k]), dtype=init.dtype)
                    a[f"comp{i}.{k}"][row] = value.reshape(init.shape)
        for i, saved in enumerate(state["likelihoods"]):
            if saved["state"] is not None:
                a[f"likelihood{i}"][row] = saved["state"]
        # a snapshot from before the novelty stage existed starts its histograms afresh
        # (one of the float64 layout before float32 storage is converted)
        for i, saved_hist in enumerate(state.get("novelty") or []):
            a[f"novelty{i}"][row] = self.novelty.restore_state(saved_hist)
        # the daily recurrence's phases: one state for the combined surprise; a snapshot from when
        # each component kept its own has them merged; one from before the stage starts afresh
        if state.get("daily_recurrence") is not None:
            a["recurrence"][row] = self.recurrence.restore_state(state["daily_recurrence"])
        elif state.get("recurrence"):
            a["recurrence"][row] = self.recurrence.merge_states(state["recurrence"])
        calibrated = _unplain(state.get("calibrated"))
        # a snapshot from before the calibrated path existed starts it afresh
        if calibrated is not None and calibrated["state"] is not None:
            a["calibrated"][row] = calibrated["state"]
        rhythm = _unplain(state.get("rhythm"))
        # a snapshot from before the rhythm path existed starts it afresh
        if rhythm is not None and "rhythm.state" in a:
            for k in ("state", "profile"):
                init = self.initial[f"rhythm.{k}"]
                saved = np.array(rhythm[k], dtype=init.dtype)
                if k == "state":  # a snapshot from before the share gate has fewer fields
                    saved = Rhythm.upgrade_state(saved)
                a[f"rhythm.{k}"][row] = saved.reshape(init.shape)
        a["history"][row] = np.array(_unplain(state["history"]), dtype=float)
        # a snapshot from before rise chains existed starts with none
        if state.get("rise") is not None:
            a["rise"][row] = np.array(_unplain(state["rise"]), dtype=float)
        policy = state["policy"]
        # a snapshot from before the re-page of a new incident has no residual of its last page:
        # 0, as for a page that was no residual excursion
        a["policy"][row] = [
            int(policy["seen"]),
            int(policy["since_alert"]),
            float(_unplain(policy["last_score"])),
            *(
                float(_unplain(policy.get(k, 0.0)))
                for k in ("page_z", "page_expected", "page_sigma")
            ),
        ]


def snapshot_config(state: dict[str, Any]) -> DetectorConfig:
    """The configuration a snapshot was taken with."""
    cfg = {k: _unplain(v) for k, v in state["config"].items()}
    cfg["components"] = tuple(cfg["components"])
    return DetectorConfig(**cfg)


def local_seconds(utc_ns: np.ndarray, timezone: str) -> np.ndarray:
    """Epoch nanoseconds (UTC) as local wall-clock epoch seconds in ``timezone``."""
    ns = np.asarray(utc_ns, dtype=np.int64)
    if timezone != "UTC":
        idx = pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")
        ns = np.asarray(idx.tz_convert(zone(timezone)).tz_localize(None).asi8, dtype=np.int64)
    return ns / 1e9


def utc_ns(index: pd.DatetimeIndex | Sequence[datetime]) -> np.ndarray:
    """Timestamps (naive ones taken as UTC) as epoch nanoseconds."""
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


@nb.njit(cache=True)
def _ordinals(rows: np.ndarray, seen: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    # per bucket, how many buckets its series had seen before it
    extra = np.zeros(seen.shape[0])
    out = np.empty(rows.shape[0])
    for i in range(rows.shape[0]):
        r = rows[i]
        out[i] = seen[r] + extra[r]
        extra[r] += 1.0
    return out


class DefaultDetector:
    """The shipped ensemble for one series: ``run`` for stretches of buckets; ``score_one``/
    ``learn_one`` for streams. A view of one row of a :class:`DefaultFleet` (its own fleet of one
    when built directly)."""

    def __init__(self, config: DetectorConfig | None = None, bucket_seconds: float | None = None):
        self.fleet = DefaultFleet(config, bucket_seconds)
        self.row = int(self.fleet.add(1)[0])
        self._pending: tuple[datetime, float, Verdict] | None = None
        self._trial: DefaultDetector | None = None

    @classmethod
    def of(cls, fleet: DefaultFleet, row: int) -> DefaultDetector:
        """The detector of series ``row`` of ``fleet`` (sharing its state)."""
        det = cls.__new__(cls)
        det.fleet, det.row = fleet, int(row)
        det._pending, det._trial = None, None
        return det

    @property
    def config(self) -> DetectorConfig:
        return self.fleet.config

    def run(self, index: pd.DatetimeIndex | Sequence[datetime], values: np.ndarray) -> Detections:
        """Score then learn each bucket in order; the result is identical however it is chunked."""
        ns = utc_ns(index)
        return self.fleet.run(np.full(ns.shape[0], self.row, dtype=np.int64), ns, values)

    def copy(self) -> DefaultDetector:
        """A detector of its own (a fleet of one) in this one's state."""
        det = DefaultDetector(self.config, self.fleet.bucket_seconds)
        det.fleet.copy_row(det.row, self.fleet, self.row)
        return det

    # -- the StreamingDetector protocol ----------------------------------------------------------
    def score_one(self, t: datetime, x: float) -> Verdict:
        """Score one bucket; the state moves on when ``learn_one`` is called with the same bucket."""
        self._pending, self._trial = None, None
        trial = self.copy()
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
            self.fleet.copy_row(self.row, trial.fleet, trial.row)
        else:
            self.run(pd.DatetimeIndex([pd.Timestamp(utc(t))]), np.array([x], dtype=float))
        self._pending = None

    def snapshot(self) -> dict[str, Any]:
        """Config and learned state as plain, JSON-safe data (no pickle); see :meth:`restore`."""
        return self.fleet.snapshot(self.row)

    @classmethod
    def restore(cls, state: dict[str, Any]) -> DefaultDetector:
        """A detector that continues exactly where the snapshotted one stopped."""
        det = cls(snapshot_config(state), bucket_seconds=state["bucket_seconds"])
        det.fleet.restore(det.row, state)
        return det


def _plain(value: Any) -> Any:
    """numpy arrays to lists; NaN and infinities to strings, so that the result is strict JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | np.generic) and value.dtype.kind in "biuf":
        if value.dtype.kind != "f":
            return value.tolist()
        odd = ~np.isfinite(value)
        if not odd.any():
            return value.tolist()
        out = np.asarray(value).astype(object)
        out[odd] = [str(v) for v in np.asarray(value)[odd].tolist()]
        return out.tolist()
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
