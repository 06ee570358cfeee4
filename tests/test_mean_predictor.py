import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from rushhour.detect.mean_band import MeanBandDetector
from rushhour.errors import InputError, NotFittedError, UsageError
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.series.generate import generate_traffic

START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def history() -> pd.Series:
    return generate_traffic(START, weeks=4, seed=4, anomalies_per_day=0).series


def test_seed_key_groups_weekdays_and_weekends() -> None:
    idx = pd.DatetimeIndex(["2026-03-02 08:15", "2026-03-06 08:15", "2026-03-07 08:15"], tz="UTC")
    codes = MeanPredictor(key="weekday_weekend").codes(idx)
    assert codes[0] == codes[1] != codes[2]
    assert codes[0] == 1 * 1440 + 8 * 60 + 15


def test_constant_history_gives_exact_mean_and_floor_deviation() -> None:
    idx = pd.date_range(START, periods=14 * 1440, freq="1min")
    mp = MeanPredictor().fit(pd.Series(100.0, index=idx))
    fc = mp.predict(START + timedelta(weeks=2), START + timedelta(weeks=2, hours=1))
    assert np.allclose(fc.mean, 100.0)
    assert np.allclose(fc.std, mp.min_deviation)


def test_mean_and_std_per_bucket_match_pandas(history: pd.Series) -> None:
    mp = MeanPredictor(key="day_of_week").fit(history)
    t = pd.Timestamp("2026-03-30 08:15", tz="UTC")  # a Monday
    same = history[
        (history.index.dayofweek == 0) & (history.index.hour == 8) & (history.index.minute == 15)
    ]
    mean, dev = mp.expected(pd.DatetimeIndex([t]))
    assert mean[0] == pytest.approx(same.mean())
    assert dev[0] == pytest.approx(same.std(ddof=1))


def test_mad_deviation(history: pd.Series) -> None:
    mp = MeanPredictor(key="day_of_week", deviation="mad").fit(history)
    t = pd.Timestamp("2026-03-30 08:15", tz="UTC")
    same = history[
        (history.index.dayofweek == 0) & (history.index.hour == 8) & (history.index.minute == 15)
    ]
    _, dev = mp.expected(pd.DatetimeIndex([t]))
    assert dev[0] == pytest.approx(np.mean(np.abs(same - same.mean())))


def test_predict_returns_the_seed_csv_contract(history: pd.Series) -> None:
    mp = MeanPredictor(freq="5min").fit(history)
    frame = mp.predict(
        datetime(2026, 3, 30, 10, 15, tzinfo=UTC), datetime(2026, 3, 30, 10, 30, tzinfo=UTC)
    ).to_frame()
    assert list(frame.columns[:3]) == ["Timestamp", "Value", "Std"]
    assert [t.strftime("%H:%M") for t in frame["Timestamp"]] == ["10:15", "10:20", "10:25"]
    assert (frame["q0.1"] <= frame["q0.5"]).all() and (frame["q0.5"] <= frame["q0.9"]).all()


def test_excluded_windows_do_not_train(history: pd.Series) -> None:
    spiked = history.copy()
    window = (
        pd.Timestamp("2026-03-03 08:00", tz="UTC"),
        pd.Timestamp("2026-03-03 08:30", tz="UTC"),
    )
    spiked[window[0] : window[1]] *= 10
    clean = MeanPredictor().fit(history)
    polluted = MeanPredictor().fit(spiked)
    excluded = MeanPredictor().fit(
        spiked, exclude=[(window[0].to_pydatetime(), window[1].to_pydatetime())]
    )
    t = pd.DatetimeIndex([pd.Timestamp("2026-03-31 08:10", tz="UTC")])
    assert polluted.expected(t)[0][0] > 1.3 * clean.expected(t)[0][0]  # one 10x day in 20
    assert excluded.expected(t)[0][0] == pytest.approx(clean.expected(t)[0][0], rel=0.05)


def test_holiday_key_falls_back_to_weekend_profile() -> None:
    hist = generate_traffic(START, weeks=3, seed=9, anomalies_per_day=0).series  # no holiday inside
    mp = MeanPredictor(key="holiday").fit(hist)
    holiday = pd.DatetimeIndex([pd.Timestamp("2026-05-25 08:00", tz="UTC")])  # Memorial Day, Monday
    sunday = pd.DatetimeIndex([pd.Timestamp("2026-05-24 08:00", tz="UTC")])
    assert mp.expected(holiday)[0][0] == pytest.approx(mp.expected(sunday)[0][0])


def test_snapshot_roundtrip_is_exact_and_json(history: pd.Series) -> None:
    mp = MeanPredictor(key="holiday", smooth=3).fit(history)
    state = json.loads(json.dumps(mp.snapshot()))
    back = MeanPredictor.restore(state)
    idx = pd.date_range("2026-03-30", periods=2000, freq="1min", tz="UTC")
    a, b = mp.expected(idx), back.expected(idx)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_errors_are_typed_and_clear() -> None:
    with pytest.raises(NotFittedError):
        MeanPredictor().predict(START, START + timedelta(hours=1))
    with pytest.raises(UsageError, match="key must be one of"):
        MeanPredictor(key="moon").fit(pd.Series([1.0], index=pd.DatetimeIndex([START])))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="timezone-aware"):
        MeanPredictor().fit(pd.Series([1.0], index=pd.DatetimeIndex([START.replace(tzinfo=None)])))
    with pytest.raises(UsageError, match="snapshot"):
        MeanPredictor.restore({"kind": "rcf", "version": 1})


def test_band_detector_flags_spikes_and_drops_not_noise(history: pd.Series) -> None:
    det = MeanBandDetector(MeanPredictor(smooth=3).fit(history), k=3.5)
    week = generate_traffic(
        START + timedelta(weeks=4), weeks=1, seed=99, anomalies_per_day=0
    ).series
    verdicts = det.score_many(week.index, week.to_numpy().astype(float))
    false_rate = sum(v.anomalous for v in verdicts) / len(verdicts)
    assert false_rate < 0.005
    t = datetime(2026, 3, 31, 8, 15, tzinfo=UTC)
    expected = det.predictor.expected(pd.DatetimeIndex([t]))[0][0]
    spike, drop = det.score_one(t, expected * 3), det.score_one(t, 0)
    assert spike.anomalous and spike.direction == "spike" and spike.severity == "critical"
    assert drop.anomalous and drop.direction == "drop" and (drop.sigma_at(0.0) or 0.0) < 0
    small = det.score_one(t, expected * 1.05)
    assert not small.anomalous
