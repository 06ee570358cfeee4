"""The default forecaster: profile x adaptive level, calibrated intervals, snapshot/restore."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from rushhour.errors import NotFittedError, UsageError
from rushhour.forecast import metrics
from rushhour.forecast.adaptive import AdaptiveProfile
from rushhour.forecast.naive import SeasonalNaive
from rushhour.series.generate import generate_traffic

START = datetime(2025, 9, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def traffic() -> pd.Series:
    return generate_traffic(START, weeks=10, freq="30min", seed=4, anomalies_per_day=0).series


def _split(y: pd.Series, at: datetime) -> tuple[pd.Series, pd.Series]:
    return y[y.index < pd.Timestamp(at)], y[y.index >= pd.Timestamp(at)]


def test_beats_the_seasonal_naive_over_a_week(traffic: pd.Series) -> None:
    cut = START + timedelta(weeks=9)
    past, future = _split(traffic, cut)
    end = cut + timedelta(weeks=1)
    ours = AdaptiveProfile().fit(past).predict(cut, end)
    naive = SeasonalNaive().fit(past).predict(cut, end)
    actual = future.to_numpy()
    assert metrics.mae(actual, ours.mean) < 0.9 * metrics.mae(actual, naive.mean)


def test_level_follows_a_surge_then_fades(traffic: pd.Series) -> None:
    cut = START + timedelta(weeks=9, hours=12)
    past, _ = _split(traffic, cut)
    surged = past.copy()
    surged.iloc[-6:] *= 2.0  # the last three hours doubled
    base = AdaptiveProfile().fit(past)
    hot = AdaptiveProfile().fit(surged)
    assert hot.level_ > 1.6 * base.level_
    a = (
        hot.predict(cut, cut + timedelta(days=3)).mean
        / base.predict(cut, cut + timedelta(days=3)).mean
    )
    assert a[0] > 1.5  # the next half hour follows the surge
    assert a[-1] < a[0] and a[-1] < 1.2  # three days out it has mostly faded


def test_intervals_are_ordered_and_cover_about_80_percent(traffic: pd.Series) -> None:
    hits = []
    for k in range(3):
        cut = START + timedelta(weeks=7 + k)
        past, future = _split(traffic, cut)
        fc = AdaptiveProfile().fit(past).predict(cut, cut + timedelta(weeks=1))
        qs = [fc.quantiles[q] for q in sorted(fc.quantiles)]
        assert all((lo <= hi + 1e-9).all() for lo, hi in itertools.pairwise(qs))
        actual = future.to_numpy()[: len(fc.mean)]
        hits.append(metrics.coverage(actual, fc.quantiles[0.1], fc.quantiles[0.9]))
    assert 0.65 <= float(np.mean(hits)) <= 0.95


def test_holidays_use_the_sunday_profile() -> None:
    # Thanksgiving 2025-11-27 (Thursday) should look like a Sunday, not like a Thursday
    y = generate_traffic(
        datetime(2025, 9, 29, tzinfo=UTC), weeks=8, freq="1h", seed=1, anomalies_per_day=0
    ).series
    model = AdaptiveProfile().fit(y)
    thursday = model.predict(
        datetime(2025, 11, 27, 8, tzinfo=UTC), datetime(2025, 11, 27, 9, tzinfo=UTC)
    )
    plain = AdaptiveProfile(holidays_country=None).fit(y)
    ordinary = plain.predict(
        datetime(2025, 11, 27, 8, tzinfo=UTC), datetime(2025, 11, 27, 9, tzinfo=UTC)
    )
    assert thursday.mean[0] < 0.6 * ordinary.mean[0]


def test_snapshot_round_trips_through_json(traffic: pd.Series) -> None:
    model = AdaptiveProfile().fit(traffic)
    state = json.loads(json.dumps(model.snapshot()))
    again = AdaptiveProfile.restore(state)
    a, b = datetime(2025, 11, 10, tzinfo=UTC), datetime(2025, 11, 11, tzinfo=UTC)
    np.testing.assert_allclose(model.predict(a, b).mean, again.predict(a, b).mean)
    np.testing.assert_allclose(
        model.predict(a, b).quantiles[0.9], again.predict(a, b).quantiles[0.9]
    )


def test_fit_does_not_mutate_the_history(traffic: pd.Series) -> None:
    copy = traffic.copy()
    AdaptiveProfile().fit(traffic)
    pd.testing.assert_series_equal(copy, traffic)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"weeks": 0}, "weeks must be >= 1, got 0"),
        ({"recency": 1.5}, r"recency must be in \(0, 1\], got 1.5"),
        ({"smooth": 2}, "smooth must be an odd number >= 1, got 2"),
        ({"estimator": "mode"}, "estimator must be 'median' or 'trimmed', got 'mode'"),
        ({"level_limits": (2.0, 3.0)}, "level_limits must satisfy"),
        ({"holiday_margin": -1}, "holiday_margin must be >= 0, got -1"),
    ],
)
def test_parameters_are_validated_at_fit(
    traffic: pd.Series, params: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        AdaptiveProfile(**params).fit(traffic)  # type: ignore[arg-type]


def test_predict_before_fit_is_an_error() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        AdaptiveProfile().predict(START, START + timedelta(hours=1))


def test_restore_rejects_other_snapshots() -> None:
    with pytest.raises(UsageError, match="not a version-1 adaptive forecaster snapshot"):
        AdaptiveProfile.restore({"kind": "mean_predictor", "version": 1})


def test_short_history_still_forecasts() -> None:
    y = generate_traffic(START, days=5, freq="1h", seed=2, anomalies_per_day=0).series
    fc = AdaptiveProfile().fit(y).predict(START + timedelta(days=5), START + timedelta(days=6))
    assert len(fc.mean) == 24 and np.isfinite(fc.mean).all() and (fc.mean > 0).all()


def test_days_next_to_a_holiday_do_not_move_the_slow_level() -> None:
    # Black Friday (2025-11-28, the day after Thanksgiving) at half the usual traffic
    y = generate_traffic(
        datetime(2025, 9, 29, tzinfo=UTC), weeks=9, freq="1h", seed=1, anomalies_per_day=0
    ).series
    past = y[y.index < pd.Timestamp("2025-11-29", tz="UTC")].copy()
    past[past.index >= pd.Timestamp("2025-11-28", tz="UTC")] *= 0.5
    aware = AdaptiveProfile(holiday_margin=1).fit(past)
    plain = AdaptiveProfile(holiday_margin=0).fit(past)
    assert plain.slow_ < 0.9  # the bridge day drags the level down ...
    assert abs(aware.slow_ - 1) < 0.05  # ... unless it is left out, with the window reaching back
