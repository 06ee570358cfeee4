"""Cleaning: smoothing kernels, rescaling a glitch, holidays, the train/test split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from rushhour.errors import UsageError
from rushhour.series.bucketing import Series
from rushhour.series.cleaning import (
    exclude_holidays,
    holiday_flags,
    kernel,
    rescale,
    smooth,
    train_test_split,
    weekend_flags,
)

JAN1 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


def daily(n_days: int, start: int = JAN1, width: int = 3600) -> Series:
    starts = start + width * np.arange(n_days * 86400 // width)
    return Series(("requests", ()), width, starts, np.full(len(starts), 10.0))


def test_smoothing_keeps_level_and_gaps() -> None:
    s = daily(1)
    s.values[5] = np.nan
    out = smooth(s, "triangle:5")
    assert np.isnan(out.values[5]) and np.allclose(np.delete(out.values, 5), 10.0)
    spike = Series(s.key, 60, np.arange(9) * 60, np.array([0, 0, 0, 0, 90.0, 0, 0, 0, 0]))
    assert smooth(spike, [1, 1, 1]).values[3:6].tolist() == [30.0, 30.0, 30.0]
    assert np.nansum(smooth(spike, "gaussian:5").values) == pytest.approx(90.0)
    with pytest.raises(UsageError, match="positive odd number"):
        kernel("box:4")
    with pytest.raises(UsageError, match="unknown kernel 'median'"):
        kernel("median:3")


def test_rescale_interval_like_the_seeds_x2_glitch() -> None:
    s = daily(3)
    a, b = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    out = rescale(s, a, b, 0.5)
    assert out.values[:24].tolist() == [10.0] * 24 and out.values[24:48].tolist() == [5.0] * 24
    assert out.values[48:].tolist() == [10.0] * 24
    with pytest.raises(UsageError, match="factor must be > 0"):
        rescale(s, a, b, 0)


def test_holidays_tagged_and_excluded_by_country_and_region() -> None:
    s = daily(2, width=86400)
    assert holiday_flags(s.starts, country="US").tolist() == [True, False]  # New Year's Day
    # Epiphany (6 Jan) is a holiday in Bavaria, not in Berlin
    jan6 = np.array([int(datetime(2026, 1, 6, 12, tzinfo=UTC).timestamp())])
    assert holiday_flags(jan6, country="DE", subdiv="BY", tz="Europe/Berlin").tolist() == [True]
    assert holiday_flags(jan6, country="DE", subdiv="BE", tz="Europe/Berlin").tolist() == [False]
    out = exclude_holidays(s, country="US")
    assert np.isnan(out.values[0]) and out.values[1] == 10.0
    assert weekend_flags(
        np.array([int(datetime(2026, 1, 3, tzinfo=UTC).timestamp())])
    ).tolist() == [True]


def test_train_test_split_holds_out_the_last_week() -> None:
    s = daily(21)
    train, test = train_test_split(s)
    assert len(test.starts) == 7 * 24 and len(train.starts) == 14 * 24
    assert test.starts[0] - train.starts[-1] == 3600
    with pytest.raises(UsageError, match="must be shorter than the series"):
        train_test_split(daily(3), timedelta(weeks=1))
