"""Calendar helpers shared by the forecasters: the step of a series and its place in the week.

>>> import pandas as pd
>>> idx = pd.date_range("2026-01-05", periods=4, freq="30min", tz="UTC")
>>> infer_step(idx)
Timedelta('0 days 00:30:00')
>>> week_phase(idx, pd.Timedelta("30min"), "UTC").tolist()   # Monday 00:00 is phase 0
[0, 1, 2, 3]
>>> season_steps(pd.Timedelta("30min"), "1w")
336
"""

from __future__ import annotations

import holidays as holidays_lib
import numpy as np
import pandas as pd

from rushhour.errors import InputError, UsageError
from rushhour.series.generate import day_classes
from rushhour.timeutil import parse_duration, zone

DAY = pd.Timedelta("1D")
WEEK = pd.Timedelta("7D")


def infer_step(index: pd.DatetimeIndex, *, source: str = "history") -> pd.Timedelta:
    """The series' step: the median gap between timestamps (gaps and jitter do not change it)."""
    if len(index) < 2:
        raise InputError("need at least two timestamps to tell the series' step", source=source)
    gaps = np.diff(index.asi8)
    step = pd.Timedelta(int(np.median(gaps)), unit="ns")
    if step <= pd.Timedelta(0):
        raise InputError("timestamps repeat: the series has no step", source=source)
    if DAY % step != pd.Timedelta(0):
        raise InputError(
            f"the series' step {step} does not divide a day",
            source=source,
            hint="resample the series to a step such as 1m, 5m, 30m or 1h",
        )
    return step


def season_steps(step: pd.Timedelta, period: str | pd.Timedelta) -> int:
    """How many steps make up ``period`` (``"1d"``, ``"1w"``)."""
    span = pd.Timedelta(parse_duration(period)) if isinstance(period, str) else period
    n = span / step
    if n < 1 or n != int(n):
        raise UsageError(f"period {period} is not a whole number of steps of {step}")
    return int(n)


def week_phase(index: pd.DatetimeIndex, step: pd.Timedelta, tz: str) -> np.ndarray:
    """Step of the local week (Monday 00:00 = 0) for each timestamp."""
    local = index.tz_convert(zone(tz))
    seconds = (local.hour * 3600 + local.minute * 60 + local.second).to_numpy()
    slot = seconds // int(step.total_seconds())
    per_day = int(DAY / step)
    return np.asarray(local.dayofweek.to_numpy() * per_day + slot, dtype=np.int64)


def holiday_mask(
    index: pd.DatetimeIndex, tz: str, country: str | None, subdiv: str | None
) -> np.ndarray:
    """True on local public holidays (never when ``country`` is None)."""
    if not country or len(index) == 0:
        return np.zeros(len(index), dtype=bool)
    return np.asarray(day_classes(index, tz, country, subdiv) == 2)


def near_holiday_mask(
    index: pd.DatetimeIndex, tz: str, country: str | None, subdiv: str | None, days: int
) -> np.ndarray:
    """True within ``days`` local days of a public holiday, but not on the holiday itself.

    >>> idx = pd.date_range("2025-12-23 12:00", periods=5, freq="1D", tz="UTC")
    >>> near_holiday_mask(idx, "UTC", "US", None, 1).tolist()   # Christmas is the 25th
    [False, True, False, True, False]
    """
    if not country or days < 1 or len(index) == 0:
        return np.zeros(len(index), dtype=bool)
    # one calendar look-up, by local date (a shift of the timestamps by 24 h would cross DST)
    local = index.tz_convert(zone(tz)).tz_localize(None).values.astype("datetime64[D]")
    first, last = (local.min() - days, local.max() + days)
    years = range(
        first.astype("datetime64[Y]").astype(int) + 1970,
        last.astype("datetime64[Y]").astype(int) + 1971,
    )
    cal = holidays_lib.country_holidays(country, subdiv=subdiv, years=list(years))
    hol = np.array(sorted(cal.keys()), dtype="datetime64[D]")
    near = np.zeros(len(index), dtype=bool)
    for d in range(1, days + 1):
        near |= np.isin(local + d, hol) | np.isin(local - d, hol)
    return near & ~np.isin(local, hol)


def regular(history: pd.Series, step: pd.Timedelta) -> pd.Series:
    """The series on a regular grid of ``step`` from its first to its last timestamp (gaps NaN)."""
    s = history.groupby(history.index.floor(step)).mean()
    grid = pd.date_range(s.index[0], s.index[-1], freq=step)
    return s.reindex(grid)
