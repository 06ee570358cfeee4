"""Bands held compactly (BandSet) give exactly what the fitted predictors give."""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.detect.band_set import BandSet
from rushhour.detect.mean_band import MeanBandDetector
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.pipeline.detectors import DetectorBank, ModelSet
from rushhour.series.generate import generate_traffic
from rushhour.settings import load_settings

# a year of timestamps every 7 minutes (all minutes of the day, every day class, US holidays),
# and the last days of 2025 around Christmas
YEAR = pd.date_range("2026-01-01", "2026-12-31 23:59", freq="7min", tz="UTC")


def _history(days: int, seed: int) -> pd.Series:
    start = datetime(2025, 12, 20, tzinfo=UTC)  # includes Christmas and New Year's Day
    return generate_traffic(start, days=days, seed=seed, anomalies_per_day=1).series


def _restored(p: MeanPredictor) -> MeanPredictor:
    return MeanPredictor.restore(json.loads(json.dumps(p.snapshot())))


CASES = [
    # (predictor, days of history, exclude holidays): 4 days leave some day classes without data
    (MeanPredictor(key="weekday_weekend"), 21, False),
    (MeanPredictor(key="day_of_week", deviation="mad", smooth=3), 4, False),
    (MeanPredictor(key="holiday", smooth=3), 21, True),
    (MeanPredictor(key="holiday"), 21, False),
    (MeanPredictor(key="holiday", min_deviation=40.0), 4, False),
    (MeanPredictor(key="holiday", timezone="America/New_York", holidays_country="FR"), 21, True),
]


@pytest.mark.parametrize(("model", "days", "no_holidays"), CASES)
def test_compact_band_gives_the_fitted_predictors_expected_and_deviation(
    model: MeanPredictor, days: int, no_holidays: bool
) -> None:
    # the pipeline loads stored snapshots (values rounded to 6 decimals): the reference
    fitted = _restored(model.fit(_history(days, seed=days), exclude_holidays=no_holidays))
    bands = BandSet()
    bands["other"] = MeanBandDetector(
        _restored(MeanPredictor(key="day_of_week").fit(_history(9, 1)))
    )
    bands["s"] = MeanBandDetector(fitted)
    codes = fitted.codes(YEAR)
    mean, dev = bands.lookup(bands.rows(["s"] * len(codes)), codes)
    want_mean, want_dev = fitted.lookup(codes)
    assert np.isnan(want_mean).any() == (days == 4 and model.key == "day_of_week")
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(dev, want_dev)
    # the series' detector rebuilt from the shared arrays says the same
    rebuilt = bands["s"].predictor
    for got, want in zip(rebuilt.expected(YEAR), fitted.expected(YEAR), strict=True):
        np.testing.assert_array_equal(got, want)
    assert rebuilt.params() == fitted.params() and rebuilt.trained_at_ == fitted.trained_at_


def test_a_series_stores_only_its_distinct_day_rows() -> None:
    hist = _history(21, seed=3)
    bands = BandSet()
    bands["no holidays"] = MeanBandDetector(
        MeanPredictor(key="holiday").fit(hist, exclude_holidays=True)
    )
    assert bands.day_rows() == 2  # the holiday row is the weekend row it falls back to
    bands["holidays"] = MeanBandDetector(MeanPredictor(key="holiday").fit(hist))
    assert bands.day_rows() == 5
    retrained = MeanPredictor(key="holiday").fit(hist * 2, exclude_holidays=True)
    bands["no holidays"] = MeanBandDetector(retrained)  # its old rows stay, unused
    assert len(bands) == 2 and set(bands) == {"no holidays", "holidays"}
    codes = retrained.codes(YEAR)
    for key, p in (("no holidays", retrained), ("holidays", bands["holidays"].predictor)):
        got = bands.lookup(bands.rows([key] * len(codes)), codes)
        for a, b in zip(got, p.lookup(codes), strict=True):
            np.testing.assert_array_equal(a, b)
    assert bands.rows(["nobody"]).tolist() == [-1] and "nobody" not in bands
    # 7 day rows of float32 means and deviations; 7 row indices, a kind and a time per series
    assert bands.day_rows() == 7 and bands.trim().nbytes() == 7 * 2 * 1440 * 4 + 2 * (28 + 4 + 8)


def test_pipeline_scores_with_compact_bands_as_with_each_series_detector(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    bank = DetectorBank(settings)
    fitted = {
        "a": MeanPredictor(key="holiday").fit(_history(21, 1), exclude_holidays=True),
        "b": MeanPredictor(key="holiday", min_deviation=300.0).fit(_history(21, 2)),
        "c": MeanPredictor(key="day_of_week", timezone="Europe/Paris").fit(_history(4, 3)),
    }
    models = ModelSet()
    for key, p in fitted.items():
        models.bands[key] = bank._band(_restored(p))
    starts = np.repeat(YEAR[::500].asi8 // 10**9, 4)
    keys = ["a", "b", "c", "new"] * (len(starts) // 4)
    values = np.random.default_rng(0).poisson(3000, len(starts)).astype(float)
    values[::7] *= 4  # spikes
    got = bank.score_closed(keys, starts, values, models)
    index = pd.DatetimeIndex(pd.to_datetime(starts, unit="s", utc=True))
    for key, p in fitted.items():
        at = [i for i, k in enumerate(keys) if k == key]
        want = bank._band(p).score_many(index[at], values[at])
        assert [got[i] for i in at] == want
    assert any(v.anomalous for v in got) and all(
        got[i].score == 0.0 for i, k in enumerate(keys) if k == "new"
    )
