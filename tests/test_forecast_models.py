"""Every registered forecaster honours the same contract; Holt-Winters and MSTL specifics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.errors import InputError, UsageError
from rushhour.forecast.base import Forecaster
from rushhour.forecast.holt_winters import HoltWinters, plot_decomposition
from rushhour.forecast.multiseasonal import MultiSeasonal
from rushhour.forecast.registry import DEFAULT_MODEL, MODELS, build
from rushhour.series.generate import generate_traffic

START = datetime(2026, 1, 5, tzinfo=UTC)
CUT = START + timedelta(weeks=3)


@pytest.fixture(scope="module")
def hourly() -> pd.Series:
    return generate_traffic(START, weeks=4, freq="1h", seed=5, anomalies_per_day=0).series


FAST = [n for n, s in MODELS.items() if s.needs is None and n != "mstl-arima"]


@pytest.mark.parametrize("name", FAST)
def test_contract(name: str, hourly: pd.Series) -> None:
    past = hourly[hourly.index < pd.Timestamp(CUT)]
    before = past.copy()
    model = build(name)
    assert isinstance(model, Forecaster)
    fc = model.fit(past).predict(CUT + timedelta(minutes=20), CUT + timedelta(hours=6))
    pd.testing.assert_series_equal(past, before)  # fit leaves its input alone
    # [start, end) at the model's step: 01:00 .. 05:00 (01:00 is the first step after 00:20)
    assert fc.index[0] == pd.Timestamp(CUT + timedelta(hours=1)) and len(fc.index) == 5
    assert str(fc.index.tz) == "UTC"
    assert np.isfinite(fc.mean).all() and (fc.std >= 0).all()
    assert 0.1 in fc.quantiles and 0.9 in fc.quantiles
    assert (fc.quantiles[0.1] <= fc.quantiles[0.9] + 1e-9).all()
    frame = fc.to_frame()
    assert list(frame.columns[:3]) == ["Timestamp", "Value", "Std"]
    actual = hourly.reindex(fc.index).to_numpy()
    # every model is within a factor 2 of the truth on clean traffic
    assert np.median(np.abs(fc.mean / actual - 1)) < 0.5


def test_default_is_registered() -> None:
    assert DEFAULT_MODEL in MODELS and MODELS[DEFAULT_MODEL].available()


def test_unknown_model_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown model 'prophet'; choose from adaptive"):
        build("prophet")


@pytest.mark.parametrize("seasonal", ["add", "mul"])
def test_holt_winters_update_keeps_parameters(seasonal: str, hourly: pd.Series) -> None:
    past = hourly[hourly.index < pd.Timestamp(CUT)]
    hw = HoltWinters(seasonal=seasonal, seasonal_periods="1d").fit(past)  # type: ignore[arg-type]
    params = dict(hw.params_ or {})
    assert "damping_trend" in params  # damped trend by default
    later = hourly[hourly.index < pd.Timestamp(CUT + timedelta(hours=5))]
    hw.update(later)
    assert hw.params_ == params and hw.last_ == later.index[-1]
    fc = hw.predict(CUT + timedelta(hours=5), CUT + timedelta(hours=8))
    assert len(fc.mean) == 3 and (fc.std[1:] >= fc.std[:-1]).all()


def test_holt_winters_needs_two_seasons(hourly: pd.Series) -> None:
    with pytest.raises(InputError, match="Holt-Winters needs two seasons of history"):
        HoltWinters(seasonal_periods="1w").fit(hourly.iloc[: 24 * 10])


def test_holt_winters_validates(hourly: pd.Series) -> None:
    with pytest.raises(UsageError, match="seasonal must be 'add' or 'mul', got 'both'"):
        HoltWinters(seasonal="both").fit(hourly)  # type: ignore[arg-type]


def test_decomposition_png(hourly: pd.Series, tmp_path: Path) -> None:
    hw = HoltWinters(seasonal="add", seasonal_periods="1d").fit(hourly)
    path = plot_decomposition(hw, tmp_path / "hw.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_mstl_sees_both_seasons(hourly: pd.Series) -> None:
    past = hourly[hourly.index < pd.Timestamp(CUT)]
    fc = MultiSeasonal().fit(past).predict(CUT, CUT + timedelta(days=7))
    by_day = pd.Series(fc.mean, index=fc.index).groupby(fc.index.dayofweek).mean()
    assert by_day[2] > 1.3 * by_day[6]  # Wednesday busier than Sunday: the weekly season is kept
    assert fc.quantiles[0.025].min() >= 0
