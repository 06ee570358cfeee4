"""Seasonal profile x adaptive level: rushhour's default forecaster.

The profile is a robust estimate, per step of the local week, over the recent weeks (a weighted
median, recent weeks weighing more); public holidays and the days next to them are left out of it,
and holidays are forecast with the Sunday profile. Two levels scale it: a fast one, the ratio of the
latest actuals to the profile (weighted towards the latest hours), and a slow one over the last days
of ordinary (non-holiday) history; each fades back towards 1 with the horizon, because a surge or a
lull seldom lasts. Intervals come from the model's own errors: it backtests itself on the last weeks
of the history (each week forecast with the profile of the weeks before it, from rolling origins)
and keeps the empirical quantiles of the errors per lead time, so the 80% band covers about 80% of
what follows.

>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> hist = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=5, freq="30min",
...                         seed=1, anomalies_per_day=0).series
>>> model = AdaptiveProfile().fit(hist)
>>> fc = model.predict(datetime(2026, 2, 9, 8, tzinfo=UTC), datetime(2026, 2, 9, 10, tzinfo=UTC))
>>> len(fc.mean), bool(fc.quantiles[0.1][0] < fc.mean[0] < fc.quantiles[0.9][0])
(4, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from rushhour.errors import NotFittedError, UsageError
from rushhour.forecast.base import Forecast, check_history, step_index
from rushhour.forecast.calendar import (
    DAY,
    WEEK,
    holiday_mask,
    infer_step,
    near_holiday_mask,
    regular,
    week_phase,
)
from rushhour.timeutil import parse_duration, zone


@dataclass(frozen=True)
class Rolling:
    """Flattened rolling-origin forecasts: lead time (steps), actual, forecast, holiday flag."""

    lags: np.ndarray
    actual: np.ndarray
    forecast: np.ndarray
    holiday: np.ndarray


QUANTILES = (0.025, 0.05, 0.1, 0.5, 0.9, 0.95, 0.975)
_Z90 = 1.2815515655446004
SNAPSHOT_VERSION = 1


@dataclass
class AdaptiveProfile:
    """Parameters (stored as given; validated in ``fit``):

    * ``weeks``: recent weeks that make the profile; ``recency``: weight of each week relative to the
      week after it (1: all equal).
    * ``estimator``: ``median`` (weighted median per step of the week) or ``trimmed`` (weighted mean
      without each step's lowest and highest week).
    * ``level_halflife``: how fast old ratios lose weight in the level; ``level_decay``: the horizon
      at which the level's pull has halved; ``level_limits``: the level is clipped to this range.
    * ``calibration_weeks``: weeks of history backtested for the intervals; origins every
      ``calibration_every``; ``calibrate_on_holidays``: keep the errors made on public holidays.
    * ``smooth``: width (in steps, odd) of a circular moving average over the profile (1: none).
    * ``holiday_margin``: days either side of a public holiday left out of the profile, the slow
      level and the calibration errors, like the holiday itself (bridge days, holiday weeks).
    """

    weeks: int = 12
    recency: float = 0.9
    estimator: Literal["median", "trimmed"] = "median"
    level_halflife: str = "15m"
    level_decay: str = "12h"
    level_limits: tuple[float, float] = (0.2, 5.0)
    slow_window: str = "3d"
    slow_decay: str = "2d"
    calibration_weeks: int = 4
    calibration_every: str = "6h"
    calibrate_on_holidays: bool = False
    smooth: int = 1
    holiday_margin: int = 1
    timezone: str = "UTC"
    holidays_country: str | None = "US"
    holidays_subdiv: str | None = None
    quantiles: tuple[float, ...] = QUANTILES
    step_: pd.Timedelta | None = field(default=None, repr=False)
    profile_: np.ndarray | None = field(default=None, repr=False)
    level_: float = field(default=1.0, repr=False)
    slow_: float = field(default=1.0, repr=False)
    last_: pd.Timestamp | None = field(default=None, repr=False)
    bins_: np.ndarray | None = field(default=None, repr=False)
    errors_: np.ndarray | None = field(default=None, repr=False)
    log_errors_: bool = field(default=True, repr=False)

    # -- validation -----------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.weeks < 1:
            raise UsageError(f"weeks must be >= 1, got {self.weeks}")
        if not 0 < self.recency <= 1:
            raise UsageError(f"recency must be in (0, 1], got {self.recency}")
        if self.estimator not in ("median", "trimmed"):
            raise UsageError(f"estimator must be 'median' or 'trimmed', got {self.estimator!r}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise UsageError(f"smooth must be an odd number >= 1, got {self.smooth}")
        lo, hi = self.level_limits
        if not 0 < lo <= 1 <= hi:
            raise UsageError(
                f"level_limits must satisfy 0 < low <= 1 <= high, got {self.level_limits}"
            )
        if self.holiday_margin < 0:
            raise UsageError(f"holiday_margin must be >= 0, got {self.holiday_margin}")
        if self.calibration_weeks < 1:
            raise UsageError(f"calibration_weeks must be >= 1, got {self.calibration_weeks}")
        for q in self.quantiles:
            if not 0 < q < 1:
                raise UsageError(f"quantiles must lie in (0, 1), got {q}")
        zone(self.timezone)

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, history: pd.Series) -> AdaptiveProfile:
        """Learn the profile, the current level and the error quantiles from ``history``."""
        self._validate()
        values = check_history(history, min_points=2).dropna()
        step = infer_step(values.index)
        y = regular(values, step)
        per_week = int(WEEK / step)
        self.step_ = step
        self.log_errors_ = bool(np.nanmin(y.to_numpy()) >= 0)
        phase = self._phase(y.index, step)
        learn = self._learnable(y, phase)
        cal_weeks = min(self.calibration_weeks, int(len(y) // per_week) - 1)
        # under two weeks of history: errors measured in-sample, so the bands are optimistic
        cut = len(y) - cal_weeks * per_week if cal_weeks >= 1 else max(len(y) // 2, 1)
        self.bins_, self.errors_ = self._calibrate(
            self._rolling(y.to_numpy(), learn, phase, cut, in_sample=cal_weeks < 1)
        )
        self.profile_ = self._profile(learn, phase, per_week)
        expected = self._expected(self.profile_, phase)
        self.level_ = self._level(y.to_numpy(), expected, len(y))
        self.slow_ = self._slow(learn, expected, len(y))
        self.last_ = y.index[-1]
        return self

    def _learnable(self, y: pd.Series, phase: np.ndarray) -> np.ndarray:
        """The values the profile and the slow level learn from: NaN on public holidays and within
        ``holiday_margin`` days of one (bridge days and holiday weeks are not the usual rhythm)."""
        near = near_holiday_mask(
            y.index, self.timezone, self.holidays_country, self.holidays_subdiv, self.holiday_margin
        )
        return np.where((phase < 0) | near, np.nan, y.to_numpy(dtype=float))

    def _phase(self, index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
        """Step of the week, with holidays mapped to Sunday's steps (and flagged by -1 - phase)."""
        phase = week_phase(index, step, self.timezone)
        hol = holiday_mask(index, self.timezone, self.holidays_country, self.holidays_subdiv)
        per_day = int(DAY / step)
        sunday = 6 * per_day + phase % per_day
        return np.where(hol, -1 - sunday, phase)

    def _profile(self, y: np.ndarray, phase: np.ndarray, per_week: int) -> np.ndarray:
        """Robust value per step of the week over the last ``weeks`` weeks (holidays left out)."""
        n = min(len(y), self.weeks * per_week)
        y, phase = y[-n:], phase[-n:]
        age = (n - 1 - np.arange(n)) // per_week
        grid = np.full((self.weeks, per_week), np.nan)
        ok = (phase >= 0) & ~np.isnan(y)
        grid[age[ok], phase[ok]] = y[ok]
        weights = np.where(np.isnan(grid), 0.0, self.recency ** np.arange(self.weeks)[:, None])
        prof = (
            _weighted_median(grid, weights)
            if self.estimator == "median"
            else _trimmed(grid, weights)
        )
        prof = _fill(prof, int(per_week // 7))
        if self.smooth > 1:
            pad = self.smooth // 2
            ext = np.concatenate([prof[-pad:], prof, prof[:pad]])
            prof = np.convolve(ext, np.ones(self.smooth) / self.smooth, mode="valid")
        return prof

    def _level_weights(self, count: int) -> np.ndarray:
        half = pd.Timedelta(parse_duration(self.level_halflife)) / self.step_
        age = np.arange(count)[::-1]
        return np.asarray(0.5 ** (age / max(half, 1e-9)))

    def _level(self, y: np.ndarray, expected: np.ndarray, end: int) -> float:
        """Weighted ratio of actuals to the profile over the steps before ``end``."""
        half = pd.Timedelta(parse_duration(self.level_halflife)) / self.step_
        window = max(int(np.ceil(4 * half)), 1)
        lo = max(end - window, 0)
        a, e = y[lo:end], expected[lo:end]
        w = self._level_weights(end - lo)
        ok = ~(np.isnan(a) | np.isnan(e))
        den = float(np.sum(w[ok] * e[ok]))
        if den <= 0 or not ok.any():
            return 1.0
        ratio = float(np.sum(w[ok] * a[ok])) / den
        return float(np.clip(ratio, *self.level_limits))

    def _slow(self, y: np.ndarray, expected: np.ndarray, end: int) -> float:
        """Ratio of actuals to the profile over the last ``slow_window`` worth of usable steps
        (``y`` is NaN on holidays: the window reaches back past them, up to 4 windows; 1 when
        disabled)."""
        window = int(pd.Timedelta(parse_duration(self.slow_window)) / self.step_)
        if window < 1:
            return 1.0
        lo = max(end - 4 * window, 0)
        a, e = y[lo:end], expected[lo:end]
        ok = np.flatnonzero(~(np.isnan(a) | np.isnan(e)))[-window:]
        den = float(np.sum(e[ok]))
        if den <= 0:
            return 1.0
        return float(np.clip(float(np.sum(a[ok])) / den, *self.level_limits))

    def _fade(self, horizon: np.ndarray, decay: str | None = None) -> np.ndarray:
        half = pd.Timedelta(parse_duration(decay or self.level_decay)) / self.step_
        return np.asarray(0.5 ** (horizon / max(half, 1e-9)))

    def _path(self, expected: np.ndarray, h: np.ndarray, level: float, slow: float) -> np.ndarray:
        """The slow level fades over ``slow_decay``; the fast one, relative to it, over ``level_decay``."""
        slow_h = 1 + (slow - 1) * self._fade(h, self.slow_decay)
        return np.asarray(expected * slow_h * (1 + (level / slow - 1) * self._fade(h)))

    def _rolling(
        self, y: np.ndarray, learn: np.ndarray, phase: np.ndarray, cut: int, *, in_sample: bool
    ) -> Rolling:
        """Rolling-origin forecasts over ``y[cut:]``, origins every ``calibration_every``.

        Each week of origins uses the profile of the history before that week (as a weekly refit
        would), unless ``in_sample`` (too short a history: one profile from everything)."""
        assert self.step_ is not None
        per_week = int(WEEK / self.step_)
        every = max(int(pd.Timedelta(parse_duration(self.calibration_every)) / self.step_), 1)
        lags, actual, fc, hol = [], [], [], []
        expected = np.array([])
        for origin in range(cut, len(y), every):
            if in_sample and not len(expected):
                expected = self._expected(self._profile(learn, phase, per_week), phase)
            elif not in_sample and (origin - cut) % per_week < every:
                expected = self._expected(
                    self._profile(learn[:origin], phase[:origin], per_week), phase
                )
            level = self._level(y, expected, origin)
            slow = self._slow(learn, expected, origin)
            h = np.arange(1, min(per_week, len(y) - origin) + 1)
            lags.append(h)
            actual.append(y[origin + h - 1])
            fc.append(self._path(expected[origin + h - 1], h, level, slow))
            hol.append(np.isnan(learn[origin + h - 1]))
        if not lags:
            empty = np.array([])
            return Rolling(empty, empty, empty, empty.astype(bool))
        return Rolling(*(np.concatenate(a) for a in (lags, actual, fc, hol)))

    @staticmethod
    def _expected(profile: np.ndarray, phase: np.ndarray) -> np.ndarray:
        return np.asarray(profile[np.where(phase < 0, -1 - phase, phase)])

    def _calibrate(self, r: Rolling) -> tuple[np.ndarray, np.ndarray]:
        """Empirical error quantiles per horizon bin (holidays left out unless asked)."""
        assert self.step_ is not None
        bins = _horizon_bins(int(WEEK / self.step_))
        err = self._error(r.actual, r.forecast)
        if not self.calibrate_on_holidays:
            err = np.where(r.holiday, np.nan, err)
        which = np.searchsorted(bins, r.lags, side="right") - 1
        levels = np.asarray(self.quantiles)
        table = np.zeros((len(bins) - 1, len(levels)))
        filled = np.zeros(len(bins) - 1, dtype=bool)
        for b in range(len(table)):
            e = err[(which == b) & ~np.isnan(err)]
            if len(e) >= 20:
                table[b] = np.quantile(e, levels)
                filled[b] = True
        for b in range(len(table)):  # bins without enough samples borrow the nearest shorter one
            if not filled[b]:
                prev = np.flatnonzero(filled[:b])
                nxt = np.flatnonzero(filled)
                src = prev[-1] if len(prev) else (nxt[0] if len(nxt) else None)
                if src is not None:
                    table[b] = table[src]
        return bins, table

    def _error(self, actual: np.ndarray, fc: np.ndarray) -> np.ndarray:
        if self.log_errors_:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(np.log1p(np.maximum(actual, 0)) - np.log1p(np.maximum(fc, 0)))
        return actual - fc

    def _apply(self, fc: np.ndarray, err: np.ndarray) -> np.ndarray:
        if self.log_errors_:
            return np.asarray(np.expm1(np.log1p(np.maximum(fc, 0)) + err))
        return fc + err

    # -- prediction -----------------------------------------------------------------------------
    def predict(self, start: datetime, end: datetime) -> Forecast:
        """Forecast ``[start, end)`` at the history's step, with quantiles from the model's errors."""
        if self.profile_ is None or self.step_ is None or self.last_ is None:
            raise NotFittedError("the adaptive forecaster is not fitted")
        assert self.bins_ is not None and self.errors_ is not None
        index = step_index(start, end, self.step_)
        phase = self._phase(index, self.step_)
        expected = self.profile_[np.where(phase < 0, -1 - phase, phase)]
        h = np.maximum(np.asarray((index - self.last_) / self.step_, dtype=float), 1.0)
        mean = self._path(expected, h, self.level_, self.slow_)
        which = np.clip(np.searchsorted(self.bins_, h, side="right") - 1, 0, len(self.errors_) - 1)
        qs = {q: self._apply(mean, self.errors_[which, i]) for i, q in enumerate(self.quantiles)}
        lo, hi = qs.get(0.1), qs.get(0.9)
        std = (hi - lo) / (2 * _Z90) if lo is not None and hi is not None else np.zeros_like(mean)
        return Forecast(index=index, mean=mean, std=np.maximum(std, 0.0), quantiles=qs)

    # -- state ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain-data state (JSON-safe), restorable with :meth:`restore`."""
        if self.profile_ is None or self.step_ is None or self.last_ is None:
            raise NotFittedError("the adaptive forecaster is not fitted; nothing to snapshot")
        assert self.bins_ is not None and self.errors_ is not None
        return {
            "kind": "adaptive",
            "version": SNAPSHOT_VERSION,
            "params": self.params(),
            "step_seconds": self.step_.total_seconds(),
            "profile": self.profile_.tolist(),
            "level": self.level_,
            "slow": self.slow_,
            "last": self.last_.isoformat(),
            "bins": self.bins_.tolist(),
            "errors": self.errors_.tolist(),
            "log_errors": self.log_errors_,
        }

    def params(self) -> dict[str, Any]:
        return {
            "weeks": self.weeks,
            "recency": self.recency,
            "estimator": self.estimator,
            "level_halflife": self.level_halflife,
            "level_decay": self.level_decay,
            "level_limits": list(self.level_limits),
            "slow_window": self.slow_window,
            "slow_decay": self.slow_decay,
            "calibration_weeks": self.calibration_weeks,
            "calibration_every": self.calibration_every,
            "calibrate_on_holidays": self.calibrate_on_holidays,
            "smooth": self.smooth,
            "holiday_margin": self.holiday_margin,
            "timezone": self.timezone,
            "holidays_country": self.holidays_country,
            "holidays_subdiv": self.holidays_subdiv,
            "quantiles": list(self.quantiles),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> AdaptiveProfile:
        """Rebuild a fitted model from :meth:`snapshot` output."""
        if state.get("kind") != "adaptive" or state.get("version") != SNAPSHOT_VERSION:
            raise UsageError(
                f"not a version-{SNAPSHOT_VERSION} adaptive forecaster snapshot "
                f"(kind={state.get('kind')!r}, version={state.get('version')!r})"
            )
        p = dict(state["params"])
        p["level_limits"] = tuple(p["level_limits"])
        p["quantiles"] = tuple(p["quantiles"])
        model = cls(**p)
        model.step_ = pd.Timedelta(seconds=state["step_seconds"])
        model.profile_ = np.asarray(state["profile"], dtype=float)
        model.level_ = float(state["level"])
        model.slow_ = float(state["slow"])
        model.last_ = pd.Timestamp(state["last"])
        model.bins_ = np.asarray(state["bins"], dtype=float)
        model.errors_ = np.asarray(state["errors"], dtype=float)
        model.log_errors_ = bool(state["log_errors"])
        return model


def _horizon_bins(per_week: int) -> np.ndarray:
    """Edges 1, 2, 3, 4, 6, 8, 12, 16, ... up to past a week: more samples per bin far out."""
    edges = [1, 2, 3, 4]
    while edges[-1] <= per_week:
        edges.append(int(edges[-1] * 1.5) if edges[-1] % 2 == 0 else edges[-1] + 1)
    return np.asarray(edges, dtype=float)


def _weighted_median(grid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(np.where(np.isnan(grid), np.inf, grid), axis=0)
    v = np.take_along_axis(grid, order, axis=0)
    w = np.take_along_axis(weights, order, axis=0)
    cum = np.cumsum(w, axis=0)
    total = cum[-1]
    pick = np.argmax(cum >= total / 2, axis=0)
    out = v[pick, np.arange(grid.shape[1])]
    return np.where(total > 0, out, np.nan)


def _trimmed(grid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean per column without its lowest and highest value (when it has 4 or more)."""
    n = (weights > 0).sum(axis=0)
    g = np.where(weights > 0, grid, np.nan)
    with np.errstate(invalid="ignore"):
        lo = np.nanargmin(np.where(np.isnan(g), np.inf, g), axis=0)
        hi = np.nanargmax(np.where(np.isnan(g), -np.inf, g), axis=0)
    w = weights.copy()
    cols = np.arange(grid.shape[1])
    trim = n >= 4
    w[lo[trim], cols[trim]] = 0.0
    w[hi[trim], cols[trim]] = 0.0
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.nansum(np.where(w > 0, grid, 0.0) * w, axis=0) / total
    return np.where(total > 0, out, np.nan)


def _fill(profile: np.ndarray, per_day: int) -> np.ndarray:
    """Steps never observed take the same time of day on other days, else the overall median."""
    if not np.isnan(profile).any():
        return profile
    days = profile.reshape(7, per_day)
    with np.errstate(all="ignore"):
        by_time = np.nanmedian(np.where(np.isnan(days), np.nan, days), axis=0)
    filled = np.where(np.isnan(days), by_time[None, :], days).reshape(-1)
    overall = np.nanmedian(profile) if np.isfinite(profile).any() else 0.0
    return np.where(np.isnan(filled), overall, filled)
