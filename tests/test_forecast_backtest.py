"""Rolling-origin backtest: protocol (no peeking), metrics, holiday split, outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rushhour.errors import InputError, UsageError
from rushhour.forecast import metrics, registry
from rushhour.forecast.backtest import BacktestConfig, run_backtest, save
from rushhour.forecast.base import Forecast
from rushhour.forecast.naive import SeasonalNaive
from rushhour.series.generate import generate_traffic

START = datetime(2025, 10, 27, tzinfo=UTC)  # five weeks incl. Thanksgiving (2025-11-27)


@pytest.fixture(scope="module")
def series() -> pd.Series:
    return generate_traffic(START, weeks=5, freq="1h", seed=9, anomalies_per_day=0).series


@dataclass
class Spy:
    """Records the last timestamp of every history it is given."""

    seen: list[tuple[pd.Timestamp, str]] = field(default_factory=list)
    inner: SeasonalNaive = field(default_factory=SeasonalNaive)

    def fit(self, history: pd.Series) -> Spy:
        self.seen.append((history.index[-1], "fit"))
        self.inner.fit(history)
        return self

    def update(self, history: pd.Series) -> Spy:
        self.seen.append((history.index[-1], "update"))
        self.inner.fit(history)
        return self

    def predict(self, start: datetime, end: datetime) -> Forecast:
        fc = self.inner.predict(start, end)
        SPIED.append((self.seen[-1][0], fc.index[0]))
        return fc


SPIED: list[tuple[pd.Timestamp, pd.Timestamp]] = []


def test_models_never_see_the_future(series: pd.Series, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODELS, "spy", registry.ModelSpec("spy", "", lambda ctx: Spy()))
    SPIED.clear()
    res = run_backtest(series, BacktestConfig(models=("spy",), weeks=2))
    assert SPIED and all(last < first for last, first in SPIED)
    weekly = sorted({w.origin for w in res.windows if w.horizon == "1w"})
    assert weekly[-1] == series.index[-1] + pd.Timedelta("1h") - pd.Timedelta("7D")
    assert len(weekly) == 3  # the last week plus two earlier weekly origins
    short = [w for w in res.windows if w.horizon == "3h"]
    assert len(short) == 3 * 7 * 4  # every 6 hours over three weeks
    assert all(len(w.actual) == 3 for w in short)


def test_fit_once_models_train_once_before_the_first_origin(
    series: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Spy] = []

    def make(ctx: registry.ModelContext) -> Spy:
        built.append(Spy())
        return built[-1]

    monkeypatch.setitem(registry.MODELS, "spy", registry.ModelSpec("spy", "", make))
    SPIED.clear()
    res = run_backtest(series, BacktestConfig(models=("spy",), weeks=2, fit_once=("spy",)))
    first = min(w.origin for w in res.windows)
    assert len(built) == 1
    kinds = [kind for _, kind in built[0].seen]
    assert kinds[0] == "fit" and set(kinds[1:]) == {"update"}
    assert len(kinds) == len(res.windows)
    assert built[0].seen[0][0] < first
    assert SPIED and all(last < start for last, start in SPIED)


def test_fit_once_needs_an_update_method(series: pd.Series) -> None:
    with pytest.raises(UsageError, match="cannot be fitted once"):
        run_backtest(
            series,
            BacktestConfig(models=("mean-predictor",), weeks=1, fit_once=("mean-predictor",)),
        )


def test_holiday_windows_are_reported_apart(series: pd.Series) -> None:
    res = run_backtest(series, BacktestConfig(models=("seasonal-naive",), weeks=2))
    subsets = {(r["subset"], r["horizon"]) for r in res.rows}
    assert ("holiday", "1w") in subsets and ("normal", "1w") in subsets
    hol = next(r for r in res.rows if r["subset"] == "holiday" and r["horizon"] == "3h")
    assert hol["windows"] == 8  # four 3-hour windows on Veterans Day, four on Thanksgiving


def test_outputs(series: pd.Series, tmp_path: Path) -> None:
    res = run_backtest(series, BacktestConfig(models=("seasonal-naive", "adaptive"), weeks=1))
    paths = save(res, tmp_path, title="t")
    md = paths["markdown"].read_text()
    assert "| adaptive | 1w | all |" in md and "coverage80" in md
    data = json.loads(paths["json"].read_text())
    row = next(r for r in data["rows"] if r["model"] == "adaptive" and r["subset"] == "all")
    assert 0 <= row["coverage80"] <= 1 and row["mase"] > 0 and row["seconds"] > 0
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    naive = next(
        r
        for r in data["rows"]
        if r["model"] == "seasonal-naive" and r["horizon"] == "1w" and r["subset"] == "all"
    )
    assert row["mase"] < naive["mase"]


def test_too_short_for_the_origins(series: pd.Series) -> None:
    with pytest.raises(InputError, match="needs two weeks of history before its first origin"):
        run_backtest(series, BacktestConfig(models=("seasonal-naive",), weeks=3))


def test_config_is_validated(series: pd.Series) -> None:
    with pytest.raises(UsageError, match="horizons must be at most 1w, got 2w"):
        run_backtest(series, BacktestConfig(horizons=("2w",)))


def test_mase_of_the_seasonal_naive_on_a_repeating_series_is_its_noise() -> None:
    idx = pd.date_range("2026-01-05", periods=24 * 7 * 4, freq="1h", tz="UTC")
    rng = np.random.default_rng(0)
    y = pd.Series(
        100 + 50 * np.sin(np.arange(len(idx)) * 2 * np.pi / 24) + rng.normal(0, 1, len(idx)), idx
    )
    res = run_backtest(y, BacktestConfig(models=("seasonal-naive",), weeks=1))
    row = next(r for r in res.rows if r["horizon"] == "1w" and r["subset"] == "all")
    assert 0.7 < row["mase"] < 1.3  # the naive forecast scores about its own in-sample error


@given(st.lists(st.floats(0, 1e6), min_size=3, max_size=50))
def test_metrics_are_zero_for_a_perfect_forecast(values: list[float]) -> None:
    y = np.asarray(values)
    assert metrics.mae(y, y) == 0 and metrics.rmse(y, y) == 0 and metrics.smape(y, y) == 0
    assert metrics.coverage(y, y, y) == 1.0


def test_interval_falls_back_to_gaussian() -> None:
    idx = pd.date_range("2026-01-05", periods=2, freq="1h", tz="UTC")
    fc = Forecast.gaussian(idx, np.array([10.0, 10.0]), np.array([1.0, 1.0]))
    lo, hi = metrics.interval(fc, 0.95)
    np.testing.assert_allclose(hi - lo, 2 * 1.959964, rtol=1e-5)
    lo80, _ = metrics.interval(fc, 0.8)
    np.testing.assert_allclose(lo80, fc.quantiles[0.1])
