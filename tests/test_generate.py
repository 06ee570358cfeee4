import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.errors import UsageError
from rushhour.series.generate import ANOMALY_KINDS, generate_traffic, labels_json

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # no US public holiday that week


def test_same_seed_same_traffic_different_seed_differs() -> None:
    a = generate_traffic(MONDAY, days=3, seed=11)
    b = generate_traffic(MONDAY, days=3, seed=11)
    c = generate_traffic(MONDAY, days=3, seed=12)
    assert a.frame.equals(b.frame) and a.anomalies == b.anomalies
    assert not a.frame.equals(c.frame)


def test_rhythm_rush_hours_weekends_and_counts() -> None:
    t = generate_traffic(MONDAY, weeks=1, seed=1, anomalies_per_day=0)
    v = t.series
    assert v.dtype.kind == "i" and (v >= 0).all()
    hour = v.index.hour
    weekday = v.index.dayofweek < 5
    morning = v[weekday & (hour == 8)].mean()
    night = v[weekday & (hour == 3)].mean()
    midday = v[weekday & (hour == 12)].mean()
    evening = v[weekday & (hour == 17)].mean()
    weekend_morning = v[~weekday & (hour == 8)].mean()
    assert morning > 1.5 * midday and evening > 1.3 * midday and midday > 2 * night
    assert weekend_morning < 0.5 * morning
    # count-like noise: variance at least Poisson's (over-dispersed), never negative
    quiet = v[weekday & (hour == 3)].to_numpy()
    assert quiet.var() >= 0.8 * quiet.mean()


def test_holidays_look_like_weekends() -> None:
    # 2026-07-03 (Friday) is the observed US Independence Day
    t = generate_traffic(datetime(2026, 6, 29, tzinfo=UTC), weeks=1, seed=2, anomalies_per_day=0)
    v = t.series
    at8 = v[v.index.hour == 8]
    holiday = at8[at8.index.day == 3].mean()
    thursday = at8[at8.index.day == 2].mean()
    assert holiday < 0.5 * thursday


def test_anomalies_are_labelled_and_visible() -> None:
    t = generate_traffic(MONDAY, weeks=2, seed=5, anomalies_per_day=3)
    assert 20 <= len(t.anomalies) <= 70
    assert {w.kind for w in t.anomalies} <= set(ANOMALY_KINDS)
    assert t.expected is not None
    ratio = t.series.to_numpy() / t.expected
    for w in t.anomalies:
        inside = (t.series.index >= w.start) & (t.series.index <= w.end)
        mean_ratio = float(np.mean(ratio[inside]))
        if w.kind in ("spike", "ramp", "level_shift"):
            assert mean_ratio > 1.3, w
        else:
            assert mean_ratio < 0.85, w
    starts = [w.start for w in t.anomalies]
    assert starts == sorted(starts)
    for a, b in zip(t.anomalies, t.anomalies[1:], strict=False):
        assert b.start > a.end  # windows never overlap


def test_labels_json_layout_matches_nab() -> None:
    t = generate_traffic(MONDAY, days=2, seed=3)
    data = labels_json(t.anomalies, "traffic.csv")
    assert list(data) == ["traffic.csv"]
    for start, end in data["traffic.csv"]:
        assert datetime.strptime(start, "%Y-%m-%d %H:%M:%S.%f") <= datetime.strptime(
            end, "%Y-%m-%d %H:%M:%S.%f"
        )
    json.dumps(data)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        generate_traffic(MONDAY)
    with pytest.raises(UsageError, match="unknown anomaly kind"):
        generate_traffic(MONDAY, days=1, kinds=("meteor",))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from(["1min", "5min", "30s"]))
def test_bucket_grid_is_regular_and_complete(seed: int, freq: str) -> None:
    t = generate_traffic(MONDAY, days=1, seed=seed, freq=freq)
    idx = t.series.index
    step = idx[1] - idx[0]
    assert (idx[1:] - idx[:-1] == step).all()
    assert idx[0] == MONDAY and idx[-1] + step == MONDAY + timedelta(days=1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), weeks=st.integers(1, 4))
def test_a_week_misses_at_most_one_rush_hour(seed: int, weeks: int) -> None:
    # an anomaly is the exception to the rhythm it breaks: were most weekdays to lack their
    # morning rush, the rush itself would be the anomaly, and the labels would contradict it
    tr = generate_traffic(
        datetime(2026, 11, 2, tzinfo=UTC),
        weeks=weeks,
        seed=seed,
        anomalies_per_day=6.0,
        kinds=("missing_rush_hour", "spike"),
    )
    rushless = [w.start.isocalendar()[:2] for w in tr.anomalies if w.kind == "missing_rush_hour"]
    assert len(rushless) == len(set(rushless))
    assert rushless, "six anomalies a day, half of them missing rush hours: some must be placed"
