"""Cleaning bucketed series as the seed did: smoothing, rescaling a glitch, holidays, train/test.

All functions are pure: they take a :class:`~rushhour.series.bucketing.Series` and return a new one.
Missing buckets (NaN) stay missing; nothing here invents traffic where no input covered.

>>> import numpy as np
>>> from rushhour.series.bucketing import Series
>>> s = Series(("requests", ()), 60, np.arange(5) * 60, np.array([0., 0., 9., 0., 0.]))
>>> smooth(s, "box:3").values.tolist()
[0.0, 3.0, 3.0, 3.0, 0.0]
>>> rescale(s, 120, 180, 0.5).values.tolist()
[0.0, 0.0, 4.5, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import holidays as holidays_lib
import numpy as np
import pandas as pd

from rushhour.errors import UsageError
from rushhour.series.bucketing import Series
from rushhour.timeutil import to_epoch, zone


def kernel(spec: str | Sequence[float]) -> np.ndarray:
    """A normalised smoothing kernel: weights, or ``box:N``, ``triangle:N``, ``gaussian:N`` (odd N).

    >>> kernel("triangle:3").tolist()
    [0.25, 0.5, 0.25]
    """
    if not isinstance(spec, str):
        k = np.asarray(spec, dtype=float)
    else:
        name, _, size = spec.partition(":")
        try:
            n = int(size or 5)
        except ValueError:
            n = -1
        if n < 1 or n % 2 == 0:
            raise UsageError(f"kernel size must be a positive odd number, got {size!r} in {spec!r}")
        if name == "box":
            k = np.ones(n)
        elif name == "triangle":
            k = np.concatenate([np.arange(1, n // 2 + 2), np.arange(n // 2, 0, -1)]).astype(float)
        elif name == "gaussian":
            x = np.arange(n) - n // 2
            k = np.exp(-0.5 * (x / max(n / 6, 1e-9)) ** 2)
        else:
            raise UsageError(
                f"unknown kernel {name!r}", hint="use box:N, triangle:N, gaussian:N or weights"
            )
    if k.ndim != 1 or len(k) == 0 or (k < 0).any() or k.sum() <= 0:
        raise UsageError(f"kernel weights must be non-negative and not all zero, got {k.tolist()}")
    return k / k.sum()


def smooth(series: Series, spec: str | Sequence[float] = "triangle:5") -> Series:
    """Centered convolution; at the edges and next to gaps the weights are renormalised over the
    buckets present, so a level is kept rather than pulled towards zero. NaN stays NaN."""
    k = kernel(spec)
    v = series.values
    present = ~np.isnan(v)
    num = np.convolve(np.where(present, v, 0.0), k, mode="same")
    den = np.convolve(present.astype(float), k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(present & (den > 0), num / np.where(den > 0, den, 1), np.nan)
    return replace(series, values=out)


def _epoch(t: int | datetime) -> int:
    return t if isinstance(t, int) else to_epoch(t)


def rescale(series: Series, start: int | datetime, end: int | datetime, factor: float) -> Series:
    """Multiply the buckets in ``[start, end)`` by ``factor`` (the seed's x2 glitch: factor 0.5)."""
    if not factor > 0:
        raise UsageError(f"rescale factor must be > 0, got {factor}")
    lo, hi = _epoch(start), _epoch(end)
    if hi <= lo:
        raise UsageError(f"rescale interval is empty: end {end} is not after start {start}")
    v = series.values.copy()
    m = (series.starts >= lo) & (series.starts < hi)
    v[m] *= factor
    return replace(series, values=v)


def holiday_flags(
    starts: np.ndarray, *, country: str | None, subdiv: str | None = None, tz: str = "UTC"
) -> np.ndarray:
    """True for buckets whose local day is a public holiday of ``country`` (and ``subdiv``)."""
    if not country or len(starts) == 0:
        return np.zeros(len(starts), dtype=bool)
    local = pd.to_datetime(starts, unit="s", utc=True).tz_convert(zone(tz))
    days = local.tz_localize(None).normalize()
    try:
        cal = holidays_lib.country_holidays(
            country, subdiv=subdiv, years=sorted(set(days.year.tolist()))
        )
    except NotImplementedError as exc:
        raise UsageError(f"no holiday calendar for country {country!r} region {subdiv!r}") from exc
    hol = np.array(sorted(cal.keys()), dtype="datetime64[D]")
    return np.isin(days.values.astype("datetime64[D]"), hol)


def weekend_flags(starts: np.ndarray, *, tz: str = "UTC") -> np.ndarray:
    """True for buckets on a local Saturday or Sunday."""
    local = pd.to_datetime(starts, unit="s", utc=True).tz_convert(zone(tz))
    return np.asarray(local.dayofweek >= 5)


def exclude_holidays(
    series: Series, *, country: str, subdiv: str | None = None, tz: str = "UTC"
) -> Series:
    """Holiday buckets become missing (NaN), so models do not learn them as normal days."""
    flags = holiday_flags(series.starts, country=country, subdiv=subdiv, tz=tz)
    v = series.values.copy()
    v[flags] = np.nan
    return replace(series, values=v)


def train_test_split(series: Series, test: timedelta = timedelta(weeks=1)) -> tuple[Series, Series]:
    """Hold out the last ``test`` span (default one week) as the test set."""
    n_test = int(test.total_seconds() // series.width)
    if n_test <= 0 or n_test >= len(series.starts):
        raise UsageError(
            f"the test span {test} must be shorter than the series "
            f"({len(series.starts)} buckets of {series.width}s)"
        )
    cut = len(series.starts) - n_test
    return (
        replace(series, starts=series.starts[:cut], values=series.values[:cut]),
        replace(series, starts=series.starts[cut:], values=series.values[cut:]),
    )
