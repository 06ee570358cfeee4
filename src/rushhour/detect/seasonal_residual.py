"""Online seasonal baseline: the expected value of each bucket and the standardized residual.

Three forecasters run side by side, each learning as it goes and each scored on its own recent error:

* ``level``: an exponentially weighted moving average (EWMA) of the value;
* ``daily``: a profile per time-of-day slot (local time), updated once per visit, plus an offset;
* ``weekly``: the same per time-of-week slot; once the daily profile has a value too, its forecast is
  the median of the three (level, daily, weekly), so one profile's mistake is outvoted (the level
  votes only while its error is within ``level_vote`` times the weekly's, or while the bucket's
  weekly slot is *young*, fewer than ``FIRST_VISITS`` visits: a slot that has seen one week holds
  whatever happened then, and an incident it learned would otherwise be forecast a week later).

For count series in buckets of 1 to 5 minutes, the level forecaster reads a *quick level* (memory
constant in time) where that forecast better, and the errors' memory is constant in time too
(:func:`count_scale`). The profile forecasters add an EWMA *offset* of their recent residuals, so a permanent level shift is
absorbed within a few ``1/offset_alpha`` buckets and stops alerting. The forecaster with the lowest
recent mean absolute error (MAE) gives the expected value: a series without a rhythm falls back to the
level, one with a weekly rhythm earns the weekly profile once it has seen a week. The residual is
standardized by that forecaster's MAE (``z = r / (1.25·MAE)``, a σ for Gaussian noise). Learning uses
residuals winsorized at ``clip`` σ, so anomalies barely move the baseline; beyond that, the noise
scales and the profiles learn such outliers only at ``outlier_weight`` (frequent incidents must not
widen the noise they are judged against), unless outliers are frequent (``outlier_rate``: then the
model is wrong, as at start-up). A profile slot learns once per visit (1-minute buckets share a
5-minute slot and do not chase each other within it) and averages its first three visits plainly;
buckets narrower than a slot read the profile between neighbouring slots (linear interpolation at
the bucket's centre), so a steep rush hour is not forecast as a staircase. Profile values are
stored as float32 (most of a series' state; the kernels compute in float64).

Everything is strictly causal: a bucket is scored with the state learned from earlier buckets only,
then learned.

>>> import numpy as np
>>> sr = SeasonalResidual(bucket_seconds=3600)
>>> t = np.arange(24 * 21) * 3600.0
>>> x = 100 + 50 * np.sin(2 * np.pi * t / 86400)
>>> x[-5] += 400
>>> out = sr.run(t, x)
>>> int(np.argmax(np.abs(out.z))) == len(x) - 5, out.forecaster[-1] != "level"
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np

from rushhour.errors import UsageError

FORECASTERS = ("level", "daily", "weekly")
DAY = 86400.0
WEEK = 7 * DAY


@dataclass(frozen=True)
class ResidualOutput:
    """Per bucket: expected value, standardized residual and the forecaster that gave it."""

    expected: np.ndarray
    z: np.ndarray
    chosen: np.ndarray
    #: the residual against a slowly adapting baseline (offset memory ``1/slow_alpha`` buckets)
    z_slow: np.ndarray
    #: the noise scale ``z`` was standardized with (NaN before the noise model has two residuals)
    sigma: np.ndarray
    #: how the noise scale grows with the level: ``sigma ∝ |expected| ** power`` (0, 0.5 or 1)
    power: np.ndarray

    @property
    def forecaster(self) -> list[str]:
        return [FORECASTERS[int(c)] for c in self.chosen]


@dataclass
class SeasonalResidual:
    """Config and state of the online seasonal baseline (state fields end in ``_``)."""

    bucket_seconds: float
    level_alpha: float = 0.1
    offset_alpha: float = 0.05
    slow_alpha: float = 0.005
    profile_alpha: float = 0.25
    error_alpha: float = 0.01
    clip: float = 4.0
    #: weight of a residual beyond ``clip`` σ in the noise-scale estimates (1 = learned as if at
    #: the limit, 0 = ignored): frequent incidents must not widen the noise they are judged against
    outlier_weight: float = 0.35
    #: ... unless outliers are this frequent: then the model is wrong, not the data (start-up, a new
    #: rhythm), and the scale learns them in full
    outlier_rate: float = 0.2
    #: the level votes in the weekly forecaster's median only while its error is within this factor
    #: of the weekly's (with coarse buckets the level lags the rhythm and would be a poor voter)
    level_vote: float = 2.0
    #: profiles never use slots narrower than this (5 min): 1-minute buckets share a slot
    min_slot_seconds: float = 300.0
    #: for a count series (every value so far a non-negative integer), the forecasters' error memory
    #: (``error_alpha``) and a quick level (``level_alpha``) count in time: ``count_scale`` buckets
    #: of 1 minute per bucket (see :func:`count_scale`; 1 = as for any series, no quick level)
    count_scale: float = 1.0
    state_: np.ndarray | None = field(default=None, repr=False)
    day_: np.ndarray | None = field(default=None, repr=False)
    day_n_: np.ndarray | None = field(default=None, repr=False)
    week_: np.ndarray | None = field(default=None, repr=False)
    week_n_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("level_alpha", "offset_alpha", "slow_alpha", "profile_alpha", "error_alpha"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise UsageError(f"{name} must be in (0, 1], got {v}")
        if self.profile_alpha < 1.0 / (VISITS_MAX + 1):
            # a slot's visits are counted up to VISITS_MAX: they only matter while the plain
            # average's weight 1 / (visits + 1) is above profile_alpha
            raise UsageError(
                f"profile_alpha must be at least 1/{VISITS_MAX + 1}, got {self.profile_alpha}"
            )
        if not 0 <= self.outlier_weight <= 1:
            raise UsageError(f"outlier_weight must be in [0, 1], got {self.outlier_weight}")
        if self.level_vote < 0:
            raise UsageError(f"level_vote must be >= 0, got {self.level_vote}")
        if self.clip <= 0:
            raise UsageError(f"clip must be > 0, got {self.clip}")
        if self.bucket_seconds <= 0:
            raise UsageError(f"bucket_seconds must be > 0, got {self.bucket_seconds}")

    @property
    def slot_seconds(self) -> float:
        return max(self.bucket_seconds, self.min_slot_seconds)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The state arrays of one series: scalars, daily and weekly profile (values, and the
        visits of each slot in ``day_n`` and ``week_n``)."""
        day = (int(np.ceil(DAY / self.slot_seconds)),)
        week = (int(np.ceil(WEEK / self.slot_seconds)),)
        return {"state": (N_STATE,), "day": day, "day_n": day, "week": week, "week_n": week}

    def initial(self) -> dict[str, np.ndarray]:
        """The state of a series that has seen nothing yet (zeros, profiles unknown)."""
        shapes = self.shapes()
        return {
            "state": np.zeros(shapes["state"]),
            "day": np.full(shapes["day"], np.nan, dtype=PROFILE),
            "day_n": np.zeros(shapes["day_n"], dtype=VISITS),
            "week": np.full(shapes["week"], np.nan, dtype=PROFILE),
            "week_n": np.zeros(shapes["week_n"], dtype=VISITS),
        }

    def _init(self) -> None:
        init = self.initial()
        self.state_, self.day_, self.week_ = init["state"], init["day"], init["week"]
        self.day_n_, self.week_n_ = init["day_n"], init["week_n"]

    def run(self, seconds: np.ndarray, values: np.ndarray) -> ResidualOutput:
        """Score then learn each bucket in order. ``seconds``: local wall-clock epoch seconds."""
        if self.state_ is None:
            self._init()
        assert self.state_ is not None and self.day_ is not None and self.week_ is not None
        assert self.day_n_ is not None and self.week_n_ is not None
        x = np.asarray(values, dtype=float)
        rows = np.zeros(x.shape[0], dtype=np.int64)
        return self.run_rows(
            seconds,
            x,
            rows,
            self.state_[None],
            self.day_[None],
            self.day_n_[None],
            self.week_[None],
            self.week_n_[None],
        )

    def run_rows(
        self,
        seconds: np.ndarray,
        values: np.ndarray,
        rows: np.ndarray,
        state: np.ndarray,
        day: np.ndarray,
        day_n: np.ndarray,
        week: np.ndarray,
        week_n: np.ndarray,
    ) -> ResidualOutput:
        """:meth:`run` for many series at once: bucket ``i`` belongs to the series whose state is
        row ``rows[i]`` of ``state``, ``day``, ``day_n``, ``week`` and ``week_n`` (stacked
        :meth:`initial` states, moved on in place); each series' buckets in time order."""
        slot = self.slot_seconds
        secs = np.asarray(seconds, dtype=float)
        day_slot = (np.mod(secs, DAY) // slot).astype(np.int64)
        week_slot = (np.mod(secs + 3 * DAY, WEEK) // slot).astype(np.int64)  # epoch was a Thursday
        # where each bucket's centre lies from its slot's centre, in slots (0 when a bucket fills
        # its slot): the profile is read between neighbouring slots
        width = min(self.bucket_seconds, slot)
        phase = (np.mod(secs, slot) + width / 2) / slot - 0.5
        params = np.array(
            [
                self.level_alpha,
                self.offset_alpha,
                self.profile_alpha,
                self.error_alpha,
                self.clip,
                self.slow_alpha,
                self.outlier_weight,
                self.outlier_rate,
                self.level_vote,
                per_bucket(self.error_alpha, self.count_scale),
                per_bucket(self.level_alpha, self.count_scale),
            ]
        )
        exp, z, chosen, z_slow, sigma, power = _kernel(
            np.asarray(values, dtype=float),
            day_slot,
            week_slot,
            phase,
            rows,
            state,
            day,
            day_n,
            week,
            week_n,
            params,
        )
        return ResidualOutput(exp, z, chosen, z_slow, sigma, power)


def per_bucket(alpha: float, k: float) -> float:
    """The smoothing factor per bucket that forgets as fast in time as ``alpha`` per ``1/k`` of a
    bucket (``k`` buckets ``k`` times narrower).

    >>> round(per_bucket(0.1, 1.0), 12), round(per_bucket(0.1, 5.0), 4)
    (0.1, 0.4095)
    """
    return float(1.0 - (1.0 - alpha) ** k)


def count_scale(bucket_seconds: float) -> float:
    """How many 1-minute buckets one bucket of a count series spans for the baseline's memories.

    Request counts carry their rhythm in time. The level (memory ``1/level_alpha`` = 10 buckets)
    follows a morning ramp within 10 minutes of 1-minute buckets but lags it by most of an hour in
    5-minute buckets, and the forecasters' errors (memory 100 buckets: 100 minutes, or 8 hours)
    keep that misfit into the quiet evening: the noise scale is then several times the counts'
    noise and an outage scores a few σ. Between 1 and 5 minutes a count series therefore keeps the
    error memory constant in time and runs a *quick level* beside the level (memory constant in
    time; the level forecaster reads whichever of the two had the smaller mean absolute error over
    the last 100 buckets). At 1 minute and below, and beyond 5 minutes, memories stay per bucket.

    >>> count_scale(60.0), count_scale(300.0), count_scale(3600.0)
    (1.0, 5.0, 1.0)
    """
    return bucket_seconds / 60.0 if 60.0 < bucket_seconds <= 300.0 else 1.0


def _listed(a: np.ndarray | None) -> list[Any] | None:
    """An array as a flat list, NaN as None (strict JSON)."""
    if a is None:
        return None
    flat = a.ravel()
    gaps = np.isnan(flat) if flat.dtype.kind == "f" else None
    if gaps is None or not gaps.any():
        return flat.tolist()
    out = flat.astype(object)
    out[gaps] = None
    return out.tolist()


def snapshot_arrays(
    state: np.ndarray | None,
    day: np.ndarray | None,
    day_n: np.ndarray | None,
    week: np.ndarray | None,
    week_n: np.ndarray | None,
) -> dict[str, Any]:
    """One series' baseline state as plain, JSON-safe data. A profile is its values, then its
    visits (unknown, ``None``, for a slot without a value)."""
    return {"state": _listed(state), "day": _profile(day, day_n), "week": _profile(week, week_n)}


def _profile(values: np.ndarray | None, visits: np.ndarray | None) -> list[Any] | None:
    if values is None or visits is None:
        return None
    counts = np.where(np.isnan(values), np.nan, visits.astype(float))
    return _listed(np.concatenate([values, counts]))


def restore_arrays(
    data: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The arrays of :func:`snapshot_arrays` (a ``None`` state: one that has seen nothing yet)."""

    def arr(v: Any) -> np.ndarray:
        return np.array([np.nan if e is None else e for e in v], dtype=float)

    state = np.zeros(shapes["state"])
    if data["state"] is not None:
        saved = arr(data["state"])
        # snapshots from before a state field was added continue with it at zero
        state[: saved.size] = saved[: state.size]
    out = {"state": state}
    for name in ("day", "week"):
        values, visits = np.reshape(arr(data[name]), (2, *shapes[name]))
        # snapshots from before float32 profiles hold float64 values: stored rounded
        out[name] = values.astype(PROFILE)
        # snapshots count visits beyond VISITS_MAX too: the kernels read no more
        out[f"{name}_n"] = np.minimum(np.nan_to_num(visits, nan=0.0), VISITS_MAX).astype(VISITS)
    return out


# state layout: level value and count; per forecaster offset, mae, count; per noise model (scale
# proportional to |expected|^beta for beta in 0, 1/2, 1) the mean absolute scaled residual and the
# average Gaussian log-likelihood of residuals under it
_LEVEL, _LEVEL_N = 0, 1
_OFF, _MAE, _NERR = 2, 5, 8
_NMAE, _NLL = 11, 14
_SLOW = 17  # per forecaster: a slowly adapting offset (level for the level forecaster)
_ORATE = 20  # how often the chosen forecaster's residual lies beyond ``clip`` σ (EWMA)
# per profile (daily, weekly): the current visit of a slot, learned as one when the slot changes,
# so that buckets narrower than a slot do not chase each other within a visit: sum of (winsorized)
# deviations from the slot's value, their count, the slot
_VISIT = 21
#: 1 once a value that is not a non-negative integer was seen (0: a count series so far; a snapshot
#: from before the field existed is padded with 0 and learns it at its next non-count value)
_NONCOUNT = 27
#: a count series' quick level (memory constant in time, see :func:`count_scale`), the mean absolute
#: errors of the level and the quick level, and how many residuals they learned (a snapshot from
#: before these fields existed starts them afresh)
_QUICK, _LMAE, _QMAE, _QN = 28, 29, 30, 31
N_STATE = 32
BETAS = (0.0, 0.5, 1.0)
#: a profile slot averages its first visits plainly (winsorized) before forgetting exponentially
FIRST_VISITS = 3
#: the visits of a profile slot are counted up to VISITS_MAX (one byte each): the count is only read
#: against FIRST_VISITS and in the plain average's weight ``max(profile_alpha, 1 / (visits + 1))``,
#: which ``profile_alpha >= 1 / (VISITS_MAX + 1)`` (validated) makes the same beyond it
VISITS = np.uint8
VISITS_MAX = 255
#: profile values are stored in float32 (half the memory of a series' state; their noise is far
#: above float32's resolution): the kernels read them into float64 and compute in float64
PROFILE = np.float32


@nb.njit(cache=True)
def _kernel(
    x: np.ndarray,
    dslot: np.ndarray,
    wslot: np.ndarray,
    phase: np.ndarray,
    rows: np.ndarray,
    states: np.ndarray,
    days: np.ndarray,
    days_n: np.ndarray,
    weeks: np.ndarray,
    weeks_n: np.ndarray,
    p: np.ndarray,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]:  # pragma: no cover - compiled
    a_lvl, a_off, a_prof, clip = p[0], p[1], p[2], p[4]
    n = x.shape[0]
    exp = np.full(n, np.nan)
    z = np.zeros(n)
    zs = np.zeros(n)
    sg = np.full(n, np.nan)
    pw = np.zeros(n)
    a_slow = p[5]
    w_cfg, rate_max, vote = p[6], p[7], p[8]
    chosen = np.zeros(n, dtype=np.int64)
    preds = np.empty(3)
    min_n = 1.0 / p[3]
    for i in range(n):
        xi = x[i]
        if np.isnan(xi):
            continue
        r = rows[i]
        st, day, week = states[r], days[r], weeks[r]
        if xi < 0 or xi != np.floor(xi):
            st[_NONCOUNT] = 1.0
        # a count series' error memory and quick level count in time (see count_scale)
        counts = st[_NONCOUNT] == 0
        a_err, a_quick = (p[9], p[10]) if counts else (p[3], a_lvl)
        day_n, week_n = days_n[r], weeks_n[r]
        if st[_LEVEL_N] == 0:
            st[_LEVEL] = xi
            st[_LEVEL_N] = 1
            continue
        # the level forecaster: the quick level where it has forecast better (count series only)
        quick = counts and a_quick != a_lvl and st[_QN] >= min_n and st[_QMAE] < st[_LMAE]
        preds[0] = st[_QUICK] if quick else st[_LEVEL]
        d = dslot[i]
        w = wslot[i]
        for k in range(1, 3):
            _fold(
                day if k == 1 else week,
                day_n if k == 1 else week_n,
                st,
                _VISIT + 3 * (k - 1),
                d if k == 1 else w,
                a_prof,
            )
        preds[1] = _read(day, d, phase[i]) + st[_OFF + 1]
        preds[2] = _read(week, w, phase[i]) + st[_OFF + 2]
        young = week_n[w] < FIRST_VISITS
        if (
            not np.isnan(preds[1])
            and not np.isnan(preds[2])
            and (young or st[_MAE] < vote * st[_MAE + 2])
        ):
            # the weekly forecaster is the median of level, daily and weekly profile: a slot that
            # learned an incident is outvoted by the other two (always while the slot is young: it
            # holds what one or two weeks showed at this time, incidents included)
            preds[2] = min(max(preds[0], min(preds[1], preds[2])), max(preds[1], preds[2]))
        best = 0
        for k in range(1, 3):
            if not np.isnan(preds[k]) and st[_NERR + k] >= min_n and st[_MAE + k] < st[_MAE + best]:
                best = k
        floor = 1e-9 + 1e-6 * abs(preds[best])
        exp[i] = preds[best]
        chosen[i] = best
        # the noise model: scale ~ |expected|^beta, beta chosen by likelihood of past residuals
        mag = max(abs(preds[best]), 1e-9)
        nb_ = 0
        for b in range(1, 3):
            if st[_NLL + b] > st[_NLL + nb_]:
                nb_ = b
        e_best = xi - preds[best]
        w_out = w_cfg if st[_ORATE] < rate_max else 1.0
        if st[_NERR + best] >= 2 and st[_MAE + best] > 0:
            big = 1.0 if abs(e_best) > clip * 1.25 * st[_MAE + best] else 0.0
            st[_ORATE] += a_err * (big - st[_ORATE])
        if st[_NERR + best] >= 2 and st[_NMAE] > 0:
            sigma = max(1.25 * st[_NMAE + nb_] * mag ** (0.5 * nb_), floor)
            z[i] = e_best / sigma
            sg[i] = sigma
            pw[i] = 0.5 * nb_
            slow_pred = st[_SLOW] if best == 0 else preds[best] - st[_OFF + best] + st[_SLOW + best]
            zs[i] = (xi - slow_pred) / sigma
        if st[_NERR + best] >= 2:
            for b in range(3):
                scl = mag ** (0.5 * b)
                lim_b = clip * 1.25 * st[_NMAE + b] if st[_NMAE + b] > 0 else abs(e_best) / scl
                eb = min(abs(e_best) / scl, lim_b)
                if st[_NMAE + b] > 0:
                    sb = max(1.25 * st[_NMAE + b] * scl, floor)
                    ll = -np.log(sb) - 0.5 * (eb * scl / sb) ** 2
                    a_b = a_err * (w_out if abs(e_best) / scl > lim_b else 1.0)
                    st[_NLL + b] += a_b * (ll - st[_NLL + b])
                    st[_NMAE + b] += a_b * (eb - st[_NMAE + b])
                else:
                    st[_NMAE + b] = eb
        # learn: each forecaster from its own winsorized residual
        for k in range(3):
            if np.isnan(preds[k]):
                continue
            e = xi - preds[k]
            lim = clip * max(1.25 * st[_MAE + k], floor) if st[_NERR + k] >= 2 else abs(e)
            ec = min(max(e, -lim), lim)
            if st[_NERR + k] == 0:
                st[_MAE + k] = abs(ec)
            else:
                st[_MAE + k] += a_err * (w_out if abs(e) > lim else 1.0) * (abs(ec) - st[_MAE + k])
            st[_NERR + k] += 1
            if k == 0:
                _learn_levels(st, xi, lim, a_lvl, a_quick, p[3] * (w_out if abs(e) > lim else 1.0))
                if st[_NERR] == 1:
                    st[_SLOW] = xi
                st[_SLOW] += a_slow * min(max(xi - st[_SLOW], -lim), lim)
            else:
                st[_OFF + k] += a_off * ec
                es = xi - (preds[k] - st[_OFF + k] + st[_SLOW + k])
                st[_SLOW + k] += a_slow * min(max(es, -lim), lim)
        # profiles learn the value net of their offset, once per visit (see _fold)
        for k in range(1, 3):
            table = day if k == 1 else week
            visits = day_n if k == 1 else week_n
            s = d if k == 1 else w
            v = _VISIT + 3 * (k - 1)
            target = xi - st[_OFF + k]
            lim = np.inf
            if np.isnan(table[s]):
                dv = target
            else:
                lim = clip * max(1.25 * st[_MAE + k], floor)
                dv = min(max(target - table[s], -lim), lim)
            # an incident is learned as part of the rhythm only at the outliers' weight (once the
            # slot has a value to judge by)
            wv = w_out if abs(dv) >= lim and visits[s] >= FIRST_VISITS else 1.0
            st[v] += wv * dv
            st[v + 1] += 1
            st[v + 2] = s
    return exp, z, chosen, zs, sg, pw


@nb.njit(cache=True)
def _learn_levels(
    st: np.ndarray, xi: float, lim: float, a_lvl: float, a_quick: float, a_err: float
) -> None:  # pragma: no cover - compiled
    # the level and the quick level each learn from their own winsorized residual, and each keeps
    # its mean absolute error (which of the two the level forecaster reads); the quick level starts
    # where the level stands
    if st[_QN] == 0:
        st[_QUICK] = st[_LEVEL]
    for v, mae, a in ((_LEVEL, _LMAE, a_lvl), (_QUICK, _QMAE, a_quick)):
        e = min(max(xi - st[v], -lim), lim)
        st[mae] = abs(e) if st[_QN] == 0 else st[mae] + a_err * (abs(e) - st[mae])
        st[v] += a * e
    st[_QN] += 1


@nb.njit(cache=True)
def _read(table: np.ndarray, s: int, phase: float) -> float:  # pragma: no cover - compiled
    v = float(table[s])
    if phase == 0.0 or np.isnan(v):
        return v
    m = table.shape[0]
    nb_ = (s + 1) % m if phase > 0 else (s - 1) % m
    u = float(table[nb_])
    return v if np.isnan(u) else v + abs(phase) * (u - v)


@nb.njit(cache=True)
def _fold(
    table: np.ndarray, visits: np.ndarray, st: np.ndarray, v: int, slot: int, a_prof: float
) -> None:
    # pragma: no cover - compiled
    if st[v + 1] == 0 or int(st[v + 2]) == slot:
        return
    s = int(st[v + 2])
    mean = st[v] / st[v + 1]
    n = 0.0 if np.isnan(table[s]) else float(visits[s])
    if n == 0:
        table[s] = mean
    else:
        # plain averages over the first visits, then exponential forgetting (in float64, stored
        # rounded to the table's precision)
        table[s] = float(table[s]) + max(a_prof, 1.0 / (n + 1.0)) * mean
    visits[s] = min(n + 1.0, VISITS_MAX)
    st[v] = 0.0
    st[v + 1] = 0.0
