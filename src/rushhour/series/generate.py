"""Realistic synthetic request traffic with labelled anomalies.

Weekdays have a morning and an evening rush hour over a daytime plateau; weekends have one broad midday
hump; public holidays look like a quiet weekend. Traffic grows slowly, and the noise behaves like counts
(Poisson with a gamma-mixed rate, so it is over-dispersed like real traffic). Anomalies of several kinds
are injected and returned as labelled windows. Everything is a pure function of its arguments and seed.

>>> from datetime import datetime, UTC
>>> t = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), days=2, seed=1)
>>> len(t.frame), bool(t.frame["value"].min() >= 0)
(2880, True)
>>> t.frame.index.tz is not None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import holidays as holidays_lib
import numpy as np
import pandas as pd

from rushhour.errors import UsageError
from rushhour.timeutil import utc, zone

ANOMALY_KINDS = (
    "spike",
    "drop",
    "outage",
    "partial_drop",
    "level_shift",
    "ramp",
    "missing_rush_hour",
)


@dataclass(frozen=True)
class AnomalyWindow:
    """A labelled anomaly: ``[start, end]`` with both ends inclusive, as NAB labels are."""

    start: datetime
    end: datetime
    kind: str
    factor: float

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "kind": self.kind,
            "factor": round(self.factor, 3),
        }


@dataclass(frozen=True)
class TrafficShape:
    """Parameters of the normal rhythm, as multiples of the night-time level ``base_rpm``."""

    base_rpm: float = 1200.0
    morning_peak: float = 7.0
    morning_hour: float = 8.25
    evening_peak: float = 5.5
    evening_hour: float = 17.5
    daytime_plateau: float = 3.0
    weekend_peak: float = 3.0
    holiday_level: float = 0.85
    weekly_growth: float = 0.004
    dispersion: float = 0.0015

    def expected(self, local_hours: np.ndarray, day_class: np.ndarray) -> np.ndarray:
        """Expected rate per minute; ``day_class`` is 1 weekday, 0 weekend, 2 holiday."""
        h = local_hours
        weekday = (
            1.0
            + self.morning_peak * np.exp(-0.5 * ((h - self.morning_hour) / 1.0) ** 2)
            + self.evening_peak * np.exp(-0.5 * ((h - self.evening_hour) / 1.3) ** 2)
            + self.daytime_plateau / (1 + np.exp(-(h - 6.5) * 2)) / (1 + np.exp((h - 21) * 1.5))
        )
        weekend = 1.0 + self.weekend_peak * np.exp(-0.5 * ((h - 13.0) / 3.0) ** 2)
        shape = np.where(day_class == 1, weekday, weekend)
        shape = np.where(day_class == 2, weekend * self.holiday_level, shape)
        return self.base_rpm * shape


@dataclass
class Traffic:
    """Generated counts (``frame`` with a UTC index and a ``value`` column) and their labels."""

    frame: pd.DataFrame
    anomalies: list[AnomalyWindow] = field(default_factory=list)
    expected: np.ndarray | None = None

    @property
    def series(self) -> pd.Series:
        return self.frame["value"]


def day_classes(
    index: pd.DatetimeIndex, tz: str, country: str | None, subdiv: str | None = None
) -> np.ndarray:
    """1 for a working weekday, 0 for a weekend day, 2 for a public holiday (local calendar)."""
    local = index.tz_convert(zone(tz))
    classes = np.where(local.dayofweek < 5, 1, 0)
    if country:
        years = sorted(set(local.year))
        cal = holidays_lib.country_holidays(country, subdiv=subdiv, years=years)
        if cal:
            hol_days = np.array(sorted(cal.keys()), dtype="datetime64[D]")
            local_days = local.tz_localize(None).values.astype("datetime64[D]")
            classes = np.where(np.isin(local_days, hol_days), 2, classes)
    return classes


def generate_traffic(
    start: datetime,
    *,
    days: int | None = None,
    weeks: int | None = None,
    freq: str = "1min",
    seed: int = 0,
    anomalies_per_day: float = 2.0,
    kinds: tuple[str, ...] = ANOMALY_KINDS,
    tz: str = "UTC",
    holidays_country: str | None = "US",
    holidays_subdiv: str | None = None,
    shape: TrafficShape | None = None,
    growth_origin: datetime | None = None,
) -> Traffic:
    """Counts per bucket from ``start`` for ``days`` (or ``weeks``), with labelled anomalies.

    ``growth_origin`` is the instant at which growth is 1.0 (defaults to ``start``), so that chunks
    generated separately join up.
    """
    if (days is None) == (weeks is None):
        raise UsageError("give exactly one of days or weeks")
    n_days = days if days is not None else 7 * (weeks or 0)
    if n_days <= 0:
        raise UsageError(f"the length must be at least one day, got {n_days} days")
    bad = [k for k in kinds if k not in ANOMALY_KINDS]
    if bad:
        raise UsageError(
            f"unknown anomaly kind(s) {bad}", hint=f"choose from {', '.join(ANOMALY_KINDS)}"
        )
    shape = shape or TrafficShape()
    start = utc(start)
    step = pd.Timedelta(freq)
    index = pd.date_range(start, start + timedelta(days=n_days), freq=step, inclusive="left")
    rng = np.random.default_rng(seed)

    classes = day_classes(index, tz, holidays_country, holidays_subdiv)
    local = index.tz_convert(zone(tz))
    hours = (local.hour + local.minute / 60.0 + local.second / 3600.0).to_numpy(dtype=float)
    origin = utc(growth_origin) if growth_origin is not None else start
    weeks_since = (index - pd.Timestamp(origin)).total_seconds().to_numpy() / 604800.0
    per_bucket = step.total_seconds() / 60.0
    expected = (
        shape.expected(hours, classes) * (1 + shape.weekly_growth) ** weeks_since * per_bucket
    )

    factor = np.ones(len(index))
    weeks_local = local_weeks(local)
    windows = _inject(
        rng, index, hours, classes, weeks_local, factor, n_days, anomalies_per_day, kinds
    )
    rate = expected * factor
    if shape.dispersion > 0:
        rate = rate * rng.gamma(1.0 / shape.dispersion, shape.dispersion, size=len(rate))
    values = rng.poisson(np.maximum(rate, 0.0)).astype(np.int64)
    frame = pd.DataFrame({"value": values}, index=index)
    frame.index.name = "timestamp"
    return Traffic(frame=frame, anomalies=windows, expected=expected)


def local_weeks(local: pd.DatetimeIndex) -> np.ndarray:
    """The local calendar week (Monday to Sunday) of each bucket, as a week number since 1970.

    >>> idx = pd.date_range("2026-01-04", periods=3, freq="D", tz="UTC")  # Sunday, Monday, Tuesday
    >>> local_weeks(idx).tolist()
    [2922, 2923, 2923]
    """
    days = local.tz_localize(None).values.astype("datetime64[D]").astype(np.int64)
    # 1970-01-01 was a Thursday: three days on, weeks start on Mondays
    return (days + 3) // 7


def _inject(
    rng: np.random.Generator,
    index: pd.DatetimeIndex,
    hours: np.ndarray,
    classes: np.ndarray,
    weeks: np.ndarray,
    factor: np.ndarray,
    n_days: int,
    per_day: float,
    kinds: tuple[str, ...],
) -> list[AnomalyWindow]:
    """Multiply ``factor`` in place over random, non-overlapping windows; return their labels."""
    if per_day <= 0 or not kinds:
        return []
    step_min = (index[1] - index[0]).total_seconds() / 60.0 if len(index) > 1 else 1.0
    count = rng.poisson(per_day * n_days)
    taken = np.zeros(len(index), dtype=bool)
    # the weeks that already miss a rush hour: at most one a week, so that the rush stays the rule
    rushless = np.zeros(len(index), dtype=bool)
    out: list[AnomalyWindow] = []
    for _ in range(count):
        kind = str(rng.choice(list(kinds)))
        blocked = taken | rushless if kind == "missing_rush_hour" else taken
        placed = _place(rng, kind, hours, classes, blocked, step_min)
        if placed is None:
            continue
        lo, hi, f = placed
        if kind == "missing_rush_hour":
            rushless |= weeks == weeks[lo]
        _apply(kind, factor, lo, hi, f)
        # keep a guard of 30 minutes around each window so windows stay distinct episodes
        guard = int(30 / step_min)
        taken[max(0, lo - guard) : min(len(index), hi + guard)] = True
        out.append(AnomalyWindow(index[lo].to_pydatetime(), index[hi - 1].to_pydatetime(), kind, f))
    out.sort(key=lambda w: w.start)
    return out


_DURATIONS_MIN = {
    "spike": (4, 20),
    "drop": (6, 30),
    "outage": (4, 30),
    "partial_drop": (15, 60),
    "level_shift": (120, 360),
    "ramp": (30, 90),
    "missing_rush_hour": (180, 180),
}


def _place(
    rng: np.random.Generator,
    kind: str,
    hours: np.ndarray,
    classes: np.ndarray,
    taken: np.ndarray,
    step_min: float,
) -> tuple[int, int, float] | None:
    lo_d, hi_d = _DURATIONS_MIN[kind]
    length = max(1, int(rng.integers(lo_d, hi_d + 1) / step_min))
    if kind == "missing_rush_hour":
        # the weekday morning rush, 06:30-09:30 local, disappears
        starts = np.flatnonzero((classes == 1) & (np.abs(hours - 6.5) < step_min / 120))
    else:
        # anomalies fall in the busier part of the day, where people would notice them
        starts = np.flatnonzero((hours >= 6) & (hours <= 22))
    starts = starts[starts + length <= len(hours)]
    for _ in range(20):
        if len(starts) == 0:
            return None
        lo = int(rng.choice(starts))
        if not taken[lo : lo + length].any():
            return lo, lo + length, _factor(rng, kind)
    return None


def _factor(rng: np.random.Generator, kind: str) -> float:
    return float(
        {
            "spike": rng.uniform(2.0, 4.0),
            "drop": rng.uniform(0.15, 0.45),
            "outage": 0.0,
            "partial_drop": rng.uniform(0.45, 0.65),
            "level_shift": rng.uniform(1.5, 1.9),
            "ramp": rng.uniform(2.2, 3.2),
            "missing_rush_hour": 0.3,
        }[kind]
    )


def _apply(kind: str, factor: np.ndarray, lo: int, hi: int, f: float) -> None:
    if kind == "ramp":
        factor[lo:hi] *= np.linspace(1.0 + (f - 1.0) / (hi - lo), f, hi - lo)
    elif kind == "missing_rush_hour":
        # flatten towards the plateau: the peak shrinks to a fraction of itself
        factor[lo:hi] *= np.concatenate(
            [
                np.linspace(1.0, f, (hi - lo) // 3),
                np.full(hi - lo - 2 * ((hi - lo) // 3), f),
                np.linspace(f, 1.0, (hi - lo) // 3),
            ]
        )
    else:
        factor[lo:hi] *= f


def labels_json(windows: list[AnomalyWindow], name: str) -> dict[str, list[list[str]]]:
    """Windows in the layout of NAB's ``combined_windows.json``: ``{name: [[start, end], ...]}``."""
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    return {
        name: [
            [w.start.astimezone(UTC).strftime(fmt), w.end.astimezone(UTC).strftime(fmt)]
            for w in windows
        ]
    }


def day_seed(seed: int, day: date) -> int:
    """A seed for one calendar day, so that any day of an endless stream can be regenerated alone."""
    return (seed * 1_000_003 + day.toordinal()) % (2**63)
